"""Pure arithmetic of the row axis: chunk sizes, which chunks a row set touches, block plans.

No I/O here. Every per-token array shares one global row axis; per-record arrays share the
record axis. An array of ``n`` rows and chunk height ``c`` has chunk ``k`` covering rows
``[k*c, min((k+1)*c, n))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Chunk target: at least ~1 MB (DESIGN.md); 4 MiB measured best for streaming reads here
#: while keeping tail-chunk rewrites on append cheap (benchmarks/bench_store.py).
TARGET_CHUNK_BYTES = 4 << 20
MIN_CHUNK_ROWS = 16


def chunk_rows_for(width: int, itemsize: int, target_bytes: int = TARGET_CHUNK_BYTES) -> int:
    """Rows per chunk so that a full-width chunk is about ``target_bytes``."""
    row_bytes = max(1, width * itemsize)
    return max(MIN_CHUNK_ROWS, target_bytes // row_bytes)


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    """Rows ``[lo, hi)`` of chunk ``chunk``, which starts at global row ``start``."""

    chunk: int
    start: int
    lo: int
    hi: int


def spans(row_lo: int, row_hi: int, chunk_rows: int) -> list[ChunkSpan]:
    """The chunks a contiguous row range touches, with the part of each that it covers."""
    out = []
    k = row_lo // chunk_rows
    while k * chunk_rows < row_hi:
        start = k * chunk_rows
        out.append(ChunkSpan(k, start, max(row_lo, start), min(row_hi, start + chunk_rows)))
        k += 1
    return out


def group_rows_by_chunk(rows: np.ndarray, chunk_rows: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Split a row set (any order, repeats allowed) by chunk.

    Returns ``(chunk, local_rows, positions)`` per touched chunk: ``local_rows`` are offsets inside
    the chunk and ``positions`` where each goes in the caller's output, so a gather reads each
    chunk once and scatters into place with numpy.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return []
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    chunks = sorted_rows // chunk_rows
    cuts = np.flatnonzero(np.diff(chunks)) + 1
    out = []
    for idx in np.split(np.arange(sorted_rows.size), cuts):
        k = int(chunks[idx[0]])
        out.append((k, sorted_rows[idx] - k * chunk_rows, order[idx]))
    return out


def n_chunks(n_rows: int, chunk_rows: int) -> int:
    return -(-n_rows // chunk_rows)
