"""Which records go through the model together, and which are committed together. Pure: no I/O.

Records are ordered by length, longest first (an out-of-memory batch shows at once, not hours in),
ties by response id; then cut greedily into *forward batches* of at most ``token_budget`` padded
tokens (``records x longest``; similar lengths side by side keep padding low), and those greedily
into *store batches* of at most ``batch_bytes`` of captured arrays, each one ``Store.append``.

Resume. Store batches commit in plan order, so after an interruption the committed ones are a prefix
of the plan. Planning the records not yet captured gives exactly the rest of the original plan:
the suffix of a sorted list is sorted, and a greedy cut restarted at a batch boundary cuts where it
cut before. So a resumed capture writes the same batches, in the same order, with the same row and
record ids as an uninterrupted one; :func:`batch_key` names each by its content.

Units (``ingest.units``). :func:`plan_units` plans each unit of work on its own and concatenates the
plans in unit order: no batch spans two units, so a shard that holds some whole units plans them
exactly as one process holding all units does. (So "longest first" holds per unit: with several
units the longest record may come in a later one.) Resume holds per unit: the committed batches are
every batch of the first units and a prefix of the next unit's plan, and replanning the rest of that
unit gives the rest of its plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class StoreBatch:
    """``forward``: arrays of record indexes (into the planned list), one per forward pass."""

    forward: tuple[np.ndarray, ...]

    @property
    def records(self) -> np.ndarray:
        return np.concatenate(self.forward)


def order_records(lengths: np.ndarray, ids: Sequence[str]) -> np.ndarray:
    """Indexes by (length descending, id ascending)."""
    by_id = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    return by_id[np.argsort(-np.asarray(lengths, dtype=np.int64)[by_id], kind="stable")]


def plan(lengths: np.ndarray, ids: Sequence[str], token_budget: int, row_bytes: int, record_bytes: int,
         batch_bytes: int, max_batch: int = 256) -> list[StoreBatch]:
    """Forward batches of <= ``token_budget`` padded tokens (a longer record goes alone),
    <= ``max_batch`` records and <= ``batch_bytes`` of captured arrays (so that memory stays
    bounded even when one token's activations are large, as for a 7B model at every layer),
    grouped into store batches of <= ``batch_bytes`` (at least one forward batch each).
    ``row_bytes``/``record_bytes``: captured bytes per token/record."""
    lengths = np.asarray(lengths, dtype=np.int64)
    order = order_records(lengths, ids)
    forward: list[np.ndarray] = []
    start = 0
    n = len(order)
    while start < n:
        width = int(lengths[order[start]])  # the longest of the batch: lengths fall along the order
        fit = batch_bytes // max(1, width * row_bytes + record_bytes)  # every record is <= width
        take = max(1, min(max_batch, token_budget // max(1, width), fit, n - start))
        forward.append(order[start:start + take])
        start += take
    out: list[StoreBatch] = []
    cur: list[np.ndarray] = []
    size = 0
    for fb in forward:
        b = int(lengths[fb].sum()) * row_bytes + len(fb) * record_bytes
        if cur and size + b > batch_bytes:
            out.append(StoreBatch(tuple(cur)))
            cur, size = [], 0
        cur.append(fb)
        size += b
    if cur:
        out.append(StoreBatch(tuple(cur)))
    return out


def plan_units(lengths: np.ndarray, ids: Sequence[str], units: Sequence[int], token_budget: int, row_bytes: int,
               record_bytes: int, batch_bytes: int, max_batch: int = 256) -> list[StoreBatch]:
    """:func:`plan` within each unit (``units[i]``: record i's unit), units in ascending order."""
    lengths = np.asarray(lengths, dtype=np.int64)
    keys = np.asarray(units, dtype=np.int64)
    if keys.shape != lengths.shape:
        raise ValueError(f"{len(keys)} unit indexes for {len(lengths)} records")
    out: list[StoreBatch] = []
    for u in np.unique(keys):  # sorted
        idx = np.flatnonzero(keys == u)
        for sb in plan(lengths[idx], [ids[int(i)] for i in idx], token_budget, row_bytes, record_bytes, batch_bytes,
                       max_batch):
            out.append(StoreBatch(tuple(idx[fb] for fb in sb.forward)))
    return out


def batch_key(response_ids: Sequence[str]) -> str:
    """``capture:<hash>`` of the batch's response ids: the store skips a key it has committed."""
    h = hashlib.sha256("\n".join(response_ids).encode("utf-8")).hexdigest()[:20]
    return f"capture:{h}"
