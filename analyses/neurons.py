"""Value neurons: static scores from the MLP down projection (DESIGN, "The job", step 6).

Neuron i of a layer writes ``act_i * w_i`` into the residual stream, where ``w_i`` is column i of
the down projection ``W [d_model, d_mlp]``. For one value and layer, with the shared and unique
axes of :mod:`analyses.decompose` (an orthonormal basis of span(v_int, v_prompt)):

- **score** = ``||P w_i||``, the norm of w_i's projection on span(v_int, v_prompt) (the study's
  score: big writers into the plane rank first). ``relative=True`` gives ``||P w_i|| / ||w_i||``
  instead, the cosine of w_i's angle to the plane, which ignores how loud a neuron is.
- **kept**: the top ``top_frac`` of neurons by score, default 1% (at least one neuron); rank 1 is
  the highest score, ties broken by neuron index. 1% keeps about 190 neurons per value and layer
  on a 7B model (d_mlp = 18944): few enough to inspect and to scale when steering, many enough for
  class counts to mean something. It is a parameter, not a finding; report it with results.
- **class**: the 2-D projection ``(proj_shared, proj_unique)`` is compared with three *signed*
  directions, +shared (0 deg), +unique = intrinsic-unique (+90 deg) and -unique =
  prompted-unique (-90 deg); the neuron takes the closest if its angle is below ``max_angle``
  (default 30 deg), else ``"unclassified"``. The sign is the one the neuron writes with a positive
  activation. A neuron pointing *against* the shared axis (a suppressor of the value in both
  conditions) is therefore at >= 60 deg from every class and comes out unclassified, with its
  angle recorded; in gated MLPs, where activations take either sign, orient the columns by the
  sign of the activation difference first (``orient``) if that is what you mean.
- **attribution** (needs stored MLP activations): ``delta_act_i * proj_shared_i``, where
  ``delta_act_i`` = mean activation over R_exp minus over R_unexp: neuron i's contribution to the
  shift of the residual stream along the shared axis. :func:`attribution` gives it along any
  direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from actstore.errors import InputError
from analyses.decompose import shared_unique_axes
from analyses.vectors import unit

CLASSES: tuple[str, str, str] = ("shared", "intrinsic_unique", "prompted_unique")
UNCLASSIFIED = "unclassified"
#: Angles of the class directions in the (shared, unique) plane, in CLASSES order.
CLASS_ANGLES_DEG: tuple[float, float, float] = (0.0, 90.0, -90.0)
DEFAULT_TOP_FRAC = 0.01
DEFAULT_MAX_ANGLE = 30.0

#: Columns of the rows that :func:`score_layer` returns (the ``neuron_scores`` table).
COLUMNS: tuple[str, ...] = ("value", "layer", "neuron", "score", "rank", "class", "angle_deg",
                            "proj_shared", "proj_unique", "attribution")


def _check_w(w: np.ndarray, d: int) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2 or w.shape[0] != d:
        raise InputError(f"down projection has shape {w.shape}; expected [d_model={d}, d_mlp] "
                         f"(columns are the neurons' write directions; transpose an nn.Linear weight)")
    return w


def span_basis(v_int: np.ndarray, v_prompt: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Orthonormal basis ``[d, r]`` (r = 2, or 1 if the vectors are parallel) of span(v_int, v_prompt), by QR."""
    m = np.stack([np.asarray(v_int, np.float64), np.asarray(v_prompt, np.float64)], axis=1)
    q, r = np.linalg.qr(m)
    diag = np.abs(np.diag(r))
    keep = diag > rtol * max(float(diag.max()), 1e-300)
    return q[:, keep]


def projection_norms(w: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """``||P w_i||`` for every column of ``w [d, n]`` on an orthonormal ``basis [d, r]``: ``[n]`` float64."""
    coords = np.asarray(w).T @ basis.astype(np.asarray(w).dtype, copy=False)
    return np.linalg.norm(coords.astype(np.float64), axis=1)


def column_norms(w: np.ndarray) -> np.ndarray:
    """``||w_i||`` for every column of ``w [d, n]``: ``[n]`` float64."""
    return np.sqrt(np.einsum("dn,dn->n", w, w, dtype=np.float64))


def class_angles(coords: np.ndarray) -> np.ndarray:
    """Angle in degrees (0-180) between each ``(proj_shared, proj_unique)`` row of ``coords [n, 2]``
    and each class direction: ``[n, 3]`` in :data:`CLASSES` order."""
    theta = np.degrees(np.arctan2(coords[:, 1], coords[:, 0]))[:, None]
    diff = np.abs((theta - np.array(CLASS_ANGLES_DEG)[None, :] + 180.0) % 360.0 - 180.0)
    return diff


def classify(coords: np.ndarray, max_angle: float = DEFAULT_MAX_ANGLE) -> tuple[np.ndarray, np.ndarray]:
    """``coords [n, 2]`` -> ``(class names [n] object array, angle to the nearest class [n] degrees)``."""
    ang = class_angles(coords)
    best = ang.argmin(axis=1)
    best_angle = ang[np.arange(len(best)), best]
    names = np.array(CLASSES, dtype=object)[best]
    # A zero projection has no direction; atan2 would call it 0 deg, i.e. "shared".
    names[~(best_angle < max_angle) | ~np.any(coords != 0, axis=1)] = UNCLASSIFIED
    return names, best_angle


def n_keep(n: int, top_frac: float) -> int:
    """How many of ``n`` neurons the top ``top_frac`` keeps (at least 1)."""
    if not 0.0 < top_frac <= 1.0:
        raise InputError(f"top fraction {top_frac!r} is out of range; pass a number in (0, 1], e.g. 0.01 for 1%")
    return max(1, math.ceil(top_frac * n - 1e-9))


def ranking(scores: np.ndarray) -> np.ndarray:
    """Neuron indices by descending score, ties by index: ``[n]``."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def top_set(w: np.ndarray, direction: np.ndarray, top_frac: float = DEFAULT_TOP_FRAC) -> np.ndarray:
    """Indices of the top ``top_frac`` neurons by ``|w_i . unit(direction)|`` (projection norm on one vector)."""
    w = _check_w(w, np.asarray(direction).shape[0])
    scores = np.abs(w.T @ unit(direction).astype(w.dtype, copy=False)).astype(np.float64)
    return ranking(scores)[: n_keep(w.shape[1], top_frac)]


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / |a | b| of two index sets (1.0 for two empty sets)."""
    sa, sb = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    union = sa | sb
    return len(sa & sb) / len(union) if union else 1.0


def int_prompt_jaccard(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray,
                       top_frac: float = DEFAULT_TOP_FRAC) -> float:
    """Jaccard of the top sets scored on v_int alone and on v_prompt alone (one layer, one value)."""
    return jaccard(top_set(w, v_int, top_frac), top_set(w, v_prompt, top_frac))


def attribution(delta_act: np.ndarray, w: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Activation-weighted attribution: ``delta_act_i * (w_i . unit(direction_k))``.

    delta_act: ``[n]`` mean activation over R_exp minus over R_unexp; w: ``[d, n]``;
    directions: ``[k, d]`` or ``[d]``. Returns ``[k, n]`` (or ``[n]``) float64: how far neuron i
    moves the residual stream's group mean along each direction.
    """
    dirs = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    w = _check_w(w, dirs.shape[1])
    proj = (np.asarray(w).T @ (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).T.astype(w.dtype)).T
    out = np.asarray(delta_act, np.float64)[None, :] * proj.astype(np.float64)
    return out[0] if np.asarray(directions).ndim == 1 else out


def score_neurons(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray, *,
                  top_frac: float = DEFAULT_TOP_FRAC, max_angle: float = DEFAULT_MAX_ANGLE,
                  relative: bool = False, delta_act: np.ndarray | None = None,
                  orient: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Score, keep and classify the neurons of one layer for one value.

    w: ``[d, n]`` down projection; v_int, v_prompt: ``[d]``; delta_act: optional ``[n]``;
    orient: optional ``[n]`` signs (+1/-1) to flip columns before classifying. Returns columns
    (each ``[k]``, k kept neurons, best first): neuron, score, rank, class, angle_deg,
    proj_shared, proj_unique (of the oriented column, as classified), attribution (of the column
    as stored; NaN without ``delta_act``).
    """
    d = np.asarray(v_int).shape[-1]
    w = _check_w(w, d)
    shared, unique, sv = shared_unique_axes(v_int, v_prompt)
    axes = np.stack([shared, unique], axis=1).astype(w.dtype, copy=False)  # [d, 2]
    coords = (w.T @ axes).astype(np.float64)  # [n, 2]: the projection in (shared, unique) coordinates
    if sv[1] <= 1e-10 * sv[0]:
        # Parallel vectors span a line: the "unique" axis is arbitrary, so nothing projects on it.
        coords[:, 1] = 0.0
    raw_shared = coords[:, 0].copy()  # attribution is physical: act_i * w_i, whatever the orientation
    if orient is not None:
        coords = coords * np.where(np.asarray(orient) < 0, -1.0, 1.0)[:, None]
    score = np.linalg.norm(coords, axis=1)
    if relative:
        norms = column_norms(w)
        score = np.divide(score, norms, out=np.zeros_like(score), where=norms > 0)
    order = ranking(score)
    kept = order[: n_keep(w.shape[1], top_frac)]
    names, angle = classify(coords[kept], max_angle)
    if delta_act is None:
        attr = np.full(len(kept), np.nan)
    else:
        delta_act = np.asarray(delta_act, np.float64)
        if delta_act.shape != (w.shape[1],):
            raise InputError(f"activation differences have shape {delta_act.shape}; expected [{w.shape[1]}]")
        attr = delta_act[kept] * raw_shared[kept]
    return {
        "neuron": kept.astype(np.int64),
        "score": score[kept],
        "rank": np.arange(1, len(kept) + 1, dtype=np.int64),
        "class": names,
        "angle_deg": angle,
        "proj_shared": coords[kept, 0],
        "proj_unique": coords[kept, 1],
        "attribution": attr,
    }


def score_layer(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray, values: Sequence[str], layer: int,
                *, top_frac: float = DEFAULT_TOP_FRAC, max_angle: float = DEFAULT_MAX_ANGLE,
                relative: bool = False, delta_act: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`score_neurons` for every value at one layer, as rows of the ``neuron_scores`` table.

    w: ``[d, n]``; v_int, v_prompt: ``[V, d]``; delta_act: optional ``[V, n]``. Returns the
    :data:`COLUMNS`, each a ``[V * k]`` array.
    """
    v_int, v_prompt = np.asarray(v_int), np.asarray(v_prompt)
    if v_int.shape != v_prompt.shape or v_int.ndim != 2 or v_int.shape[0] != len(values):
        raise InputError(f"vectors have shapes {v_int.shape} and {v_prompt.shape} for {len(values)} values; "
                         f"expected two [V, d] arrays with V = {len(values)}")
    parts = []
    for i, value in enumerate(values):
        cols = score_neurons(w, v_int[i], v_prompt[i], top_frac=top_frac, max_angle=max_angle,
                             relative=relative, delta_act=None if delta_act is None else delta_act[i])
        k = len(cols["neuron"])
        parts.append({"value": np.array([value] * k, dtype=object),
                      "layer": np.full(k, layer, dtype=np.int64), **cols})
    return concat_columns(parts)


def concat_columns(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Stack column dicts with the same keys (e.g. the results of :func:`score_layer` over layers)."""
    if not parts:
        return {c: np.array([]) for c in COLUMNS}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def class_counts(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Kept neurons per (value, layer, class), every class listed (zeros included).

    rows: columns as from :func:`score_layer`. Returns columns value, layer, class, count.
    """
    keys = sorted(set(zip(rows["value"].tolist(), rows["layer"].tolist())), key=lambda t: (t[1], str(t[0])))
    out: dict[str, list] = {"value": [], "layer": [], "class": [], "count": []}
    for value, layer in keys:
        sel = (rows["value"] == value) & (rows["layer"] == layer)
        for cls in CLASSES + (UNCLASSIFIED,):
            out["value"].append(value)
            out["layer"].append(layer)
            out["class"].append(cls)
            out["count"].append(int(np.sum(rows["class"][sel] == cls)))
    return {"value": np.array(out["value"], dtype=object), "layer": np.array(out["layer"], dtype=np.int64),
            "class": np.array(out["class"], dtype=object), "count": np.array(out["count"], dtype=np.int64)}


def class_count_matrix(rows: dict[str, np.ndarray],
                       classes: Sequence[str] = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Kept neurons per layer and class, summed over values: ``(layers [L], counts [L, K])``.

    The input of :func:`analyses.plots.plot_class_counts`.
    """
    layers = np.unique(rows["layer"]).astype(np.int64)
    counts = np.array([[int(np.sum((rows["layer"] == layer) & (rows["class"] == c))) for c in classes]
                       for layer in layers], dtype=np.int64).reshape(len(layers), len(classes))
    return layers, counts


def jaccard_rows(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray, values: Sequence[str], layer: int,
                 top_frac: float = DEFAULT_TOP_FRAC) -> dict[str, np.ndarray]:
    """:func:`int_prompt_jaccard` for every value at one layer: columns value, layer, jaccard (each ``[V]``).

    w: ``[d, n]``; v_int, v_prompt: ``[V, d]``.
    """
    j = [int_prompt_jaccard(w, v_int[i], v_prompt[i], top_frac) for i in range(len(values))]
    return {"value": np.array(list(values), dtype=object), "layer": np.full(len(values), layer, dtype=np.int64),
            "jaccard": np.array(j, dtype=np.float64)}


def random_plane_null(w: np.ndarray, v_int: np.ndarray, v_prompt: np.ndarray, n: int = 100, seed: int = 0, *,
                      top_frac: float = DEFAULT_TOP_FRAC, max_angle: float = DEFAULT_MAX_ANGLE,
                      relative: bool = False) -> dict[str, np.ndarray]:
    """What random directions in the same geometry give: the null of the overlap figures.

    ``n`` random pairs with the norms of v_int and v_prompt and the angle between them (a random
    plane, :func:`analyses.stats.random_pairs_like`), each scored as the real pair is. Returns
    ``jaccard [n]`` (top set of one direction vs the other, as :func:`int_prompt_jaccard`) and
    ``counts [n, 4]`` (kept neurons per class, :data:`CLASSES` then unclassified, as
    :func:`score_neurons`). A real pair's overlap or class count above the range of these is more
    than the geometry of the pair and the spread of the columns explain.
    """
    from analyses.stats import random_pairs_like

    w = _check_w(w, np.asarray(v_int).shape[-1])
    a, b = random_pairs_like(v_int, v_prompt, n, seed)
    k = n_keep(w.shape[1], top_frac)
    wt = np.asarray(w).T
    # Jaccard of the two single-direction top sets, all pairs in one product
    proj = np.abs(wt @ unit(np.concatenate([a, b])).T.astype(w.dtype, copy=False)).astype(np.float64)  # [m, 2n]
    tops = np.argsort(-proj, axis=0, kind="stable")[:k]
    jac = np.array([jaccard(tops[:, i], tops[:, n + i]) for i in range(n)])
    # class counts of the plane's top set
    shared, unique, sv = shared_unique_axes(a, b)  # [n, d] each
    coords = (wt @ np.concatenate([shared, unique]).T.astype(w.dtype, copy=False)).astype(np.float64)  # [m, 2n]
    norms = column_norms(w) if relative else None
    counts = np.zeros((n, len(CLASSES) + 1), dtype=np.int64)
    for i in range(n):
        c = np.stack([coords[:, i], coords[:, n + i]], axis=1)
        if sv[i, 1] <= 1e-10 * sv[i, 0]:
            c[:, 1] = 0.0
        score = np.linalg.norm(c, axis=1)
        if norms is not None:
            score = np.divide(score, norms, out=np.zeros_like(score), where=norms > 0)
        names, _ = classify(c[ranking(score)[:k]], max_angle)
        counts[i] = [int(np.sum(names == cls)) for cls in CLASSES + (UNCLASSIFIED,)]
    return {"jaccard": jac, "counts": counts}
