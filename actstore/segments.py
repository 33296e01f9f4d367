"""Pure arithmetic of segments: where each global row of an array physically lives.

A store's arrays may live in several *segments*, each a Zarr v3 group of its own (``arrays/`` is
segment 0; a merged store adds ``segments/0001/`` ...). Segment ``s`` holds global token rows
``[row_start[s], row_start[s+1])`` and records ``[record_start[s], record_start[s+1])`` (the last
one runs to the end), at local rows counted from 0, with its own chunk grid. Weights always live
in segment 0. A store without rows in its ``segments`` table has one implicit segment,
``arrays`` starting at 0, so single-writer stores need no segment bookkeeping at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The Zarr group of segment 0, relative to the store root.
BASE = "arrays"


@dataclass(frozen=True, slots=True)
class Segment:
    """One Zarr group holding a contiguous run of rows and records."""

    segment_id: int
    path: str
    row_start: int
    record_start: int


@dataclass(frozen=True, slots=True)
class LocalSpan:
    """Rows ``[lo, hi)`` of segment ``seg`` (local rows), landing at ``out`` in the caller's output."""

    seg: int
    lo: int
    hi: int
    out: int


@dataclass(frozen=True)
class SegmentMap:
    """The segments of a store, in row order."""

    segments: tuple[Segment, ...] = (Segment(0, BASE, 0, 0),)

    def __post_init__(self) -> None:
        if not self.segments or self.segments[0].row_start != 0 or self.segments[0].record_start != 0:
            raise ValueError("segment 0 must start at row 0 and record 0")

    def __len__(self) -> int:
        return len(self.segments)

    def starts(self, axis: str | None) -> np.ndarray:
        """First global index of each segment on ``axis`` ("row", "record"; None = weights: all in 0)."""
        if axis == "row":
            return np.array([s.row_start for s in self.segments], dtype=np.int64)
        if axis == "record":
            return np.array([s.record_start for s in self.segments], dtype=np.int64)
        return np.zeros(1, dtype=np.int64)

    def locate(self, rows: np.ndarray, axis: str | None) -> np.ndarray:
        """Segment index of each global row. Empty segments sharing a start lose to the later one."""
        return np.searchsorted(self.starts(axis), rows, side="right") - 1

    def local_count(self, seg: int, n_total: int, axis: str | None) -> int:
        """How many of an array's ``n_total`` committed rows live in segment ``seg``."""
        st = self.starts(axis)
        end = int(st[seg + 1]) if seg + 1 < len(st) else n_total
        return max(0, min(end, n_total) - int(st[seg]))

    def spans(self, lo: int, hi: int, axis: str | None) -> list[LocalSpan]:
        """Split the global range ``[lo, hi)`` into per-segment local ranges."""
        st = self.starts(axis)
        out = []
        for k in range(len(st)):
            a = max(lo, int(st[k]))
            b = hi if k + 1 == len(st) else min(hi, int(st[k + 1]))
            if a < b:
                out.append(LocalSpan(k, a - int(st[k]), b - int(st[k]), a - lo))
        return out

    def chunk_plan(self, rows: np.ndarray, chunk_rows: int,
                   axis: str | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Split a row set (any order, repeats allowed) by (segment, chunk).

        Returns ``(chunk_start, offsets, positions)`` per touched chunk: ``chunk_start`` is the
        global row where the chunk begins, ``offsets`` the sorted rows inside it and ``positions``
        where each goes in the caller's output; each chunk is then read once.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return []
        order = np.argsort(rows, kind="stable")
        srt = rows[order]
        st = self.starts(axis)
        seg = np.searchsorted(st, srt, side="right") - 1
        base = st[seg]
        chunk = (srt - base) // chunk_rows
        # rows are sorted, so (segment, chunk) is non-decreasing: cut where either changes
        cuts = np.flatnonzero((np.diff(seg) != 0) | (np.diff(chunk) != 0)) + 1
        out = []
        for idx in np.split(np.arange(srt.size), cuts):
            i = idx[0]
            start = int(base[i] + chunk[i] * chunk_rows)
            out.append((start, srt[idx] - start, order[idx]))
        return out


def axis_of(kind: str, pool: str | None) -> str | None:
    """Which axis an array's rows follow: "row" (per token), "record" (pooled), None (weights)."""
    if kind != "activation":
        return None
    return "row" if pool == "token" else "record"


def segment_path(index: int) -> str:
    """Where the ``index``-th segment of a merged store lives, relative to the store root."""
    return BASE if index == 0 else f"segments/{index:04d}"
