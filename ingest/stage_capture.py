"""The capture stage: teacher-forced forward passes over (prompt + response) records into the store.

Main thread: forward batch after forward batch (``ingest.capture.Capturer``), each copied once into
the store batch it belongs to. Writer thread: ``Store.append`` of the previous store batch (zarr
writes, checksums, fsync, one catalog transaction) while the main thread computes the next. The
queue between them holds one batch, so at most three store batches are alive (filling, queued,
being written), each about ``buffer_mb / 3``: memory is bounded by the buffer, not the data set.
Those three are the only host buffers the stage allocates: a batch's buffers go back to a free list
once the writer has appended it (fresh ones cost a page fault per 4 KiB on the main thread, inside
the forward pass, and a pinned allocation on a GPU machine is slower still).
Where the forward pass has every core (a CPU model), the main thread writes each store batch's
arrays itself between forward passes and the writer thread only fsyncs and commits it (see
:class:`_Writer`).

Which records and in which batches: ``ingest.packing`` (resume gives identical rows and bits), unit
by unit (``ingest.units``: a sharded capture gives the rows and bits of a single process).
"""

from __future__ import annotations

import mmap
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actstore import ArrayKey, ArraySpec, Batch, Site
from actstore.dtypes import storage_dtype
from actstore.layout import chunk_rows_for
from ingest.capture import MEAN_DTYPE, Capturer, to_numpy
from ingest.packing import batch_key, plan_units
from ingest.progress import Progress
from ingest.tokenize import TokenizedRecord, collate


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    response_id: str
    prompt_id: str
    tokens: TokenizedRecord


@dataclass(frozen=True)
class ArrayPlan:
    """What is stored: per-token sites, pooled sites, dtypes and widths."""

    layers: tuple[int, ...]
    sites: tuple[str, ...]
    per_token: bool
    pools: tuple[str, ...]
    dtype: str
    d_model: int
    d_mlp: int
    codec: str = "none"

    def width(self, kind: str) -> int:
        return self.d_model if kind == "resid_post" else self.d_mlp

    def specs(self) -> list[ArraySpec]:
        out = []
        for kind in self.sites:
            for layer in self.layers:
                site = Site(kind, layer)
                if self.per_token:
                    out.append(ArraySpec(ArrayKey(site, "token"), self.width(kind), self.dtype, self.codec))
                for pool in self.pools:
                    dt = MEAN_DTYPE if pool == "mean_response" else self.dtype
                    out.append(ArraySpec(ArrayKey(site, pool), self.width(kind), dt, self.codec,
                                         chunk_rows=_pooled_chunk_rows(self.width(kind), dt)))
        return out

    def row_bytes(self) -> int:
        return sum(s.width * storage_dtype(s.logical_dtype).itemsize for s in self.specs() if s.key.pool == "token")

    def record_bytes(self) -> int:
        return sum(s.width * storage_dtype(s.logical_dtype).itemsize for s in self.specs() if s.key.pool != "token")


def _pooled_chunk_rows(width: int, logical_dtype: str) -> int:
    """~1 MiB chunks for per-record arrays (the store's default is ~4 MiB): every append rewrites
    the partly filled tail chunk of each array, and a store batch adds only a few hundred rows to a
    pooled array, so a smaller chunk cuts that rewrite 4x. 1 MiB is DESIGN.md's lower bound."""
    return max(16, (1 << 20) // (width * storage_dtype(logical_dtype).itemsize))


def store_weights(store: Any, model: Any, adapter: Any, layers: Sequence[int], weights: Sequence[str]) -> None:
    """Weights of the stored layers, once (``put_weight`` skips a name it has)."""
    if "mlp_down" in weights:
        for layer in layers:
            w = adapter.down_proj_weight(model, layer)  # [d_model, d_mlp]
            store.put_weight("mlp_down", layer, _host(w), _dtype(w))
    if "unembed" in weights:
        w = adapter.unembed_weight(model)
        store.put_weight("unembed", None, _host(w), _dtype(w))
    if "final_norm" in weights:
        norm = adapter.final_norm_of(model)
        w = getattr(norm, "weight", None)
        if w is not None:  # a norm without a scale stores nothing
            store.put_weight("final_norm", None, _host(w.detach().reshape(1, -1)), _dtype(w))
            b = getattr(norm, "bias", None)
            if b is not None:
                store.put_weight("final_norm_bias", None, _host(b.detach().reshape(1, -1)), _dtype(b))


#: Slack at the head of each host buffer: a store batch's token rows start this far in, modulo it,
#: as far into a chunk file as their first row lands (see :meth:`_Buffers.take`).
_ALIGN_SLACK = 4096


def _alloc(nbytes: int, pin: bool) -> Any:
    """Raw bytes (``uint8``) for one array's host buffer: pinned on a GPU machine; else an anonymous
    mapping, so page-aligned and the commit can write it to disk with O_DIRECT, without a copy
    (``Store.write_batch(defer=True)``; torch's own allocations are 64-byte aligned)."""
    import torch

    if pin:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    raw = np.frombuffer(mmap.mmap(-1, max(1, nbytes)), dtype=np.uint8)  # keeps the mapping alive
    return torch.from_numpy(raw)


def _host(t: Any) -> np.ndarray:
    return to_numpy(t.detach().to("cpu").contiguous())


def _dtype(t: Any) -> str:
    return str(t.dtype).removeprefix("torch.")


class _Buffers:
    """Host buffers for store batches, reused: at most ``limit`` sets exist (filling, queued,
    being written), each sized for the largest store batch of the stage. A set is taken by the
    main thread, handed to the writer with its batch and given back once that batch is appended
    or committed (``Store.append`` has copied it to disk by then; a deferred commit has written it),
    after which the store keeps no reference to it."""

    def __init__(self, specs: Sequence[ArraySpec], max_rows: int, max_records: int, pin: bool, limit: int = 3) -> None:
        self.specs, self.max_rows, self.max_records, self.pin = specs, max_rows, max_records, pin
        self.free: queue.Queue[dict] = queue.Queue()
        self.made, self.limit = 0, limit
        self._raw: dict[int, dict] = {}  # id of a lent set of views -> its raw buffers

    def _shape(self, spec: ArraySpec) -> tuple[int, int]:
        return (self.max_rows if spec.key.pool == "token" else self.max_records, spec.width)

    def take(self, row_lo: int = 0) -> dict:
        """A set of ``[rows, width]`` buffers for a store batch whose token rows start at store row
        ``row_lo``. Each token buffer starts as far past a 4 KiB boundary as that row's bytes lie
        past one in its chunk file, so a file offset that direct I/O can take meets a buffer
        address it can take too (else, for rows not a multiple of the alignment, only some store
        batches could be written directly)."""
        import torch

        fresh = self.free.empty() and self.made < self.limit
        if fresh:
            self.made += 1
        raw = {} if fresh else self.free.get()
        views = {}
        for s in self.specs:
            dtype = getattr(torch, s.logical_dtype)
            rows, width = self._shape(s)
            token = s.key.pool == "token"
            if fresh:
                raw[s.key] = _alloc(rows * width * dtype.itemsize + (_ALIGN_SLACK if token else 0), self.pin)
            off = 0
            if token:
                chunk_rows = s.chunk_rows or chunk_rows_for(width, dtype.itemsize)
                off = (row_lo % chunk_rows) * width * dtype.itemsize % _ALIGN_SLACK
            views[s.key] = raw[s.key][off : off + rows * width * dtype.itemsize].view(dtype).view(rows, width)
        self._raw[id(views)] = raw
        return views

    def give(self, bufs: dict) -> None:
        self.free.put(self._raw.pop(id(bufs)))


class _Writer:
    """One thread that appends store batches in order; its first error stops the stage.

    ``split``: for a forward pass that keeps every core busy (a CPU model on all the usable cores).
    The writer's copies into the page cache then took a core from one of torch's threads in the
    middle of a forward, and the other thread waited for it at the next barrier: overlapped, the
    write path cost about twice its CPU time. Split, the main thread writes a batch's arrays
    between two forward passes (``Store.write_batch``, every core free for it) and the thread only
    fsyncs and commits it (``Store.commit_batch``: mostly waiting on the disk) beside the next one.
    The write is deferred (``defer=True``): most bytes go to disk in the commit, with O_DIRECT from
    the batch's buffers, which go back to the free list only once it is committed.
    Unsplit (a GPU, or spare cores), the thread does the whole append while the forward runs."""

    def __init__(self, store: Any, run_id: int | None, buffers: _Buffers, split: bool = False) -> None:
        self.store, self.run_id, self.buffers, self.split = store, run_id, buffers, split
        self.q: queue.Queue[tuple[Any, dict | None] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.t = threading.Thread(target=self._loop, name="actstore-writer", daemon=True)
        self.t.start()

    def _loop(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                work, bufs = item
                if self.error is None:
                    try:
                        if self.split:
                            self.store.commit_batch(work, run_id=self.run_id)
                        else:
                            self.store.append(work, run_id=self.run_id)
                    except BaseException as e:  # noqa: BLE001 - handed to the main thread, raised there
                        self.error = e
                del work
                if bufs is not None:
                    self.buffers.give(bufs)  # after a failed append too: the main thread may be waiting for it
            finally:
                self.q.task_done()

    def put(self, batch: Batch, bufs: dict) -> None:
        self.check()
        if not self.split:
            self.q.put((batch, bufs))
            return
        self.q.join()  # the previous batch committed (it always is by now: it had a forward pass's time)
        self.check()
        written = self.store.write_batch(batch, defer=True)
        self.q.put((written, bufs))  # the commit reads the buffers; the loop gives them back after it

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.q.put(None)
        self.t.join()
        self.check()


def split_writes(model: Any) -> bool:
    """Whether the capture writes between forward passes (:class:`_Writer`'s ``split``): the model
    runs on the CPU with as many torch threads as this process has usable cores."""
    import torch

    from ingest.threads import usable_cores

    return next(model.parameters()).device.type == "cpu" and torch.get_num_threads() >= usable_cores()


def capture_records(store: Any, model: Any, tokenizer: Any, records: Sequence[CaptureRecord], arrays: ArrayPlan,
                    *, token_budget: int, batch_bytes: int, run_id: int | None, quiet: bool = False,
                    units: Sequence[int] | None = None, split: bool | None = None) -> int:
    """Capture ``records`` (not yet in the store) into ``store``; returns the records written.
    ``units``: each record's unit of work (``ingest.units``); batches never span two (default: one unit).
    ``split``: write each store batch between forward passes and commit it beside the next
    (:class:`_Writer`); default :func:`split_writes`."""
    if not records:
        return 0
    store.declare_arrays(arrays.specs())
    lengths = np.array([r.tokens.input_ids.shape[0] for r in records], dtype=np.int64)
    batches = plan_units(lengths, [r.response_id for r in records], [0] * len(records) if units is None else units,
                         token_budget, arrays.row_bytes(), arrays.record_bytes(), batch_bytes)
    pools = (("token",) if arrays.per_token else ()) + arrays.pools
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    specs = arrays.specs()
    pin = next(model.parameters()).device.type == "cuda"
    done = 0
    row_lo = int(getattr(store, "n_rows", 0) or 0)  # where the next store batch's token rows land
    # The store batch's arrays, filled in place by the capturer (one host copy per value); pinned
    # on a GPU machine so device-to-host copies run asynchronously; reused batch after batch.
    buffers = _Buffers(specs, max(int(lengths[sb.records].sum()) for sb in batches),
                       max(len(sb.records) for sb in batches), pin)
    with Progress("capture", len(records), quiet=quiet) as progress, \
            Capturer(model, None, arrays.layers, arrays.sites, pools=pools) as cap:
        if split is None:  # a stand-in store with only append() gets whole appends
            split = split_writes(model) and hasattr(store, "write_batch")
        writer = _Writer(store, run_id, buffers, split)
        try:
            for sb in batches:
                idx = sb.records
                recs = [records[i] for i in idx]
                n_tok = lengths[idx]
                rows = int(n_tok.sum())
                writer.check()
                bufs = buffers.take(row_lo)
                tok_t = {k: t[:rows] for k, t in bufs.items() if k.pool == "token"}
                rec_t = {k: t[:len(idx)] for k, t in bufs.items() if k.pool != "token"}
                row = rec = 0
                for fb in sb.forward:
                    r1, n1 = row + int(lengths[fb].sum()), rec + len(fb)
                    into = {(k.site, "token"): t[row:r1] for k, t in tok_t.items()}
                    into.update({(k.site, k.pool): t[rec:n1] for k, t in rec_t.items()})
                    out = cap.capture(*collate([records[i].tokens for i in fb], pad, side="left"), into=into)
                    if out.n_tokens != r1 - row:
                        raise RuntimeError(f"captured {out.n_tokens} tokens for a batch of {r1 - row}")
                    row, rec = r1, n1
                    progress.update(out.n_records, tokens=out.n_tokens)
                token_arrays = {k: to_numpy(t) for k, t in tok_t.items()}
                record_arrays = {k: to_numpy(t) for k, t in rec_t.items()}
                writer.put(Batch(
                    n_tokens=n_tok, prompt_lens=np.array([r.tokens.prompt_len for r in recs], dtype=np.int64),
                    token_ids=np.concatenate([r.tokens.input_ids for r in recs]),
                    roles=np.concatenate([r.tokens.roles for r in recs]),
                    token_arrays=token_arrays, record_arrays=record_arrays,
                    response_ids=[r.response_id for r in recs], prompt_ids=[r.prompt_id for r in recs],
                    key=batch_key([r.response_id for r in recs])), bufs)
                done += len(idx)
                row_lo += rows
        finally:
            writer.close()  # lets the batch in hand land (it is whole), then re-raises a writer error
    return done
