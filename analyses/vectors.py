"""Difference-in-means value vectors (DESIGN, "The job", step 4).

For value s, condition e and layer l::

    v[s, e, l] = mean over R_exp(s, e) of a(r)  -  mean over R_unexp(s, e) of a(r)

where a(r) is a response's pooled activation. Everything here is a pure function over NumPy
arrays; the store supplies the group means (``store.group_means(site, layers, groups) ->
(means [G, L, d] float64, counts [G])``) and this module turns them into vectors, so the
``run(store, spec)`` wiring is: build the group list with :func:`groups_for`, ask the store for
their means, call :func:`value_vectors`.

Shape letters: G groups, L layers, d width, V values, C conditions, n responses.
A group is named by a key ``(value slug, condition, label)``, e.g. ``("power", "prompted", "exp")``,
or by the same as one string, ``"power:prompted:exp"`` (handy as a SQL-built group label).
All results are float64: means of many float32/bf16 activations lose digits otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS

#: The two ways a value reaches the model: no system prompt, or a value-priority system prompt.
CONDITIONS: tuple[str, str] = ("intrinsic", "prompted")
#: Judge labels: the response expresses the target value (R_exp) or not (R_unexp).
EXP, UNEXP = "exp", "unexp"

GroupKey = tuple[str, str, str]  # (value slug, condition, label)
#: How callers may name a group: a key, or the string "value:condition:label" (see as_group_key).
GroupLabel = GroupKey | str


# --- plain vector helpers -------------------------------------------------------------------


def unit(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """``v / ||v||`` along ``axis`` (float64); a zero vector stays zero rather than becoming NaN."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=axis, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 0)


def cosine(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """Cosine similarity of ``a`` and ``b`` along ``axis`` (broadcasting); 0 where either is zero."""
    return np.sum(unit(a, axis) * unit(b, axis), axis=axis)


def diff_in_means(mean_pos: np.ndarray, mean_neg: np.ndarray) -> np.ndarray:
    """``mean_pos - mean_neg`` in float64. Shapes ``[..., d]`` (broadcasting) -> ``[..., d]``."""
    return np.asarray(mean_pos, dtype=np.float64) - np.asarray(mean_neg, dtype=np.float64)


# --- from pooled activations or running sums -------------------------------------------------


def group_sums(acts: np.ndarray, group_ids: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-group sums and counts of pooled activations, for streaming over chunks.

    acts: ``[n, ..., d]`` float32/float64 (e.g. ``[n, L, d]``); group_ids: ``[n]`` ints in
    ``[0, n_groups)``, or -1 for rows that belong to no group. Returns ``(sums [G, ..., d] float64,
    counts [G] int64)``; add the results of successive chunks, then call :func:`means_from_sums`.
    """
    acts = np.asarray(acts)
    group_ids = np.asarray(group_ids)
    if acts.shape[0] != group_ids.shape[0]:
        raise InputError(f"{acts.shape[0]} activation rows but {group_ids.shape[0]} group ids; pass one id per row")
    if group_ids.size and (group_ids.max() >= n_groups or group_ids.min() < -1):
        raise InputError(f"group ids must lie in [-1, {n_groups}); got {group_ids.min()}..{group_ids.max()}")
    # A one-hot matrix product is one BLAS call per chunk, far faster than np.add.at.
    onehot = (group_ids[None, :] == np.arange(n_groups)[:, None]).astype(np.float64)
    flat = acts.reshape(acts.shape[0], -1).astype(np.float64, copy=False)
    sums = (onehot @ flat).reshape((n_groups,) + acts.shape[1:])
    return sums, onehot.sum(axis=1).astype(np.int64)


def means_from_sums(sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``sums [G, ..., d] / counts [G]`` in float64; an empty group gives NaN (checked later by the contrast)."""
    sums = np.asarray(sums, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64).reshape((-1,) + (1,) * (sums.ndim - 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, sums / np.where(c > 0, c, 1.0), np.nan)


def group_means(acts: np.ndarray, group_ids: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """In-memory twin of ``store.group_means``: ``acts [n, L, d]`` -> ``(means [G, L, d], counts [G])``."""
    sums, counts = group_sums(acts, group_ids, n_groups)
    return means_from_sums(sums, counts), counts


def diff_in_means_pooled(acts: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Difference in means straight from pooled activations.

    acts: ``[n, ..., d]``; positive: ``[n]`` bool (True = R_exp). Returns ``[..., d]`` float64.
    """
    positive = np.asarray(positive, dtype=bool)
    means, counts = group_means(acts, positive.astype(np.int64), 2)
    if counts.min() == 0:
        raise InputError(f"difference in means needs both groups non-empty; got {counts[1]} positive, "
                         f"{counts[0]} negative rows")
    return diff_in_means(means[1], means[0])


# --- group tables and contrasts ----------------------------------------------------------------


def groups_for(values: Sequence[str] = VALUE_SLUGS, conditions: Sequence[str] = CONDITIONS,
               labels: Sequence[str] = (EXP, UNEXP)) -> list[GroupKey]:
    """Every (value, condition, label) key, in a fixed order: the ``groups`` to ask the store for."""
    return [(v, c, lab) for v in values for c in conditions for lab in labels]


def as_group_key(label: object) -> GroupKey:
    """A group label as the store returns it -> ``(value, condition, label)``.

    Accepts a tuple or list of three strings, or one string ``"value:condition:label"`` (what a
    SQL query can build with ``value || ':' || condition || ':' || label``).
    """
    parts = label.split(":") if isinstance(label, str) else list(label)  # type: ignore[call-overload]
    if len(parts) != 3:
        raise InputError(f"group label {label!r} is not (value, condition, label); "
                         f"write it as 'value:condition:label', e.g. 'power:prompted:exp'")
    return (str(parts[0]), str(parts[1]), str(parts[2]))


def _lookup(groups: Sequence[GroupLabel], key: GroupKey) -> int:
    try:
        return [as_group_key(g) for g in groups].index(key)
    except ValueError:
        raise InputError(f"no group {key!r} among the {len(groups)} groups read; "
                         f"ask the store for it (analyses.vectors.groups_for lists them)") from None


def exp_vs_unexp_index(groups: Sequence[GroupLabel], values: Sequence[str] = VALUE_SLUGS,
                       conditions: Sequence[str] = CONDITIONS) -> tuple[np.ndarray, np.ndarray]:
    """The default contrast, R_exp minus R_unexp within each condition: ``(pos [V, C], neg [V, C])`` indices."""
    pos = np.array([[_lookup(groups, (v, c, EXP)) for c in conditions] for v in values], dtype=np.int64)
    neg = np.array([[_lookup(groups, (v, c, UNEXP)) for c in conditions] for v in values], dtype=np.int64)
    return pos, neg


def prompted_minus_intrinsic_index(groups: Sequence[GroupLabel], values: Sequence[str] = VALUE_SLUGS,
                                   label: str = EXP) -> tuple[np.ndarray, np.ndarray]:
    """Prompted group minus intrinsic group with the same label: ``(pos [V, 1], neg [V, 1])``.

    This contrasts activations, not vectors; for the difference of the two value vectors use
    :func:`condition_delta` (the two differ by the unexp means' shift between conditions).
    """
    pos = np.array([[_lookup(groups, (v, "prompted", label))] for v in values], dtype=np.int64)
    neg = np.array([[_lookup(groups, (v, "intrinsic", label))] for v in values], dtype=np.int64)
    return pos, neg


def pair_index(groups: Sequence[GroupLabel],
               pairs: Sequence[tuple[GroupKey, GroupKey]]) -> tuple[np.ndarray, np.ndarray]:
    """Any two groups: ``pairs`` of (positive key, negative key) -> ``(pos [P], neg [P])`` indices."""
    pos = np.array([_lookup(groups, p) for p, _ in pairs], dtype=np.int64)
    neg = np.array([_lookup(groups, n) for _, n in pairs], dtype=np.int64)
    return pos, neg


def contrast(means: np.ndarray, counts: np.ndarray, pos: np.ndarray, neg: np.ndarray,
             groups: Sequence[GroupLabel] | None = None, min_count: int = 1) -> np.ndarray:
    """``means[pos] - means[neg]``.

    means: ``[G, L, d]``; counts: ``[G]``; pos, neg: int index arrays of one shape ``[...]``.
    Returns ``[..., L, d]`` float64. Any group used with fewer than ``min_count`` responses is an
    error (a vector from one or two responses is noise, and an empty one is NaN); ``groups`` only
    serves to name it.
    """
    counts = np.asarray(counts)
    pos, neg = np.asarray(pos), np.asarray(neg)
    used = np.union1d(pos.ravel(), neg.ravel())
    thin = used[counts[used] < min_count]
    if thin.size:
        g = int(thin[0])
        name = repr(groups[g]) if groups is not None else f"#{g}"
        raise InputError(f"group {name} has {int(counts[g])} responses, fewer than {min_count}; "
                         f"label more responses or leave that value out")
    means = np.asarray(means, dtype=np.float64)
    return means[pos] - means[neg]


def value_vectors(means: np.ndarray, counts: np.ndarray, groups: Sequence[GroupLabel],
                  values: Sequence[str] = VALUE_SLUGS, conditions: Sequence[str] = CONDITIONS,
                  min_count: int = 1) -> np.ndarray:
    """Value vectors ``[V, C, L, d]`` (float64) from group means ``[G, L, d]``, R_exp minus R_unexp."""
    pos, neg = exp_vs_unexp_index(groups, values, conditions)
    return contrast(means, counts, pos, neg, groups, min_count)


def condition_delta(vectors: np.ndarray, conditions: Sequence[str] = CONDITIONS) -> np.ndarray:
    """Prompted minus intrinsic vector: ``[V, C, L, d]`` -> ``[V, L, d]``."""
    conditions = list(conditions)
    return vectors[:, conditions.index("prompted")] - vectors[:, conditions.index("intrinsic")]
