"""Figures for the analyses: PNG files, no display needed.

Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly, never
through ``pyplot``: no global figure state, no backend switch that would leak into a notebook
that imports us. Each function writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ingest.values import BY_SLUG, VALUE_SLUGS

_CLASS_COLOURS = {"shared": "tab:purple", "intrinsic_unique": "tab:blue", "prompted_unique": "tab:orange",
                  "unclassified": "tab:gray"}


def _label(slug: str) -> str:
    return BY_SLUG[slug].name if slug in BY_SLUG else slug


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=120, bbox_inches="tight")
    return path


def _per_value_lines(ax, y: np.ndarray, layers: Sequence[int], values: Sequence[str], style: str = "-",
                     err: np.ndarray | None = None) -> None:
    """A line per value over the layers (integer ticks); ``err`` ``[V, L]``: error bars (half-widths)."""
    colours = [f"C{i}" for i in range(10)]
    for i, v in enumerate(values):
        if err is not None:
            ax.errorbar(list(layers), y[i], yerr=err[i], fmt=style, color=colours[i % 10], label=_label(v),
                        marker=".", capsize=2)
        else:
            ax.plot(list(layers), y[i], style, color=colours[i % 10], label=_label(v), marker=".")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _n_text(n: tuple[int, int] | None) -> str:
    if n is None:
        return ""
    lo, hi = n
    return f" (n = {lo} responses per group)" if lo == hi else f" (n = {lo}-{hi} responses per group)"


def plot_cosine_by_layer(cos: np.ndarray, layers: Sequence[int], path: str | Path,
                         values: Sequence[str] = VALUE_SLUGS, n: tuple[int, int] | None = None,
                         err: np.ndarray | None = None) -> Path:
    """cos(v_int, v_prompt) per layer, one line per value. cos: ``[V, L]``; ``n``: the fewest and most
    responses in a group (shown in the title); ``err`` ``[V, L]``: interval half-widths, drawn as bars."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    _per_value_lines(ax, np.asarray(cos), layers, values, err=None if err is None else np.asarray(err))
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set(xlabel="layer", ylabel="cos(v_int, v_prompt)", title="Intrinsic vs prompted value vectors" + _n_text(n))
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_norms_by_layer(norms: np.ndarray, layers: Sequence[int], path: str | Path,
                        values: Sequence[str] = VALUE_SLUGS,
                        conditions: Sequence[str] = ("intrinsic", "prompted"), n: tuple[int, int] | None = None) -> Path:
    """Vector norms per layer. norms: ``[V, C, L]`` (solid line = first condition, dashed = second...)."""
    norms = np.asarray(norms)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for c, style in zip(range(norms.shape[1]), ("-", "--", ":", "-.")):
        _per_value_lines(ax, norms[:, c], layers, values, style)
    ax.set(xlabel="layer", ylabel="||v||", title="Value vector norms (" + ", ".join(
        f"{cond}: {s}" for cond, s in zip(conditions, ("solid", "dashed", "dotted", "dash-dot"))) + ")" + _n_text(n))
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[: len(values)], labels[: len(values)], fontsize=7, ncol=2)
    return _save(fig, path)


def plot_class_counts(counts: np.ndarray, layers: Sequence[int], path: str | Path,
                      classes: Sequence[str] = ("shared", "intrinsic_unique", "prompted_unique")) -> Path:
    """Kept neurons per class per layer (summed over values), stacked bars. counts: ``[L, K]``."""
    counts = np.asarray(counts)
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    bottom = np.zeros(len(layers))
    for k, cls in enumerate(classes):
        ax.bar([str(x) for x in layers], counts[:, k], bottom=bottom, label=cls,
               color=_CLASS_COLOURS.get(cls, f"C{k}"))
        bottom = bottom + counts[:, k]
    ax.set(xlabel="layer", ylabel="neurons kept (summed over values)", title="Value neurons by class")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_circumplex(aligned: np.ndarray, target: np.ndarray, path: str | Path,
                    values: Sequence[str] = VALUE_SLUGS, title: str = "Values on the first two components",
                    explained: Sequence[float] | np.ndarray | None = None) -> Path:
    """Aligned 2-D coordinates ``[V, 2]`` with the theoretical circle ``target [V, 2]`` (same scale) drawn.
    ``explained``: the variance shares of PC1 and PC2, shown on the axes."""
    aligned, target = np.asarray(aligned), np.asarray(target)
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.add_subplot()
    radius = float(np.mean(np.linalg.norm(target, axis=1)))
    t = np.linspace(0, 2 * np.pi, 200)
    ax.plot(radius * np.cos(t), radius * np.sin(t), color="0.7", lw=1)
    ax.scatter(target[:, 0], target[:, 1], marker="x", color="0.5", label="theory")
    ax.scatter(aligned[:, 0], aligned[:, 1], color="tab:red", label="model")
    for i, v in enumerate(values):
        ax.plot([target[i, 0], aligned[i, 0]], [target[i, 1], aligned[i, 1]], color="0.8", lw=0.7)
        ax.annotate(_label(v), aligned[i], fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_aspect("equal")
    share = [f" ({e:.0%} of variance)" for e in explained[:2]] if explained is not None else ["", ""]
    ax.set(title=title, xlabel=f"PC1{share[0]}, Procrustes-aligned", ylabel=f"PC2{share[1]}, Procrustes-aligned")
    ax.legend(fontsize=8)
    return _save(fig, path)
