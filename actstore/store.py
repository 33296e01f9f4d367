"""The store: a small facade over the catalog (DuckDB) and the arrays (Zarr).

Open one with :func:`actstore.open`. Reading needs nothing but this package; writing is what
``ingest`` does through :meth:`Store.append`. Analyses are not methods here: they are functions
in ``analyses`` that take a store.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from actstore import catalog as cat
from actstore import remote
from actstore.arrays import CODECS, ArrayIO, ArrayMeta
from actstore.batch import ROLES, ArrayKey, ArraySpec, Batch
from actstore.dtypes import decode, storage_dtype, to_storage, to_torch
from actstore.errors import (
    ReadOnlyError,
    SchemaMismatchError,
    StoreNotFoundError,
    UnknownArrayError,
    UsageError,
)
from actstore.migrations import one
from actstore.layout import chunk_rows_for
from actstore.segments import Segment, SegmentMap
from actstore.site import Site

#: Threads of an append: array writes (pwrite releases the GIL), then their fsyncs, which mostly
#: wait on the disk; several in flight let the filesystem commit them together.
FSYNC_THREADS = 8

#: Tables only the store itself writes; `insert` refuses them.
MANAGED = frozenset({"meta", "migrations", "models", "vocab", "batches", "records", "tokens", "arrays",
                     "chunk_checksums", "runs"})


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """The model whose activations a store holds (one model per store)."""

    name: str
    dtype: str
    n_layers: int
    d_model: int
    d_mlp: int | None = None
    vocab_size: int | None = None
    family: str | None = None
    revision: str | None = None
    config: dict | None = None


@dataclass(frozen=True)
class GroupMeans:
    """Streaming group means. ``means[g, i]`` is the mean of group ``labels[g]`` at ``layers[i]``."""

    labels: list
    layers: list[int]
    means: np.ndarray  # [G, L, width] float64
    counts: np.ndarray  # [G] int64

    def mean(self, label: Any, layer: int) -> np.ndarray:
        return self.means[self.labels.index(label), self.layers.index(layer)]


def versions() -> dict[str, str]:
    """Versions of what produced a result (torch/transformers only if already imported)."""
    import duckdb
    import zarr

    from actstore import __version__

    out = {"actstore": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
           "duckdb": duckdb.__version__, "zarr": zarr.__version__}
    for mod in ("torch", "transformers"):
        if mod in sys.modules:
            out[mod] = getattr(sys.modules[mod], "__version__", "?")
    return out


def _publish_interval() -> float:
    raw = os.environ.get("ACTSTORE_PUBLISH_INTERVAL", "2")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise UsageError(f"ACTSTORE_PUBLISH_INTERVAL must be a number of seconds >= 0, not {raw!r}")
    return value


@dataclass(eq=False)
class WrittenBatch:
    """A batch whose arrays :meth:`Store.write_batch` has written and :meth:`Store.commit_batch`
    has yet to make durable and visible (``batch_id`` is set once it is committed)."""

    batch: Batch
    batch_id: int | None = None
    acts: dict[str, ArrayMeta] = field(default_factory=dict)
    data: dict[str, np.ndarray] = field(default_factory=dict)
    tails: dict[str, Any] = field(default_factory=dict)
    row_lo: int = 0
    rec_lo: int = 0
    written: list[tuple[str, list]] = field(default_factory=list)


class Store:
    """An open store. Use :func:`actstore.open` rather than this constructor."""

    def __init__(self, root: "Path | str", read_only: bool = True, create: bool = False,
                 publish_interval: float | None = None, durable: bool = True) -> None:
        #: the store's directory, or its URL (a str) for a remote store
        self.root = root
        self.read_only = read_only
        #: seconds between a writer's publishes (what readers see of a running ingest): the
        #: argument, else ``$ACTSTORE_PUBLISH_INTERVAL``, else 2; never more than ~10% of its time,
        #: except that 0 publishes after every commit
        self.publish_interval = publish_interval if publish_interval is not None else _publish_interval()
        self._durable = durable
        self._writer: cat.WriterSession | None = None
        if self.is_remote:
            self.con, self._db_file = cat.open_catalog_file(remote.fetch_catalog(str(root)), str(root))
        elif read_only:
            self.con, self._db_file = cat.open_reader(Path(root))
        else:
            root = Path(root)
            root.mkdir(parents=True, exist_ok=True)
            self._writer = cat.WriterSession(root, create=create)
            self.con = self._writer.con
            self._db_file = root / cat.WIP
        self._load_checked()
        self.arrays_io = self._array_io()
        self._last_publish = time.monotonic()
        self._publish_cost = 0.0
        self._engine = None
        if self._writer is not None and self._writer.recovered:
            self._trim_arrays()
            self._writer.publish()

    @property
    def is_remote(self) -> bool:
        return isinstance(self.root, str) and remote.is_url(self.root)

    @property
    def catalog_file(self) -> Path:
        """The local DuckDB file this store's snapshot was opened from (a remote store's cached
        copy, or a private migrated copy of an older store)."""
        return Path(self._db_file)

    @property
    def location(self) -> str:
        """The store's path or URL, as text."""
        return str(self.root)

    def _array_io(self) -> ArrayIO:
        if self.is_remote:
            groups = [remote.RemoteGroup(remote.join(str(self.root), s.path)) for s in self.segments.segments]
            return ArrayIO(groups, self.segments)
        return ArrayIO.local(Path(self.root), self.segments, read_only=self.read_only, durable=self._durable)

    # -- state ---------------------------------------------------------------------------------
    def _load_checked(self) -> None:
        """:meth:`_load_state`, with a damaged catalog as one line (and nothing left open)."""
        try:
            self._load_state()
        except Exception as err:
            bad = cat.damage(err, self.location, None if self.is_remote else Path(self.root))
            if bad is None:
                raise
            if self._writer is not None:
                self._writer.close(publish=False)
                if not self._writer.recovered:  # drop the copy it made: a refused open changes nothing
                    for f in (cat.WIP, cat.WIP + ".wal"):
                        (Path(self.root) / f).unlink(missing_ok=True)
            else:
                self.con.close()
            raise bad from None

    def _load_state(self) -> None:
        segs = self.con.execute(
            "SELECT segment_id, path, row_start, record_start FROM segments ORDER BY segment_id").fetchall()
        self.segments = SegmentMap(tuple(Segment(*r) for r in segs)) if segs else SegmentMap()
        rows = self.con.execute(
            "SELECT name, kind, site, layer, pool, n_rows, width, dtype, logical_dtype, chunk_rows, "
            "shard_chunks, codec FROM arrays ORDER BY name").fetchall()
        self._arrays = {r[0]: ArrayMeta(*r) for r in rows}
        # array name -> ((segment, chunk), (n_rows, crc32)) of the chunk its last committed append
        # ended in: the next append continues that checksum without a catalog query per array.
        self._tail_crcs: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
        self._waiting: WrittenBatch | None = None  # written by write_batch, not yet committed
        self._n_rows, self._n_records = one(self.con, 
            "SELECT coalesce(sum(n_rows), 0), coalesce(sum(n_records), 0) FROM batches")

    @property
    def n_rows(self) -> int:
        """Committed token rows (the length of every per-token array)."""
        return int(self._n_rows)

    @property
    def n_records(self) -> int:
        return int(self._n_records)

    @property
    def model(self) -> ModelInfo | None:
        row = one(self.con, 
            "SELECT name, dtype, n_layers, d_model, d_mlp, vocab_size, family, revision, config "
            "FROM models ORDER BY model_id LIMIT 1")
        if row is None:
            return None
        name, dtype, n_layers, d_model, d_mlp, vocab_size, family, revision, config = row
        return ModelInfo(name, dtype, n_layers, d_model, d_mlp, vocab_size, family, revision,
                         json.loads(config) if config else None)

    def arrays(self) -> list[ArrayMeta]:
        return list(self._arrays.values())

    def array_meta(self, site: "Site | str", layer: int | None = None, pool: str = "token") -> ArrayMeta:
        key = ArrayKey.of(site, layer, pool)
        meta = self._arrays.get(key.name)
        if meta is None:
            have = sorted({f"{m.site}.{m.layer}" for m in self._arrays.values()
                           if m.kind == "activation" and m.pool == pool})
            hint = ", ".join(have[:8]) + (" ..." if len(have) > 8 else "") if have else "none"
            raise UnknownArrayError(f"no stored array {key.site} (pool {pool}); this store has: {hint}")
        return meta

    def refresh(self) -> None:
        """Reader: move to the newest published snapshot."""
        if not self.read_only:
            return
        self.con.close()
        if self.is_remote:
            self.con, self._db_file = cat.open_catalog_file(remote.fetch_catalog(str(self.root)), str(self.root))
        else:
            self.con, self._db_file = cat.open_reader(Path(self.root))
        self._engine = None
        self._load_checked()
        self.arrays_io = self._array_io()

    # -- SQL -----------------------------------------------------------------------------------
    def sql(self, query: str, params: Any = None):
        """Run SQL on the catalog; returns a DuckDB relation (``.df()``, ``.arrow()``, ``.fetchnumpy()``).

        On a read-only store the SQL runs in a sandbox (see ``catalog.sandbox``): it reads the
        catalog, but cannot write or read files, attach databases, load extensions or change
        settings; such a statement raises :class:`~actstore.errors.ReadOnlyError`. Export a
        result from Python (``.arrow()``, ``.df()``) or with ``actstore sql --out FILE``.
        """
        return cat.run_query(self.con, query, params, where=self.location, sandboxed=self._writer is None)

    @property
    def engine(self):
        """A SQLAlchemy engine on this store's catalog connection (tables: actstore.tables); on a
        read-only store it shares the connection's sandbox (see :meth:`sql`)."""
        if self._engine is None:
            import sqlalchemy as sa

            from duckdb_engine import ConnectionWrapper

            def creator():
                # A cursor shares this store's DuckDB instance (and so its snapshot); wrap it the
                # way duckdb-engine's own connect() does.
                c = self.con.cursor()
                c.execute(f"USE {cat.ALIAS}")
                return ConnectionWrapper(c)

            self._engine = sa.create_engine("duckdb://", creator=creator, poolclass=sa.pool.StaticPool)
        return self._engine

    # -- reads ---------------------------------------------------------------------------------
    def _check_rows(self, rows: Any, limit: int, what: str) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= limit):
            bad = int(rows.min() if rows.min() < 0 else rows.max())
            raise UsageError(f"{what} {bad} out of range; the store has {limit} {what}s (0-{limit - 1})")
        return rows

    def read(self, site: "Site | str", layer: int | None = None, rows: Any = None, *,
             pool: str = "token", dtype: str = "float32"):
        """Rows of one array, in the order asked (repeats allowed).

        ``dtype``: "float32" (default; bf16 decoded exactly), "float64", "native" (storage
        dtype: bf16 as raw uint16 bits) or "torch" (a tensor in the model's own dtype).
        For pooled arrays (``pool`` = mean_response | last_prompt) rows are record ids.
        """
        meta = self.array_meta(site, layer, pool)
        if rows is None:
            raw = self.arrays_io.read_span(meta, 0, meta.n_rows)
        else:
            idx = self._check_rows(rows, meta.n_rows, "row" if pool == "token" else "record")
            raw = self.arrays_io.gather(meta, idx)
        return self._decode(raw, meta, dtype)

    def _decode(self, raw: np.ndarray, meta: ArrayMeta, dtype: str):
        if dtype == "torch":
            return to_torch(raw, meta.logical_dtype)
        if dtype not in ("float32", "float64", "native"):
            raise UsageError(f"unknown output dtype {dtype!r}; use float32, float64, native or torch")
        return decode(raw, meta.logical_dtype, dtype)

    def weight(self, name: str, layer: int | None = None, dtype: str = "float32"):
        """A stored weight: ``weight("mlp_down", 7)`` is ``[d_model, d_mlp]`` (column i = neuron i)."""
        key = f"weights/{name}" + (f"/{layer}" if layer is not None else "")
        meta = self._arrays.get(key)
        if meta is None:
            have = sorted(k for k in self._arrays if k.startswith("weights/"))
            raise UnknownArrayError(f"no stored weight {key}; this store has: {', '.join(have) or 'none'}")
        return self._decode(self.arrays_io.read_span(meta, 0, meta.n_rows), meta, dtype)

    def _blocks(self, meta: ArrayMeta, rows: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(sorted-position index, decoded float32 rows) per touched chunk, read ahead in a thread.

        Locally one chunk is read ahead and a chunk's rows come as one contiguous span. Remotely
        a round trip costs more than a disk read, so four chunks are in flight, and a chunk's
        scattered rows are fetched as their own byte ranges rather than the span around them.
        """
        plan = self.arrays_io.chunk_plan(meta, rows)
        ahead = 4 if self.is_remote else 1

        def load(item):
            start, local, pos = item
            lo, hi = int(local[0]), int(local[-1]) + 1
            if self.is_remote and hi - lo != len(local):
                block = self.arrays_io.gather(meta, start + local)
            else:
                block = self.arrays_io.read_span(meta, start + lo, start + hi)
                if hi - lo != len(local):
                    block = block[local - lo]
            return pos, decode(block, meta.logical_dtype, "float32")

        with ThreadPoolExecutor(max_workers=ahead) as pool:
            futs = deque(pool.submit(load, item) for item in plan[:ahead])
            nxt = len(futs)
            while futs:
                cur = futs.popleft().result()
                if nxt < len(plan):
                    futs.append(pool.submit(load, plan[nxt]))
                    nxt += 1
                yield cur

    def blocks(self, site: "Site | str", layer: int | None = None, rows: Any = None, *,
               pool: str = "token") -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream an array chunk by chunk: yields ``(rows[m], float32 values[m, width])``.

        ``rows`` (any order; default all) selects what to stream; each chunk is read once, the
        next one read ahead while the caller works. Memory is one chunk, whatever the store size.
        """
        meta = self.array_meta(site, layer, pool)
        if rows is None:
            idx = np.arange(meta.n_rows, dtype=np.int64)
        else:
            idx = self._check_rows(rows, meta.n_rows, "row" if pool == "token" else "record")
        for pos, block in self._blocks(meta, idx):
            yield idx[pos], block

    def dask_array(self, site: "Site | str", layer: int | None = None, *, pool: str = "token",
                   dtype: str = "float32"):
        """The array as a lazy ``dask.array`` ``[rows, width]``, one block per stored chunk.

        For reductions that :meth:`group_means` does not cover (covariances, quantiles, PCA, ...)
        over arrays bigger than memory, on any Dask scheduler. Needs ``actstore[dask]``.
        """
        from actstore.daskarray import dask_array

        return dask_array(self, self.array_meta(site, layer, pool), dtype)

    def group_means(self, site: str, layers: "int | list[int]", groups: Any, *,
                    pool: str = "token") -> GroupMeans:
        """Mean activation per group, streaming: each chunk is read once; memory is O(groups x width).

        ``groups`` is either an int array with one group id per row (``-1`` = leave out), or a SQL
        query whose first two columns are (row, group label): ``row`` is the global token row (or
        the record id for pooled arrays) and the label any value. Rows may repeat across groups.
        """
        layers = [layers] if isinstance(layers, int) else list(layers)
        limit = self.n_rows if pool == "token" else self.n_records
        if isinstance(groups, str):
            res = self.sql(groups).fetchnumpy()
            cols = list(res)
            if len(cols) < 2:
                raise UsageError("the groups query must return two columns: (row, group)")
            rows = self._check_rows(res[cols[0]], limit, "row" if pool == "token" else "record")
            labels_raw = np.asarray(res[cols[1]])
            labels, gids = np.unique(labels_raw, return_inverse=True)
            labels = labels.tolist()
        else:
            g = np.asarray(groups, dtype=np.int64)
            if g.shape != (limit,):
                raise UsageError(f"groups must have one entry per row ({limit}), got shape {g.shape}")
            keep = np.flatnonzero(g >= 0)
            rows, gids = keep, g[keep]
            labels = np.unique(gids).tolist()
            gids = np.searchsorted(np.asarray(labels, dtype=np.int64), gids)
        n_groups = len(labels)
        counts = np.bincount(gids, minlength=n_groups).astype(np.int64)
        if n_groups == 0:
            raise UsageError("no rows fall in any group; check the groups query or array")
        metas = [self.array_meta(site, layer, pool) for layer in layers]
        means = np.zeros((n_groups, len(layers), metas[0].width), dtype=np.float64)
        for li, meta in enumerate(metas):
            sums = np.zeros((n_groups, meta.width), dtype=np.float64)
            for pos, block in self._blocks(meta, rows):
                g = gids[pos]
                order = np.argsort(g, kind="stable")
                gs = g[order]
                starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
                ends = np.r_[starts[1:], len(gs)]
                sorted_block = block[order]
                # One contiguous float64 sum per group: ~12x faster than np.add.reduceat on axis 0,
                # which walks each column with a row stride.
                for s, e in zip(starts.tolist(), ends.tolist()):
                    sums[gs[s]] += sorted_block[s:e].sum(axis=0, dtype=np.float64)
            means[:, li] = sums / counts[:, None]
        return GroupMeans(labels=labels, layers=layers, means=means, counts=counts)

    # -- writes --------------------------------------------------------------------------------
    def _need_writer(self) -> cat.WriterSession:
        if self._writer is None:
            if self.is_remote:
                raise ReadOnlyError(f"{self.root} is a remote store and is read-only; copy it with "
                                    f"'actstore pull {self.root} DIR' and write to the copy")
            raise ReadOnlyError(f"store {self.root} is open read-only; open it with read_only=False to write")
        return self._writer

    def set_model(self, info: ModelInfo, vocab: list[str] | None = None) -> None:
        """Record the store's model (once). Creates ``vectors`` with a FLOAT[d_model] column."""
        self._need_writer()
        have = self.model
        if have is not None:
            if (have.name, have.d_model, have.n_layers, have.dtype) != (info.name, info.d_model, info.n_layers, info.dtype):
                raise SchemaMismatchError(
                    f"this store holds {have.name} ({have.dtype}, {have.n_layers} layers, d={have.d_model}); "
                    f"it cannot take {info.name} ({info.dtype}, {info.n_layers} layers, d={info.d_model}): use a new store")
            return
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("INSERT INTO models VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [info.name, info.revision, info.family, info.dtype, info.n_layers, info.d_model,
                         info.d_mlp, info.vocab_size, json.dumps(info.config) if info.config else None, _now()])
            if vocab:
                cat.insert(con, "vocab", {"token_id": np.arange(len(vocab), dtype=np.int32), "text": list(vocab)})
            con.execute(
                f"""CREATE TABLE vectors (
                    vector_id INTEGER PRIMARY KEY, run_id INTEGER, name VARCHAR, value VARCHAR,
                    condition VARCHAR, component VARCHAR, site VARCHAR, layer INTEGER, pool VARCHAR,
                    language VARCHAR, n_pos INTEGER, n_neg INTEGER, norm DOUBLE, meta JSON,
                    vec FLOAT[{int(info.d_model)}])""")
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        self._maybe_publish(force=True)

    def declare_arrays(self, specs: list[ArraySpec]) -> None:
        """Create activation arrays. Allowed before the first append; re-declaring the same is a no-op."""
        self._need_writer()
        new = []
        for spec in specs:
            name = spec.key.name
            meta = self._arrays.get(name)
            if meta is not None:
                if (meta.width, meta.logical_dtype) != (spec.width, spec.logical_dtype):
                    raise SchemaMismatchError(
                        f"array {name} exists as width {meta.width} {meta.logical_dtype}; "
                        f"cannot redeclare it as width {spec.width} {spec.logical_dtype}")
                continue
            if spec.codec not in CODECS:
                raise UsageError(f"unknown codec {spec.codec!r}; use one of {', '.join(CODECS)}")
            rows_now = self.n_rows if spec.key.pool == "token" else self.n_records
            if rows_now:
                raise SchemaMismatchError(
                    f"cannot add array {name}: the store already holds {rows_now} rows without it; "
                    "ingest into a new store, or declare every array before the first batch")
            sd = storage_dtype(spec.logical_dtype)
            new.append(ArrayMeta(name, "activation", spec.key.site.kind, spec.key.site.layer, spec.key.pool, 0,
                                 spec.width, sd.str, spec.logical_dtype,
                                 spec.chunk_rows or chunk_rows_for(spec.width, sd.itemsize),
                                 spec.shard_chunks, spec.codec))
        if new:
            self._register_arrays(new)

    def _register_arrays(self, metas: list[ArrayMeta]) -> None:
        # In threads: each create is a few ms of Zarr's I/O, and a model has hundreds of arrays.
        with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as ex:
            list(ex.map(lambda m: self.arrays_io.create(m, n_rows=m.n_rows), metas))
        cat.insert(self.con, "arrays", {
            **{f: [getattr(m, f) for m in metas] for f in ArrayMeta.__dataclass_fields__},
            "created_at": [_now()] * len(metas)})
        for m in metas:
            self._arrays[m.name] = m

    def put_weight(self, name: str, layer: int | None, array: np.ndarray, logical_dtype: str) -> None:
        """Store a weight matrix ``[rows, width]`` (e.g. ``mlp_down`` as [d_model, d_mlp]), once."""
        self._need_writer()
        key = f"weights/{name}" + (f"/{layer}" if layer is not None else "")
        data = to_storage(np.atleast_2d(array), logical_dtype)
        if key in self._arrays:
            return
        sd = data.dtype
        meta = ArrayMeta(key, "weight", name, layer, None, 0, data.shape[1], sd.str, logical_dtype,
                         chunk_rows_for(data.shape[1], sd.itemsize), 1, "none")
        self.arrays_io.create(meta)
        crcs = self.arrays_io.write_rows(meta, 0, data, None)
        meta = ArrayMeta(**{**asdict(meta), "n_rows": data.shape[0]})
        self.con.execute("BEGIN TRANSACTION")
        try:
            cat.insert(self.con, "arrays", {**{f: [getattr(meta, f)] for f in ArrayMeta.__dataclass_fields__},
                                            "created_at": [_now()]})
            self._put_crcs(key, crcs, 0)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self._arrays[key] = meta

    def _put_crcs(self, name: str, crcs: list[tuple[int, int, int]], segment: int) -> None:
        self._put_crcs_many([(name, crcs, segment)])

    def _put_crcs_many(self, written: list[tuple[str, list[tuple[int, int, int]], int]]) -> None:
        """Checksums of several arrays' touched chunks in one insert."""
        rows = [(name, c, n, x, seg) for name, crcs, seg in written for c, n, x in crcs]
        if not rows:
            return
        tbl = pa.table({
            "name": [r[0] for r in rows], "chunk": pa.array([r[1] for r in rows], pa.int64()),
            "n_rows": pa.array([r[2] for r in rows], pa.int32()), "crc32": pa.array([r[3] for r in rows], pa.int64()),
            "segment_id": pa.array([r[4] for r in rows], pa.int32())})
        # Delete, then insert: a tail chunk's row is replaced. (INSERT OR REPLACE took ~5 ms a call,
        # a tenth of an append; this is ~2 ms.) Callers hold the transaction.
        self.con.register("_new_crcs", tbl)
        try:
            self.con.execute("DELETE FROM chunk_checksums USING _new_crcs u WHERE chunk_checksums.name = u.name "
                             "AND chunk_checksums.segment_id = u.segment_id AND chunk_checksums.chunk = u.chunk")
            self.con.execute("INSERT INTO chunk_checksums (name, chunk, n_rows, crc32, segment_id) "
                             "SELECT name, chunk, n_rows, crc32, segment_id FROM _new_crcs")
        finally:
            self.con.unregister("_new_crcs")

    def committed_keys(self) -> set[str]:
        return {r[0] for r in self.con.execute("SELECT key FROM batches WHERE key IS NOT NULL").fetchall()}

    def append(self, batch: Batch, run_id: int | None = None) -> int:
        """Write a batch's arrays durably, then make it visible in one catalog transaction.

        Returns the batch id. A batch whose ``key`` is already committed is skipped (resume).
        The same as :meth:`commit_batch` of :meth:`write_batch`, with the catalog's rows prepared
        while the arrays are written.
        """
        w = self._prepare(batch)
        if w.batch_id is not None:
            return w.batch_id
        ex = ThreadPoolExecutor(max_workers=FSYNC_THREADS)
        try:
            pending = self._submit_writes(w, ex)
            # The catalog's rows are prepared while the arrays are written (the threads release
            # the GIL in pwrite/fsync; DuckDB in execute); COMMIT waits for every array to be
            # durable, so a reader or a crash never sees catalog rows without data.
            self._commit(w, run_id, ex, pending)
        finally:
            ex.shutdown(wait=True)  # no write outlives a failed append
        assert w.batch_id is not None
        return w.batch_id

    def write_batch(self, batch: Batch, defer: bool = False) -> WrittenBatch:
        """The first half of :meth:`append`: write the batch's arrays (into the page cache, not yet
        durable) and return at once, without touching the catalog; :meth:`commit_batch` then makes
        them durable and visible. Nothing is visible before that commit, and a crash in between
        leaves only rows past the committed ones, which the next writer ignores and overwrites.

        The batch's arrays are no longer read once this returns, so their buffers may be reused.
        At most one written batch waits for its commit. For a capture whose forward pass keeps
        every core busy: the copying (CPU) runs between forward passes, the fsyncs and the catalog
        transaction (mostly waiting on the disk) beside the next one (``ingest.stage_capture``).

        ``defer=True``: the caller keeps the batch's arrays unchanged until :meth:`commit_batch`
        returns (or raises); most of their bytes are then not copied here but written by the
        commit with O_DIRECT straight from them (``actstore.arrays.DIRECT_ALIGN``), so this half is
        cheaper still and the commit costs little CPU. ``$ACTSTORE_DIRECT_IO=0`` turns that off.
        """
        w = self._prepare(batch)
        if w.batch_id is None:
            with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as ex:
                # No writeback started here: it blocks while the disk's queue is full, and this
                # half is meant to be CPU only (the fsyncs of commit_batch start it instead).
                w.written = [f.result() for f in self._submit_writes(w, ex, writeback=False, defer=defer)]
            self._waiting = w
        w.data = {}  # the caller's arrays are written: let their buffers go
        return w

    def commit_batch(self, written: WrittenBatch, run_id: int | None = None) -> int:
        """The second half of :meth:`append`: fsync what :meth:`write_batch` wrote and make the
        batch visible in one catalog transaction. Returns the batch id."""
        if written.batch_id is not None:  # already committed (a resumed key, or committed twice)
            return written.batch_id
        if written is not self._waiting:
            raise UsageError("this batch was not the last one written by write_batch on this store; "
                             "write it again")
        try:
            with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as ex:
                self._commit(written, run_id, ex, None)
        except BaseException:
            self.arrays_io.discard_deferred()  # written again, the batch queues its own
            raise
        finally:
            self._waiting = None  # committed, or rolled back: its rows are past the committed ones
        assert written.batch_id is not None
        return written.batch_id

    def _prepare(self, batch: Batch) -> WrittenBatch:
        """Validate a batch against the declared arrays; its storage arrays and where they go.
        Refused while a written batch waits for its commit: its rows are where this one would go."""
        self._need_writer()
        if self._waiting is not None:
            raise UsageError("a written batch is waiting for its commit_batch; commit it before writing another")
        batch.validate()
        if batch.key is not None:
            row = one(self.con, "SELECT batch_id FROM batches WHERE key = ?", [batch.key])
            if row:
                return WrittenBatch(batch, batch_id=int(row[0]))
        acts = {m.name: m for m in self._arrays.values() if m.kind == "activation"}
        given = {k.name: a for k, a in batch.token_arrays.items()} | {k.name: a for k, a in batch.record_arrays.items()}
        for k in list(batch.token_arrays) + list(batch.record_arrays):
            m = acts.get(k.name)
            if m is None or (m.pool == "token") != (k in batch.token_arrays):
                raise SchemaMismatchError(f"array {k.name} was not declared; call declare_arrays first")
        missing = sorted(set(acts) - set(given))
        if missing:
            raise SchemaMismatchError(f"batch lacks declared arrays: {', '.join(missing[:5])}; every batch carries every array")
        data = {}
        for name, arr in given.items():
            m = acts[name]
            d = to_storage(arr, m.logical_dtype)
            if d.shape[1] != m.width:
                raise SchemaMismatchError(f"array {name} has width {d.shape[1]}; declared {m.width}")
            data[name] = d
        row_lo, rec_lo = self.n_rows, self.n_records
        tails = {}
        for name in data:
            m = acts[name]
            lo = row_lo if m.pool == "token" else rec_lo
            tail = self.arrays_io.tail_chunk(m, lo)
            known = self._tail_crcs.get(name)
            if tail is not None and known is not None and known[0] == tail:
                tails[name] = known[1]
            elif tail is not None:
                tails[name] = one(self.con,
                    "SELECT n_rows, crc32 FROM chunk_checksums WHERE name = ? AND segment_id = ? AND chunk = ?",
                    [name, *tail])
        return WrittenBatch(batch, acts=acts, data=data, tails=tails, row_lo=row_lo, rec_lo=rec_lo)

    def _submit_writes(self, w: WrittenBatch, ex: ThreadPoolExecutor, writeback: bool = True,
                       defer: bool = False) -> list:
        """Each array's rows to its chunk files on ``ex``, without fsync (``arrays_io.sync`` later),
        biggest arrays first so the pool's last tasks are small ones. ``writeback``: start the
        disk's writes as each array is written (an append, whose fsyncs follow at once); without,
        the fsyncs start them (write_batch, whose commit comes later)."""
        def write(name: str) -> tuple[str, list]:
            m = w.acts[name]
            lo = w.row_lo if m.pool == "token" else w.rec_lo
            return name, self.arrays_io.write_rows(m, lo, w.data[name], w.tails.get(name), sync=False,
                                                   writeback=writeback, defer=defer)
        return [ex.submit(write, name) for name in sorted(w.data, key=lambda n: -w.data[n].nbytes)]

    def _commit(self, w: WrittenBatch, run_id: int | None, ex: ThreadPoolExecutor, pending: list | None) -> None:
        """One transaction makes a written batch visible: its catalog rows, then (``pending``: the
        writes still running) every touched file fsynced, the chunk checksums, COMMIT."""
        batch, acts, row_lo, rec_lo = w.batch, w.acts, w.row_lo, w.rec_lo
        n_rec, n_rows = batch.n_records, batch.n_rows
        nt = np.asarray(batch.n_tokens, dtype=np.int64)
        starts = row_lo + np.concatenate([[0], np.cumsum(nt)[:-1]])
        rec_ids = np.arange(rec_lo, rec_lo + n_rec, dtype=np.int64)
        names = sorted(acts)
        con = self.con
        con.execute("BEGIN TRANSACTION")
        try:
            batch_id = int(one(con, "SELECT coalesce(max(batch_id) + 1, 0) FROM batches")[0])
            con.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [batch_id, run_id, batch.key, rec_lo, n_rec, row_lo, n_rows, _now()])
            cat.insert(con, "records", {
                "record_id": rec_ids,
                "response_id": pa.array(list(batch.response_ids) if batch.response_ids is not None else [None] * n_rec, pa.string()),
                "prompt_id": pa.array(list(batch.prompt_ids) if batch.prompt_ids is not None else [None] * n_rec, pa.string()),
                "batch_id": np.full(n_rec, batch_id, dtype=np.int32),
                "row_start": starts, "n_tokens": nt.astype(np.int32),
                "prompt_len": np.asarray(batch.prompt_lens, dtype=np.int32)})
            rec_of_row = np.repeat(rec_ids, nt)
            cat.insert(con, "tokens", {
                "row": np.arange(row_lo, row_lo + n_rows, dtype=np.int64),
                "record_id": rec_of_row,
                "position": (np.arange(n_rows, dtype=np.int64) - np.repeat(starts - row_lo, nt)).astype(np.int32),
                "token_id": np.asarray(batch.token_ids, dtype=np.int32),
                "role": pa.DictionaryArray.from_arrays(pa.array(batch.role_codes()), pa.array(list(ROLES)))})
            # One statement each for every array's new length and its checksums: per-array statements
            # cost ~15 ms apiece, which for 2 sites x 28 layers was most of an append's fixed cost.
            new_n = [acts[n].n_rows + (n_rows if acts[n].pool == "token" else n_rec) for n in names]
            con.register("_new_lengths", pa.table({"name": names, "n_rows": pa.array(new_n, pa.int64())}))
            try:
                con.execute("UPDATE arrays SET n_rows = u.n_rows FROM _new_lengths u WHERE arrays.name = u.name")
            finally:
                con.unregister("_new_lengths")
            if pending is not None:
                w.written = [f.result() for f in pending]
            # Every array is written (into the page cache): now fsync all the touched files at
            # once, in parallel, so the kernel streams the whole batch to disk (an fsync per
            # array right after its write kept the disk waiting between small flushes).
            self.arrays_io.sync(ex)
            segs = {name: self.arrays_io.last_segment(acts[name]) for name, _ in w.written}
            self._put_crcs_many([(name, crcs, segs[name]) for name, crcs in w.written])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        for name, crcs in w.written:
            if crcs:
                chunk, n, crc = crcs[-1]
                self._tail_crcs[name] = ((segs[name], chunk), (n, crc))
        for name in names:
            m = acts[name]
            self._arrays[name] = ArrayMeta(**{**asdict(m), "n_rows": m.n_rows + (n_rows if m.pool == "token" else n_rec)})
        self._n_rows += n_rows
        self._n_records += n_rec
        w.batch_id = batch_id
        self._maybe_publish()

    def insert(self, table: str, data: Any, on_conflict: str = "error") -> int:
        """Bulk insert rows (dict of columns, DataFrame or Arrow table) into a user-facing table,
        in one transaction. ``on_conflict``: error | ignore | replace."""
        self._need_writer()
        if table in MANAGED:
            raise UsageError(f"table {table!r} is written by the store itself; use the matching Store method")
        if on_conflict not in cat._VERBS:
            raise UsageError(f"on_conflict must be error, ignore or replace, not {on_conflict!r}")
        self.con.execute("BEGIN TRANSACTION")
        try:
            n = cat.insert(self.con, table, data, on_conflict)
            self.con.execute("COMMIT")
        except Exception:
            self.con.execute("ROLLBACK")
            raise
        self._maybe_publish()
        return n

    def begin_run(self, kind: str, params: dict | None = None) -> int:
        """Record the start of an ingest or analysis run; returns its id."""
        self._need_writer()
        run_id = int(one(self.con, "SELECT coalesce(max(run_id) + 1, 1) FROM runs")[0])
        self.con.execute("INSERT INTO runs VALUES (?, ?, ?, ?, 'running', ?, NULL, NULL)",
                         [run_id, kind, json.dumps(params or {}, default=str), json.dumps(versions()), _now()])
        self._maybe_publish()
        return run_id

    def end_run(self, run_id: int, status: str = "done", message: str | None = None) -> None:
        self._need_writer()
        self.con.execute("UPDATE runs SET status = ?, finished_at = ?, message = ? WHERE run_id = ?",
                         [status, _now(), message, run_id])
        self._maybe_publish(force=True)

    def _maybe_publish(self, force: bool = False) -> None:
        # Publishing copies the catalog: keep it under ~10% of the writer's time, unless asked to
        # publish every commit (an interval of 0).
        now = time.monotonic()
        due = self.publish_interval == 0 or now - self._last_publish >= max(self.publish_interval,
                                                                            10 * self._publish_cost)
        if self._writer is not None and (force or due):
            self._writer.publish()
            self._publish_cost = time.monotonic() - now
            self._last_publish = time.monotonic()

    def flush(self) -> None:
        """Publish now: readers opening the store afterwards see everything committed."""
        self._maybe_publish(force=True)

    def _trim_arrays(self) -> None:
        # Zarr shapes back to the committed rows (appends grow them ahead: see actstore.arrays),
        # in threads as in _register_arrays.
        acts = [m for m in self._arrays.values() if m.kind == "activation"]
        with ThreadPoolExecutor(max_workers=FSYNC_THREADS) as ex:
            list(ex.map(self.arrays_io.trim, acts))

    def close(self) -> None:
        if self._writer is not None:
            if not self._writer.closed:
                self._trim_arrays()
                self._writer.close()
        else:
            self.con.close()
        if self._engine is not None:
            self._engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "remote, read-only" if self.is_remote else "read-only" if self.read_only else "writable"
        return f"<actstore.Store {self.root} ({mode}): {self.n_records} records, {self.n_rows} rows>"


def check_writable(path: "str | Path") -> None:
    """Raise now what opening ``path`` for writing would refuse for access: a URL (read-only) or a
    store whose writer lock another process (or another writer in this one) holds.

    Changes nothing; call it before expensive work that ends in a write, such as loading a
    model, so that a conflict is reported before that work rather than after.
    """
    text = str(path)
    if remote.is_url(text):
        raise ReadOnlyError(f"{text} is a remote store and is read-only; copy it with "
                            f"'actstore pull {text} DIR' and write to the copy")
    root = Path(text.removeprefix("file://")).expanduser()
    if root.is_dir() and cat.writer_busy(root):
        raise cat.busy_error(root)


def open(path: "str | Path", read_only: bool = True, create: bool = False, **kw: Any) -> Store:  # noqa: A001
    """Open a store by path, or read-only by URL (http(s)://, s3://, gs://, hf://: see actstore.remote).

    ``create=True`` (with ``read_only=False``) makes a new local store if absent.
    """
    text = str(path)
    if remote.is_url(text):
        if not read_only:
            raise ReadOnlyError(f"{text} is a remote store and is read-only; copy it with "
                                f"'actstore pull {text} DIR' and open the copy with read_only=False")
        return Store(text.rstrip("/"), read_only=True, **kw)
    if text.startswith("file://"):
        text = text[len("file://"):]
    root = Path(text).expanduser()
    if create and read_only:
        raise UsageError("create=True needs read_only=False")
    if not root.exists() and not create:
        raise StoreNotFoundError(f"no store at {root}; check the path, or create one with 'actstore ingest run'")
    if root.exists() and not root.is_dir():
        raise StoreNotFoundError(f"{root} is a file, not a store directory")
    return Store(root, read_only=read_only, create=create, **kw)
