"""A recorded sweep as tables and a plot: each metric against alpha, one line per vector kind and layer.

Reads only the steering tables (no model). For the plot, a setting's y value is its metric averaged
over the values of its vector kind at its layer (each layer its own line); alpha 0 is the sweep's baseline, drawn as the common
starting point of every line. Metrics that depend on the steered value (``expression``) use each
setting's own value, so "intrinsic" means "the intrinsic vector of value s, scored on s".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses.steering.sources import VECTOR_KINDS

#: Metrics plotted by default, when the sweep recorded them.
PLOTTED = ("expression", "any_value", "distinct_2", "ead_2", "accuracy", "asr", "compliance", "follow_rate",
           "answered_share")


def latest_sweep(store: Store) -> str:
    rows = store.sql("SELECT sweep_id FROM steering_sweeps ORDER BY created_at DESC, sweep_id LIMIT 1").fetchall()
    if not rows:
        raise InputError("this store has no steering sweeps; run one with 'actstore steer run STORE ...'")
    return str(rows[0][0])


def metrics_frame(store: Store, sweep_id: str | None = None):
    """One row per (setting, eval, metric) with the setting's columns (kind, vector_kind, value, layers,
    alpha, beta, ...). ``alpha`` is 0 for the baseline."""
    sweep_id = sweep_id or latest_sweep(store)
    if not store.sql("SELECT count(*) FROM steering_sweeps WHERE sweep_id = ?", [sweep_id]).fetchall()[0][0]:
        raise InputError(f"no sweep {sweep_id!r} in this store; list them with: actstore sql STORE "
                         "\"SELECT sweep_id, status, created_at FROM steering_sweeps\"")
    df = store.sql(
        "SELECT s.kind, v.name AS vector, s.vector_kind, s.value, s.layers, s.vector_id, s.neuron_set, "
        "CASE WHEN s.kind = 'baseline' THEN 0.0 ELSE s.alpha END AS alpha, s.alpha_mode, s.beta, s.neuron_mode, "
        "m.eval, m.metric, m.value AS score, m.n, s.setting_id "
        "FROM steering_metrics m JOIN steering_settings s USING (setting_id) "
        "LEFT JOIN vectors v ON v.vector_id = s.vector_id WHERE m.sweep_id = ? "
        "ORDER BY s.kind, s.vector_kind, s.value, s.layers, alpha, m.eval, m.metric", [sweep_id]).df()
    return df


def _baseline_for(df, metric: str, value: str | None) -> float | None:
    base = df[(df.kind == "baseline") & (df.metric == metric)]
    if metric == "expression" and value is not None:
        base = df[(df.kind == "baseline") & (df.metric == f"expression.{value}")]
    return float(base.score.mean()) if len(base) and base.score.notna().any() else None


def curves(df, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per vector kind and layer (a line each: layers are never averaged together): (alphas including
    0, mean metric over the kind's values), the baseline at alpha 0. Keyed "kind" when the sweep steered
    at one layer, else "kind @ layer L"."""
    out = {}
    adds = df[(df.kind == "add") & (df.metric == metric)]
    one_layer = adds.layers.astype(str).nunique() <= 1
    keys = sorted({(k, str(lay)) for k, lay in zip(adds.vector_kind, adds.layers) if isinstance(k, str)},
                  key=lambda kl: ((VECTOR_KINDS + (kl[0],)).index(kl[0]), kl[1]))
    for kind, layer in keys:
        part = adds[(adds.vector_kind == kind) & (adds.layers.astype(str) == layer)]
        name = kind if one_layer else f"{kind} @ layer {layer}"
        per_alpha = part.groupby("alpha").score.mean()
        bases = [b for b in (_baseline_for(df, metric, v) for v in set(part.value)) if b is not None]
        xs, ys = list(per_alpha.index), list(per_alpha.values)
        if bases:
            xs, ys = [0.0] + xs, [float(np.mean(bases))] + ys
        order = np.argsort(xs)
        out[name] = (np.asarray(xs)[order], np.asarray(ys, dtype=float)[order])
    return out


def summary_table(df):
    """Wide table: one row per setting, one column per metric (the ``expression.<value>`` columns left out).
    Settings of distinct vectors stay distinct rows (``vector`` is the vector's name, which says its
    language and component; ``vector_id`` tells apart two of one name)."""
    keep = df[~df.metric.str.startswith(("expression.", "raw.", "centered.", "follow."))]
    idx = ["kind", "vector", "vector_id", "vector_kind", "value", "layers", "alpha", "beta"]
    wide = keep.pivot_table(index=idx, columns="metric", values="score", aggfunc="mean", dropna=False)
    return wide.dropna(how="all").reset_index()


def safe_alphas(df, max_drop: float = 0.05):
    """Per (vector, layer): the largest alpha whose MCQ accuracy stays within ``max_drop`` of the
    baseline's (:func:`analyses.evals.mcq.pick_alpha`, contiguous from the smallest alpha). Empty
    when the sweep ran no mcq eval."""
    import pandas as pd

    from analyses.evals.mcq import pick_alpha

    acc = df[df.metric == "accuracy"]
    base = acc[acc.kind == "baseline"].score
    rows = []
    if len(base):
        for (vid, kind, value, layers), part in acc[acc.kind == "add"].groupby(
                ["vector_id", "vector_kind", "value", "layers"], dropna=False):
            part = part.sort_values("alpha")
            best = pick_alpha(part.alpha.abs().tolist(), part.score.tolist(), float(base.iloc[0]), max_drop,
                              contiguous=True)
            rows.append({"vector_id": vid, "vector_kind": kind, "value": value, "layers": layers,
                         "baseline_accuracy": float(base.iloc[0]), "max_alpha": best})
    return pd.DataFrame(rows)


def plot(df, path: str | Path, metrics: tuple[str, ...] | None = None) -> Path | None:
    """PNG: one panel per metric, metric vs alpha, a line per vector kind. None if nothing to plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    have = set(df[df.kind == "add"].metric)
    ms = [m for m in (metrics or PLOTTED) if m in have]
    if not ms:
        return None
    fig = Figure(figsize=(4.2 * len(ms), 3.4))
    FigureCanvasAgg(fig)
    for i, m in enumerate(ms):
        ax = fig.add_subplot(1, len(ms), i + 1)
        for j, (kind, (x, y)) in enumerate(curves(df, m).items()):
            ax.plot(x, y, marker="o", label=kind, color=f"C{j}")
        ax.set_xlabel("alpha" + (f" ({df.alpha_mode.dropna().iloc[0]})" if df.alpha_mode.notna().any() else ""))
        ax.set_title(m)
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    return path


@dataclass(frozen=True)
class SteeringReport:
    sweep_id: str
    metrics: Any  # DataFrame, long
    table: Any  # DataFrame, wide
    plot: Path | None
    safe: Any = None  # DataFrame from safe_alphas (empty without an mcq eval)


def report(store: Store, sweep_id: str | None = None, plot_path: str | Path | None = None) -> SteeringReport:
    """Tables (and a PNG when ``plot_path`` is given) of a recorded sweep; default: the latest sweep."""
    sweep_id = sweep_id or latest_sweep(store)
    df = metrics_frame(store, sweep_id)
    if not len(df):
        raise InputError(f"sweep {sweep_id} has no metrics yet; run it (again) to finish it")
    png = plot(df, plot_path) if plot_path else None
    return SteeringReport(sweep_id, df, summary_table(df), png, safe_alphas(df))
