"""Shared helpers for the benchmarks: timing and activation-like data."""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np


@contextmanager
def timer(out: dict, key: str):
    t0 = time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of a few runs: the least noisy estimate on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def activation_like(n: int, width: int, seed: int = 0) -> np.ndarray:
    """float32 [n, width] shaped like residual-stream activations: per-dimension scales spread over
    two orders of magnitude, a few 'massive' outlier dimensions, and token-to-token correlation
    (neighbouring tokens share a slowly drifting component)."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0, 0.8, size=width)).astype(np.float32)
    scale[rng.choice(width, size=max(1, width // 256), replace=False)] *= 40
    drift = np.cumsum(rng.standard_normal((n // 64 + 1, width), dtype=np.float32), axis=0) * 0.1
    x = rng.standard_normal((n, width), dtype=np.float32) + np.repeat(drift, 64, axis=0)[:n]
    return x * scale


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round-to-nearest-even (what torch does)."""
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
