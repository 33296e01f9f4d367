"""A recorded sweep as tables and a plot: each metric against alpha, one line per vector kind and layer.

Reads only the steering tables (no model). For the plot, a setting's y value is its metric averaged
over the values of its vector kind at its layer (each layer its own line); alpha 0 is the sweep's baseline, drawn as the common
starting point of every line. Metrics that depend on the steered value (``expression``) use each
setting's own value, so "intrinsic" means "the intrinsic vector of value s, scored on s".

Every rate (a share of the n answers scored: expression, any_value, asr, refusal_rate, compliance,
accuracy, follow_rate) carries its 95% Wilson interval, recorded with the metric (``lo``, ``hi``;
computed here from ``value`` and ``n`` for sweeps recorded before those columns existed). The wide
table shows each rate's interval and the number of answers behind each eval; in the plot a rate's
point is pooled over the settings it stands for (answers expressing / answers scored) and drawn
with the Wilson interval of that pooled count as an error bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses.stats import wilson_interval
from analyses.steering.sources import VECTOR_KINDS
from analyses.steering.sweep import is_rate

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
        "m.eval, m.metric, m.value AS score, m.n, m.lo, m.hi, s.setting_id "
        "FROM steering_metrics m JOIN steering_settings s USING (setting_id) "
        "LEFT JOIN vectors v ON v.vector_id = s.vector_id WHERE m.sweep_id = ? "
        "ORDER BY s.kind, s.vector_kind, s.value, s.layers, alpha, m.eval, m.metric", [sweep_id]).df()
    # Sweeps recorded before the interval columns: the same Wilson interval from value and n.
    missing = df.lo.isna() & df.score.notna() & df.metric.map(is_rate) & (df.n.fillna(0) > 0)
    for i in df.index[missing]:
        n = int(df.at[i, "n"])
        df.at[i, "lo"], df.at[i, "hi"] = wilson_interval(round(float(df.at[i, "score"]) * n), n)
    return df


def _baseline_for(df, metric: str, value: str | None) -> float | None:
    base = df[(df.kind == "baseline") & (df.metric == metric)]
    if metric == "expression" and value is not None:
        base = df[(df.kind == "baseline") & (df.metric == f"expression.{value}")]
    return float(base.score.mean()) if len(base) and base.score.notna().any() else None


def _pooled(rows) -> tuple[float, float, float, int]:
    """Rows of one rate: (pooled rate, Wilson lo, hi, answers) over their answers."""
    ok = rows[rows.score.notna() & (rows.n.fillna(0) > 0)]
    n = int(ok.n.sum())
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    k = float((ok.score * ok.n).round().sum())
    lo, hi = wilson_interval(k, n)
    return k / n, lo, hi, n


def curves_with_intervals(df, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per vector kind and layer (a line each: layers are never averaged together): (alphas including
    0, metric, lo, hi), the baseline at alpha 0. Keyed "kind" when the sweep steered at one layer, else
    "kind @ layer L".

    A rate is pooled over the settings at an alpha (their answers together) with the Wilson interval
    of the pooled count; another metric is the plain mean over settings, with NaN bounds."""
    out = {}
    rate = is_rate(metric)
    if "layers" not in df:
        df = df.assign(layers=None)  # a frame without layers: one line per kind
    adds = df[(df.kind == "add") & (df.metric == metric)]
    one_layer = adds.layers.map(str).nunique() <= 1
    keys = sorted({(k, str(lay)) for k, lay in zip(adds.vector_kind, adds.layers) if isinstance(k, str)},
                  key=lambda kl: ((VECTOR_KINDS + (kl[0],)).index(kl[0]), kl[1]))
    for kind, layer in keys:
        part = adds[(adds.vector_kind == kind) & (adds.layers.map(str) == layer)]
        name = kind if one_layer else f"{kind} @ layer {layer}"
        pts = []
        for alpha, rows in part.groupby("alpha"):
            pts.append((float(alpha), *(_pooled(rows)[:3] if rate else (float(rows.score.mean()), np.nan, np.nan))))
        base_rows = df[(df.kind == "baseline") & df.metric.isin(
            [f"expression.{v}" for v in set(part.value)] if metric == "expression" else [metric])]
        if len(base_rows) and base_rows.score.notna().any():
            if rate:
                pts.append((0.0, *_pooled(base_rows.drop_duplicates(["setting_id", "metric"]))[:3]))
            else:
                bases = [b for b in (_baseline_for(df, metric, v) for v in set(part.value)) if b is not None]
                pts.append((0.0, float(np.mean(bases)), np.nan, np.nan))
        pts.sort()
        arr = np.array(pts, dtype=float).reshape(-1, 4)
        out[name] = (arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
    return out


def curves(df, metric: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per vector kind: (alphas including 0, metric), the baseline at alpha 0 (see :func:`curves_with_intervals`)."""
    return {k: (x, y) for k, (x, y, _, _) in curves_with_intervals(df, metric).items()}


def summary_table(df):
    """Wide table: one row per setting, one column per metric (the ``expression.<value>`` columns left out),
    each rate followed by its 95% Wilson interval (``<rate>_lo``, ``<rate>_hi``), and ``n.<eval>``: the
    answers behind that eval's numbers. Settings of distinct vectors stay distinct rows (``vector`` is the
    vector's name, which says its language and component; ``vector_id`` tells apart two of one name)."""
    keep = df[~df.metric.str.startswith(("expression.", "raw.", "centered.", "follow."))]
    idx = ["kind", "vector", "vector_id", "vector_kind", "value", "layers", "alpha", "beta"]
    wide = keep.pivot_table(index=idx, columns="metric", values="score", aggfunc="mean", dropna=False)
    wide = wide.dropna(how="all")
    rates = [m for m in wide.columns if is_rate(m)]
    if rates:
        bounds = keep[keep.metric.isin(rates)].pivot_table(index=idx, columns="metric", values=["lo", "hi"],
                                                           aggfunc="mean", dropna=False)
        cols = []
        for m in wide.columns:
            cols.append(wide[m])
            if m in rates:
                for b in ("lo", "hi"):
                    if (b, m) in bounds.columns:
                        cols.append(bounds[(b, m)].reindex(wide.index).rename(f"{m}_{b}"))
        import pandas as pd

        wide = pd.concat(cols, axis=1)
    ns = keep.pivot_table(index=idx, columns="eval", values="n", aggfunc="max", dropna=False)
    ns.columns = [f"n.{e}" for e in ns.columns]
    return wide.join(ns.reindex(wide.index)).reset_index()


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
        for j, (kind, (x, y, lo, hi)) in enumerate(curves_with_intervals(df, m).items()):
            if np.isfinite(lo).any():
                err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
                ax.errorbar(x, y, yerr=np.nan_to_num(err), marker="o", label=kind, color=f"C{j}", capsize=3)
            else:
                ax.plot(x, y, marker="o", label=kind, color=f"C{j}")
        ax.set_xlabel("alpha" + (f" ({df.alpha_mode.dropna().iloc[0]})" if df.alpha_mode.notna().any() else ""))
        ax.set_title(m + (" (95% Wilson)" if is_rate(m) else ""))
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


def describe(df, metric: str) -> list[str]:
    """A rate in words, per vector kind: the unsteered baseline and each alpha, pooled, with 95%
    Wilson intervals and the answers behind them."""
    out = []
    for kind, (x, y, lo, hi) in curves_with_intervals(df, metric).items():
        rows = df[(df.kind == "add") & (df.metric == metric) & (df.vector_kind == kind)]
        pts = "; ".join(f"alpha {a:g}: {v:.2f} [{l:.2f}, {h:.2f}]" for a, v, l, h in zip(x, y, lo, hi))
        out.append(f"{metric} with {kind} vectors (95% Wilson intervals, {int(rows.n.max())} answers a setting; "
                   f"alpha 0 is unsteered): {pts}.")
    return out
