"""Structure of the ten value vectors (DESIGN, "The job", step 7).

- the value-by-value cosine matrix;
- PCA of the shared axes to two components, aligned by orthogonal Procrustes (scipy's, with
  rotation, reflection and uniform scale: the sign of a principal component and the direction
  of travel round the circle carry no meaning) to the theoretical circle of
  :mod:`ingest.values` (10 points, 36 degrees apart, in circular order);
- R^2 of that fit overall and per higher-order group, and a permutation baseline (shuffle the
  value labels) with its p-value;
- agreement (Pearson and Spearman over the 45 off-diagonal pairs) of the cosine matrix with the
  theoretical circumplex similarity ``cos(angle_i - angle_j)`` and with the human inter-value
  correlations of the Value Portrait survey (:func:`load_human_correlations`).

Values are in ``ingest.values.VALUE_SLUGS`` order unless a function takes ``values``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats
from scipy.spatial import procrustes

from actstore.errors import InputError
from analyses.vectors import unit
from ingest.values import BY_SLUG, HIGHER_ORDER, VALUE_SLUGS, parse_value

DEFAULT_N_PERM = 1000


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """``[V, d]`` -> ``[V, V]`` float64 cosines (0 for a zero vector)."""
    u = unit(vectors)
    return u @ u.T


def offdiag(m: np.ndarray) -> np.ndarray:
    """The strictly upper-triangular entries of a square matrix, row by row: ``[V(V-1)/2]``."""
    i, j = np.triu_indices(m.shape[0], k=1)
    return np.asarray(m)[i, j]


def value_angles(values: Sequence[str] = VALUE_SLUGS) -> np.ndarray:
    """Theoretical angles in degrees ``[V]`` of the given values on Schwartz's circle."""
    return np.array([BY_SLUG[v].angle_deg for v in values])


def circle_positions(angles_deg: np.ndarray) -> np.ndarray:
    """Unit-circle points ``[V, 2]`` at the given angles."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def circumplex_similarity(angles_deg: np.ndarray) -> np.ndarray:
    """Theoretical similarity ``cos(angle_i - angle_j)``: ``[V, V]``."""
    a = np.radians(np.asarray(angles_deg, dtype=np.float64))
    return np.cos(a[:, None] - a[None, :])


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Centred PCA of the rows of ``x [V, d]``: ``(coords [V, k], explained variance ratio [k])``."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    total = float(np.sum(s**2))
    ratio = s[:k] ** 2 / total if total > 0 else np.zeros(k)
    return u[:, :k] * s[:k], ratio


def procrustes_r2(target: np.ndarray, coords: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Fit ``coords [V, 2]`` to ``target [V, 2]`` with scipy's Procrustes.

    Both are centred and scaled to unit Frobenius norm; returns ``(R^2 = 1 - disparity,
    standardised target, aligned coords)``. R^2 is the share of the target's spread the aligned
    points reproduce (1 = a perfect fit up to rotation, reflection and scale).
    """
    try:
        t, c, disparity = procrustes(target, coords)
    except ValueError as err:  # scipy refuses all-equal points
        raise InputError(f"cannot fit the circle: {err}; the value vectors are degenerate (all equal or zero)") from None
    return 1.0 - float(disparity), t, c


def group_r2(target_std: np.ndarray, aligned: np.ndarray, values: Sequence[str] = VALUE_SLUGS,
             groups: Mapping[str, Sequence[str]] = HIGHER_ORDER) -> dict[str, float]:
    """R^2 restricted to each higher-order group's points.

    ``1 - sum_g ||aligned_i - target_i||^2 / sum_g ||target_i||^2`` over the values i of group g,
    with the target standardised (centred on the circle's centre): how well that part of the circle
    is reproduced by the overall fit. It can be negative for a badly placed group. Groups with no
    value among ``values`` are left out.
    """
    out: dict[str, float] = {}
    index = {v: i for i, v in enumerate(values)}
    for name, members in groups.items():
        idx = [index[m] for m in members if m in index]
        if not idx:
            continue
        res = float(np.sum((aligned[idx] - target_std[idx]) ** 2))
        tot = float(np.sum(target_std[idx] ** 2))
        out[name] = 1.0 - res / tot if tot > 0 else float("nan")
    return out


@dataclass(frozen=True, slots=True)
class CircumplexFit:
    coords: np.ndarray  # [V, 2] PCA coordinates of the shared axes
    explained: np.ndarray  # [2] variance ratio of the two components
    target: np.ndarray  # [V, 2] theoretical circle, standardised
    aligned: np.ndarray  # [V, 2] coords after Procrustes onto target
    r2: float
    r2_by_group: dict[str, float]
    perm_r2: np.ndarray  # [n_perm] R^2 with shuffled value labels
    p_value: float  # (1 + #{perm_r2 >= r2}) / (1 + n_perm)


def circumplex_fit(shared_axes: np.ndarray, values: Sequence[str] = VALUE_SLUGS,
                   n_perm: int = DEFAULT_N_PERM, seed: int = 0) -> CircumplexFit:
    """PCA (2 components) of ``shared_axes [V, d]``, Procrustes to the circle, permutation p-value."""
    shared_axes = np.asarray(shared_axes)
    if shared_axes.ndim != 2 or shared_axes.shape[0] != len(values) or len(values) < 3:
        raise InputError(f"shared axes have shape {shared_axes.shape} for {len(values)} values; "
                         f"pass one [d] vector per value, at least 3 values")
    coords, explained = pca(shared_axes, 2)
    target = circle_positions(value_angles(values))
    r2, t_std, aligned = procrustes_r2(target, coords)
    rng = np.random.default_rng(seed)
    perm_r2 = np.array([procrustes_r2(target, coords[rng.permutation(len(values))])[0] for _ in range(n_perm)])
    p = (1.0 + float(np.sum(perm_r2 >= r2 - 1e-12))) / (1.0 + n_perm)
    return CircumplexFit(coords, explained, t_std, aligned, r2, group_r2(t_std, aligned, values), perm_r2, p)


def circular_order(points: np.ndarray) -> np.ndarray:
    """Indices of ``points [V, 2]`` going round their centroid counter-clockwise, starting at index 0."""
    p = np.asarray(points, dtype=np.float64)
    p = p - p.mean(axis=0)
    ang = np.arctan2(p[:, 1], p[:, 0])
    order = np.argsort((ang - ang[0]) % (2 * np.pi), kind="stable")
    return order


def same_cyclic_order(order: Sequence[int], reference: Sequence[int]) -> bool:
    """Whether ``order`` is ``reference`` up to rotation and reversal (a circle read either way)."""
    order, ref = list(order), list(reference)
    if sorted(order) != sorted(ref):
        return False
    n = len(ref)
    for seq in (ref, ref[::-1]):
        for shift in range(n):
            if order == seq[shift:] + seq[:shift]:
                return True
    return False


@dataclass(frozen=True, slots=True)
class MatrixAgreement:
    pearson: float
    pearson_p: float
    spearman: float
    spearman_p: float
    n_pairs: int


def compare_matrices(a: np.ndarray, b: np.ndarray) -> MatrixAgreement:
    """Pearson and Spearman correlation of two ``[V, V]`` symmetric matrices over their off-diagonal pairs."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"matrices have shapes {a.shape} and {b.shape}; pass two square matrices of one size")
    x, y = offdiag(a), offdiag(b)
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    return MatrixAgreement(float(pr.statistic), float(pr.pvalue), float(sr.statistic), float(sr.pvalue), len(x))


def load_human_correlations(path: str | Path, values: Sequence[str] = VALUE_SLUGS,
                            key: str = "pvq") -> tuple[np.ndarray, int]:
    """Human inter-value correlation matrix from a Value Portrait survey file.

    The file maps participant ids to ``{"pvq": {value name: centred score, ...}, ...}``
    (``human_pvq21_scores.json``); names in any spelling :func:`ingest.values.parse_value` takes.
    Returns ``(Pearson correlation across participants [V, V], participants used)``; participants
    missing any of the values are skipped.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "human_pvq21_scores.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"no survey file at {str(path)!r}; pass the path of Value Portrait's "
                         f"human_pvq21_scores.json") from None
    except json.JSONDecodeError as err:
        raise InputError(f"survey file {str(path)!r} is not valid JSON ({err}); pass Value Portrait's "
                         f"human_pvq21_scores.json") from None
    rows = []
    for record in data.values() if isinstance(data, dict) else []:
        scores = record.get(key) if isinstance(record, dict) else None
        if not isinstance(scores, dict):
            continue
        by_slug = {}
        for name, score in scores.items():
            try:
                by_slug[parse_value(name)] = float(score)
            except (InputError, TypeError, ValueError):
                continue
        if all(v in by_slug for v in values):
            rows.append([by_slug[v] for v in values])
    if len(rows) < 3:
        raise InputError(f"survey file {str(path)!r} has {len(rows)} participants with all {len(values)} "
                         f"{key!r} scores; expected Value Portrait's format (participant -> {{{key!r}: {{value: score}}}})")
    return np.corrcoef(np.array(rows), rowvar=False), len(rows)
