"""Statistics that tell a finding from an artefact: permutation tests, intervals, reliability, nulls.

Pure functions over NumPy arrays, seeded, with no store access; the ``run_*`` modules call them
and record what they return with the result they qualify.

- **Mantel tests** (:func:`mantel`, :func:`mantel_layers`): the correlation of two value-by-value
  matrices over their off-diagonal pairs, with a p-value from permuting the value labels of one
  matrix (rows and columns together). The 45 pairs of a 10x10 matrix are not independent (each
  value takes part in 9), so the parametric p of a Pearson r over them is too small; the
  permutation keeps that dependence. :func:`mantel_layers` corrects the choice of the best of
  several layers by the max-statistic: each permutation's statistic is the maximum over layers,
  so the corrected p of the chosen layer is the chance that *any* layer reaches its r by luck.
- **Partial correlation** (:func:`partial_corr`, :func:`partial_mantel`): the model's agreement
  with a target beyond what a third matrix (e.g. how often the labels co-occur) already explains.
- **Bootstrap** (:func:`poisson_weights`, :func:`percentile_ci`, :func:`bootstrap_ci`): intervals
  over responses. Streamed analyses use the Poisson(1) bootstrap: each response gets an
  independent Poisson(1) weight per replicate, so a replicate is computable chunk by chunk without
  knowing the group sizes first (Hanley & MacGibbon 2006; Chamandy et al. 2012); weights are a hash
  of (seed, response, group, replicate), so they do not depend on how the data are chunked.
- **Split-half reliability** (:func:`half_masks`, :func:`spearman_brown`): a vector estimated on
  two random halves of its responses; the cosine of the two half-vectors, stepped up to the full
  size with Spearman-Brown ``2r / (1 + r)``. Noise gives about 0, a real direction near 1.
- **Rates** (:func:`wilson_interval`): the Wilson score interval of k successes in n trials.
- **Equal-size comparison** (:func:`subsample_indices`, :func:`subsample_repeat`): statistics that
  depend on sample size (Distinct-n) compared on repeated subsamples of one common size.
- **Random directions** (:func:`random_unit`, :func:`random_pairs_like`): nulls in the same space.

Every p-value here is ``(1 + #{null >= observed}) / (1 + n)``: never 0, exact under the null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from actstore.errors import InputError

#: Defaults that keep runs fast; the CLI exposes them as --permutations and --bootstrap.
DEFAULT_PERMUTATIONS = 1000
DEFAULT_BOOTSTRAP = 200
DEFAULT_SPLITS = 20
LEVEL = 0.95


# --- small helpers ------------------------------------------------------------------------------


def offdiag(m: np.ndarray) -> np.ndarray:
    """Strict upper triangle of ``[..., V, V]`` -> ``[..., V(V-1)/2]`` (row by row)."""
    m = np.asarray(m)
    i, j = np.triu_indices(m.shape[-1], k=1)
    return m[..., i, j]


def _zscore(x: np.ndarray) -> np.ndarray:
    """Centre and scale the last axis to unit norm (so a dot product is a Pearson r); a constant row -> 0."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=-1, keepdims=True)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def _ranks(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(np.asarray(x, dtype=np.float64), axis=-1)


def empirical_p(observed: float, null: np.ndarray, alternative: str = "greater") -> float:
    """``(1 + #{null >= observed}) / (1 + n)``; ``"two-sided"`` compares absolute values."""
    null = np.asarray(null, dtype=np.float64)
    if alternative == "two-sided":
        hits = np.sum(np.abs(null) >= abs(observed) - 1e-12)
    elif alternative == "greater":
        hits = np.sum(null >= observed - 1e-12)
    elif alternative == "less":
        hits = np.sum(null <= observed + 1e-12)
    else:
        raise InputError(f"bad alternative {alternative!r}; use greater, less or two-sided")
    return float((1 + hits) / (1 + null.size))


def percentile_ci(samples: np.ndarray, level: float = LEVEL, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval ``(lo, hi)`` of replicates along ``axis`` (NaN replicates ignored)."""
    a = (1 - level) / 2
    s = np.asarray(samples, dtype=np.float64)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanquantile(s, a, axis=axis)
            hi = np.nanquantile(s, 1 - a, axis=axis)
    return lo, hi


@dataclass(frozen=True, slots=True)
class Interval:
    """An estimate with its interval and what it rests on (n, method, level)."""

    estimate: float
    lo: float
    hi: float
    n: int
    method: str
    level: float = LEVEL

    def as_dict(self) -> dict[str, float | int | str]:
        return {"estimate": self.estimate, "lo": self.lo, "hi": self.hi, "n": self.n, "method": self.method,
                "level": self.level}

    def text(self, fmt: str = ".3f") -> str:
        return f"{self.estimate:{fmt}} [{self.lo:{fmt}}, {self.hi:{fmt}}]"


# --- permutation tests on matrices ---------------------------------------------------------------


def _check_square(*ms: np.ndarray) -> int:
    v = ms[0].shape[-1]
    for m in ms:
        if m.shape[-2:] != (v, v):
            raise InputError(f"matrices have shapes {[x.shape for x in ms]}; pass square matrices of one size")
    if v < 3:
        raise InputError(f"a Mantel test needs at least 3 values, got {v}")
    return v


def permutations(n_items: int, n_perm: int, seed: int) -> np.ndarray:
    """``[n_perm, n_items]`` random permutations (seeded)."""
    if n_perm < 1:
        raise InputError(f"number of permutations must be at least 1, got {n_perm}")
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_items) for _ in range(n_perm)])


def _permuted_offdiag(m: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """``m [V, V]`` with rows and columns permuted by each of ``perms [P, V]``: off-diagonals ``[P, K]``."""
    i, j = np.triu_indices(m.shape[0], k=1)
    return np.asarray(m, dtype=np.float64)[perms[:, i], perms[:, j]]


@dataclass(frozen=True, slots=True)
class MantelResult:
    r: float  # Pearson (or Spearman) r over the off-diagonal pairs
    p: float  # permutation p-value
    n_perm: int
    n_pairs: int
    method: str
    null_mean: float
    null_hi: float  # the null's 95th percentile (one-sided 5% critical value)

    def as_dict(self) -> dict[str, float | int | str]:
        return {"r": self.r, "p": self.p, "n_perm": self.n_perm, "n_pairs": self.n_pairs, "method": self.method,
                "null_mean": self.null_mean, "null_95": self.null_hi}


def mantel(a: np.ndarray, b: np.ndarray, n_perm: int = DEFAULT_PERMUTATIONS, seed: int = 0,
           method: str = "pearson", alternative: str = "greater") -> MantelResult:
    """Mantel test of two ``[V, V]`` symmetric matrices: r over off-diagonal pairs, p by permuting ``b``'s labels."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    v = _check_square(a, b)
    perms = permutations(v, n_perm, seed)
    x, y, yp = offdiag(a), offdiag(b), _permuted_offdiag(b, perms)
    if method == "spearman":
        x, y, yp = _ranks(x), _ranks(y), _ranks(yp)
    elif method != "pearson":
        raise InputError(f"bad method {method!r}; use pearson or spearman")
    xz = _zscore(x)
    r = float(xz @ _zscore(y))
    null = _zscore(yp) @ xz
    return MantelResult(r, empirical_p(r, null, alternative), n_perm, x.size, method, float(null.mean()),
                        float(np.quantile(null, 0.95)))


@dataclass(frozen=True, slots=True)
class LayerMantel:
    """A Mantel test at each of L layers against one target, with the max-statistic correction."""

    r: np.ndarray  # [L]
    p: np.ndarray  # [L] uncorrected
    p_corrected: np.ndarray  # [L] against the maximum over layers of each permutation
    best: int  # index of the layer with the highest r
    n_perm: int

    def as_dict(self, layers: Sequence[int]) -> dict[str, object]:
        return {"r": {str(l): float(x) for l, x in zip(layers, self.r)},
                "p": {str(l): float(x) for l, x in zip(layers, self.p)},
                "p_corrected": {str(l): float(x) for l, x in zip(layers, self.p_corrected)},
                "best_layer": int(layers[self.best]), "best_r": float(self.r[self.best]),
                "best_p_corrected": float(self.p_corrected[self.best]), "n_perm": self.n_perm}


def mantel_layers(mats: np.ndarray, target: np.ndarray, n_perm: int = DEFAULT_PERMUTATIONS,
                  seed: int = 0) -> LayerMantel:
    """Mantel tests of ``mats [L, V, V]`` against ``target [V, V]`` with one permutation set for all layers.

    Corrected p of layer l = ``(1 + #{max over layers of the permuted r >= r_l}) / (1 + n)``
    (Westfall-Young max-T), which controls the family-wise error of reporting the best layer.
    """
    mats, target = np.asarray(mats, np.float64), np.asarray(target, np.float64)
    if mats.ndim != 3:
        raise InputError(f"expected per-layer matrices [L, V, V], got shape {mats.shape}")
    v = _check_square(*mats, target)
    perms = permutations(v, n_perm, seed)
    xz = _zscore(offdiag(mats))  # [L, K]
    r = xz @ _zscore(offdiag(target))  # [L]
    null = xz @ _zscore(_permuted_offdiag(target, perms)).T  # [L, P]
    p = np.array([empirical_p(r[l], null[l]) for l in range(len(r))])
    mx = null.max(axis=0)
    pc = np.array([empirical_p(r[l], mx) for l in range(len(r))])
    return LayerMantel(r, p, pc, int(np.argmax(r)), n_perm)


def partial_corr(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Pearson correlation of ``x`` and ``y`` (1-D) with ``z`` partialled out of both."""
    xz, yz, zz = _zscore(x), _zscore(y), _zscore(z)
    rxy, rxz, ryz = float(xz @ yz), float(xz @ zz), float(yz @ zz)
    den = math.sqrt(max((1 - rxz**2) * (1 - ryz**2), 0.0))
    return (rxy - rxz * ryz) / den if den > 1e-12 else float("nan")


@dataclass(frozen=True, slots=True)
class PartialMantel:
    r: float  # partial r of a and b given c
    p: float
    r_ab: float  # plain r of a and b
    r_cb: float  # plain r of c and b: what c alone explains
    r_ac: float
    n_perm: int

    def as_dict(self) -> dict[str, float | int]:
        return {"partial_r": self.r, "p": self.p, "r_model_target": self.r_ab, "r_control_target": self.r_cb,
                "r_model_control": self.r_ac, "n_perm": self.n_perm}


def partial_mantel(a: np.ndarray, b: np.ndarray, c: np.ndarray, n_perm: int = DEFAULT_PERMUTATIONS,
                   seed: int = 0) -> PartialMantel:
    """Partial Mantel test: r(a, b | c) over off-diagonals, p by permuting ``a``'s labels (Smouse et al. 1986)."""
    a, b, c = (np.asarray(m, np.float64) for m in (a, b, c))
    v = _check_square(a, b, c)
    x, y, z = offdiag(a), offdiag(b), offdiag(c)
    r = partial_corr(x, y, z)
    yz, zz = _zscore(y), _zscore(z)
    ryz = float(yz @ zz)
    xp = _zscore(_permuted_offdiag(a, permutations(v, n_perm, seed)))  # [P, K]
    rxy, rxz = xp @ yz, xp @ zz
    den = np.sqrt(np.clip((1 - rxz**2) * (1 - ryz**2), 0, None))
    null = np.divide(rxy - rxz * ryz, den, out=np.zeros_like(rxy), where=den > 1e-12)
    return PartialMantel(r, empirical_p(r, null), float(_zscore(x) @ yz), ryz, float(_zscore(x) @ zz), n_perm)


def cooccurrence_matrix(labels: np.ndarray) -> np.ndarray:
    """Value-by-value correlation (phi) of binary labels ``[n_records, V]`` (NaN = not labelled).

    Pairwise complete: each pair uses the records labelled for both. A value with no variance
    among them gives 0. This is the matrix that needs no model at all: how the labels go together.
    """
    x = np.asarray(labels, dtype=np.float64)
    v = x.shape[1]
    out = np.eye(v)
    for i in range(v):
        for j in range(i + 1, v):
            ok = ~np.isnan(x[:, i]) & ~np.isnan(x[:, j])
            if ok.sum() < 3:
                out[i, j] = out[j, i] = 0.0
                continue
            r = float(_zscore(x[ok, i]) @ _zscore(x[ok, j]))
            out[i, j] = out[j, i] = r
    return out


# --- bootstrap and split-half --------------------------------------------------------------------

_M = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, vectorised over uint64."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def hash_uniform(seed: int, keys: np.ndarray, n_rep: int, stream: int = 0) -> np.ndarray:
    """Uniforms ``[n_rep, n]`` in [0, 1), a pure function of (seed, stream, key, replicate).

    ``keys [n]`` are non-negative ints (e.g. ``record_id * 1024 + group``); the same key gets the
    same numbers whichever chunk it arrives in.
    """
    k = np.asarray(keys, dtype=np.int64).astype(np.uint64)
    with np.errstate(over="ignore"):
        base = _mix(k * np.uint64(0x9E3779B97F4A7C15) + np.uint64((seed * 1_000_003 + stream * 7919) & 0xFFFFFFFF))
        reps = _mix(np.arange(n_rep, dtype=np.uint64) * np.uint64(0xD1B54A32D192ED03) + np.uint64(stream + 1))
        x = _mix(base[None, :] ^ reps[:, None])
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


#: P(Poisson(1) <= k) for k = 0..11; beyond that the chance is below 1e-9.
_POISSON1_CDF = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(12)])


def poisson_weights(seed: int, keys: np.ndarray, n_boot: int) -> np.ndarray:
    """Poisson(1) bootstrap weights ``[n_boot, n]`` (float64) for the items named by ``keys [n]``."""
    u = hash_uniform(seed, keys, n_boot, stream=1)
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float64)


def half_masks(seed: int, keys: np.ndarray, n_splits: int) -> np.ndarray:
    """``[n_splits, n]`` bool: True = half A of each random split (each item a fair coin per split)."""
    return hash_uniform(seed, keys, n_splits, stream=2) < 0.5


def spearman_brown(r: np.ndarray | float, factor: float = 2.0) -> np.ndarray | float:
    """Reliability at ``factor`` times the length: ``factor r / (1 + (factor - 1) r)`` (r <= 0 stays as is)."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(r > 0, factor * r / (1 + (factor - 1) * r), r)
    return float(out) if out.ndim == 0 else out


def bootstrap_ci(data: np.ndarray, statistic: Callable[[np.ndarray], float], n_boot: int = DEFAULT_BOOTSTRAP,
                 seed: int = 0, level: float = LEVEL) -> Interval:
    """Percentile bootstrap of ``statistic(data)`` resampling the rows of ``data`` (in memory)."""
    data = np.asarray(data)
    n = len(data)
    est = float(statistic(data))
    if n < 2 or n_boot < 1:
        return Interval(est, float("nan"), float("nan"), n, "bootstrap", level)
    rng = np.random.default_rng(seed)
    reps = np.array([statistic(data[rng.integers(0, n, n)]) for _ in range(n_boot)], dtype=np.float64)
    lo, hi = percentile_ci(reps, level)
    return Interval(est, float(lo), float(hi), n, f"percentile bootstrap ({n_boot})", level)


def split_half(x: np.ndarray, positive: np.ndarray, n_splits: int = DEFAULT_SPLITS, seed: int = 0) -> tuple[float, float]:
    """Split-half reliability of a difference-in-means direction, in memory.

    x: ``[n, d]`` pooled activations; positive: ``[n]`` bool. Each split halves every group at
    random; r = the mean cosine of the two halves' vectors; returns ``(r, Spearman-Brown 2r/(1+r))``.
    The streaming twin (one pass over a store) lives in :mod:`analyses.run_vectors`.
    """
    from analyses.vectors import cosine

    x = np.asarray(x, np.float64)
    positive = np.asarray(positive, bool)
    masks = half_masks(seed, np.arange(len(x)), n_splits)
    rs = []
    for m in masks:
        parts = []
        for half in (m, ~m):
            p, q = half & positive, half & ~positive
            if not p.any() or not q.any():
                break
            parts.append(x[p].mean(0) - x[q].mean(0))
        if len(parts) == 2:
            rs.append(float(cosine(parts[0], parts[1])))
    r = float(np.mean(rs)) if rs else float("nan")
    return r, float(spearman_brown(r))


# --- rates ------------------------------------------------------------------------------------------


def wilson_interval(k: float, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n; ``(nan, nan)`` for n = 0."""
    from scipy.stats import norm

    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf(1 - (1 - level) / 2))
    p = min(max(k / n, 0.0), 1.0)
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_interval(rate: float, n: int, level: float = LEVEL) -> Interval:
    """A recorded rate (share of n) with its Wilson interval."""
    lo, hi = wilson_interval(round(rate * n), n, level)
    return Interval(float(rate), lo, hi, int(n), "wilson", level)


# --- equal-size subsampling ------------------------------------------------------------------------


def subsample_indices(n: int, size: int, n_rep: int, seed: int = 0) -> np.ndarray:
    """``[n_rep, size]`` index sets drawn without replacement from ``range(n)`` (seeded)."""
    if not 0 < size <= n:
        raise InputError(f"cannot draw {size} of {n} items; the subsample size must be in 1..{n}")
    rng = np.random.default_rng(seed)
    return np.stack([np.sort(rng.choice(n, size, replace=False)) for _ in range(n_rep)])


def subsample_repeat(items: Sequence, size: int, statistic: Callable[[list], float], n_rep: int = 20,
                     seed: int = 0, level: float = LEVEL) -> Interval:
    """``statistic`` on ``n_rep`` random subsets of ``size`` items: mean and percentile range over repetitions.

    For statistics that change with sample size (Distinct-n falls as texts pile up): compare groups
    only at one common ``size``. The interval is the spread over subsamples (how much the number
    moves with which responses were drawn), not a confidence interval for the full group.
    """
    items = list(items)
    idx = subsample_indices(len(items), size, n_rep, seed)
    vals = np.array([statistic([items[i] for i in row]) for row in idx], dtype=np.float64)
    lo, hi = percentile_ci(vals, level)
    return Interval(float(vals.mean()), float(lo), float(hi), size, f"subsample x{n_rep}", level)


# --- random directions -------------------------------------------------------------------------------


def random_unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    """``[n, d]`` directions uniform on the sphere (normalised Gaussians)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def random_pairs_like(a: np.ndarray, b: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs ``([n, d], [n, d])`` with the norms of ``a`` and ``b`` and the angle between them.

    A random plane through the origin with the same geometry as (a, b): the null for a statistic
    of the pair that should depend on where the pair points, not on the angle between its members.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
    sin = math.sqrt(max(0.0, 1 - cos * cos))
    e1 = random_unit(n, a.shape[0], seed)
    e2 = random_unit(n, a.shape[0], seed + 1)
    e2 = e2 - np.sum(e2 * e1, axis=1, keepdims=True) * e1
    e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
    return na * e1, nb * (cos * e1 + sin * e2)


def null_summary(null: np.ndarray, observed: float, level: float = LEVEL) -> dict[str, float]:
    """Mean and percentile range of a null distribution, with the observed value's p (greater)."""
    null = np.asarray(null, dtype=np.float64)
    lo, hi = percentile_ci(null, level)
    return {"observed": float(observed), "null_mean": float(np.nanmean(null)), "null_lo": float(lo),
            "null_hi": float(hi), "p": empirical_p(observed, null[~np.isnan(null)]), "n": int(null.size)}
