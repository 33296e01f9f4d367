"""Read a direction through the unembedding (logit lens on a vector).

``logits = U @ x`` with ``U [vocab, d]`` the unembedding and x the vector, or, when the final
norm's weight ``g [d]`` is given, ``x = g * v / sqrt(mean(v^2) + eps)`` (RMSNorm applied to v as
if it were a hidden state). Pass the norm's *effective* gain: for models whose norm multiplies
by ``1 + weight`` (Gemma), pass ``1 + weight``. The norm changes which tokens win (g reweights
dimensions) and the entropy (the RMS division fixes the scale); without it the entropy depends on
the vector's length, so compare entropies only between vectors of similar norm.

The product runs in U's dtype (float32 for a float32 U: a float64 copy of a 150k x 4k matrix is
5 GB); results are float64. Entropy is in nats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from actstore.errors import InputError


@dataclass(frozen=True, slots=True)
class Readout:
    promoted_ids: np.ndarray  # [..., k] int64, highest logit first
    promoted_logits: np.ndarray  # [..., k]
    suppressed_ids: np.ndarray  # [..., k] int64, lowest logit first
    suppressed_logits: np.ndarray  # [..., k]
    entropy: np.ndarray  # [...] nats of softmax(logits)


def logits(v: np.ndarray, unembed: np.ndarray, norm_weight: np.ndarray | None = None,
           eps: float = 1e-6) -> np.ndarray:
    """``v [..., d]``, ``unembed [vocab, d]`` (, ``norm_weight [d]``) -> ``[..., vocab]`` float64."""
    v = np.asarray(v, dtype=np.float64)
    unembed = np.asarray(unembed)
    if unembed.ndim != 2 or unembed.shape[1] != v.shape[-1]:
        raise InputError(f"unembedding has shape {unembed.shape} for vectors of width {v.shape[-1]}; "
                         f"expected [vocab, {v.shape[-1]}]")
    if norm_weight is not None:
        g = np.asarray(norm_weight, dtype=np.float64)
        if g.shape != (v.shape[-1],):
            raise InputError(f"final-norm weight has shape {g.shape}; expected [{v.shape[-1]}]")
        v = g * v / np.sqrt(np.mean(v**2, axis=-1, keepdims=True) + eps)
    dtype = unembed.dtype if unembed.dtype in (np.float32, np.float64) else np.float32
    return (v.astype(dtype) @ unembed.astype(dtype, copy=False).T).astype(np.float64)


def top_tokens(lg: np.ndarray, k: int, largest: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest (or smallest) entries of ``lg [..., vocab]``, sorted: ``(ids [..., k], values [..., k])``."""
    k = min(k, lg.shape[-1])
    key = -lg if largest else lg
    part = np.argpartition(key, k - 1, axis=-1)[..., :k]  # O(vocab), then sort only k
    order = np.argsort(np.take_along_axis(key, part, axis=-1), axis=-1, kind="stable")
    ids = np.take_along_axis(part, order, axis=-1).astype(np.int64)
    return ids, np.take_along_axis(lg, ids, axis=-1)


def entropy(lg: np.ndarray) -> np.ndarray:
    """Entropy in nats of ``softmax(lg)`` over the last axis: ``[..., vocab]`` -> ``[...]``."""
    lse = logsumexp(lg, axis=-1, keepdims=True)
    logp = lg - lse
    return -np.sum(np.exp(logp) * logp, axis=-1)


def readout(v: np.ndarray, unembed: np.ndarray, k: int = 10, norm_weight: np.ndarray | None = None,
            eps: float = 1e-6) -> Readout:
    """Top-``k`` promoted and suppressed tokens of ``v [..., d]`` and the entropy of its softmax."""
    lg = logits(v, unembed, norm_weight, eps)
    up_ids, up = top_tokens(lg, k, largest=True)
    down_ids, down = top_tokens(lg, k, largest=False)
    return Readout(up_ids, up, down_ids, down, entropy(lg))
