"""The Zarr side of a store: create, append, read and check 2-D ``[rows, width]`` arrays.

Layout decisions (measured in benchmarks/bench_store.py, written down in schema/FORMAT.md):
chunks span the full width and ~4 MiB of rows; uncompressed by default because activations
barely compress and every codec cost read speed; unsharded by default because sharded random
reads were several times slower and a partial-shard append rewrites the whole shard.

For uncompressed, unsharded arrays on a local disk the read path skips Zarr's decoder and maps
the chunk files directly (a raw chunk is C-order little-endian bytes per the v3 ``bytes`` codec,
always of full chunk shape), so a random gather costs what a numpy memmap gather costs.
Everything else goes through Zarr, one contiguous block per chunk.

A store's arrays may live in several segments (see ``actstore.segments``): :class:`LocalGroup`
does the I/O of one segment's Zarr group in local rows, :class:`ArrayIO` routes global rows to
segments. A remote store plugs in ``actstore.remote.RemoteGroup`` instead of :class:`LocalGroup`.
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import shutil
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

from actstore.catalog import fsync_path
from actstore.errors import IntegrityError, UsageError
from actstore.layout import group_rows_by_chunk, spans
from actstore.segments import SegmentMap, axis_of

try:  # zlib-ng's CRC-32: the same checksum as zlib's, ~8x faster here (4 -> 35 GB/s; folded with
    # carry-less multiplies); it was a fifth of the write path's CPU. zlib where it is missing.
    from zlib_ng.zlib_ng import crc32
except ImportError:  # pragma: no cover - zlib-ng is a dependency; a platform without its wheel
    from zlib import crc32

MAX_MAPS = 2048
CODECS = ("none", "blosc-lz4", "blosc-zstd", "zstd")
#: Zarr shape of an activation array ahead of its rows. A new one is created GROW_MIN_CHUNKS
#: chunks long; an append that outgrows it grows it by its current length (at most GROW_CHUNKS
#: chunks), in whole chunks. Each resize rewrites and fsyncs the array's zarr.json and its
#: directory: growing to just the rows appended did that for every array on every append, about a
#: quarter of the write path's time. The catalog's ``n_rows`` is the truth about rows (FORMAT.md);
#: ``trim`` brings the shape back to it when the writer closes (or the next writer opens after a
#: crash). Weights are written once, at their exact shape.
GROW_MIN_CHUNKS = 16
GROW_CHUNKS = 64
#: Direct I/O (``O_DIRECT``), opt-in with ``$ACTSTORE_DIRECT_IO=1``: the block-aligned middle of
#: each raw chunk write goes to disk from a 4 KiB-aligned staging buffer instead of being copied
#: into the page cache first. It trades CPU for latency (benchmarks/bench_ingest.py, both sides in
#: one run): on the 2-core development machine the write path took 8-29% less CPU (the kernel's
#: page-cache copy ran at ~0.3 GB/s of CPU there; the staging copy at ~13 GB/s), but a whole ingest
#: was no faster beyond the noise; on a 16-core GPU machine, where ingest waits on the disk, each
#: synchronous direct write stalls its thread and ingest was 8-25% slower. Hence off by default.
#: Offsets and lengths are multiples of DIRECT_ALIGN (covers 512-byte and 4 KiB logical blocks);
#: the unaligned head and tail of a span, and spans shorter than DIRECT_MIN, go through the page
#: cache. A file system that refuses O_DIRECT (tmpfs, some network mounts) gets buffered writes,
#: silently. Durability is unchanged: every touched file is still fsynced before the catalog
#: commits (O_DIRECT alone does not persist the file's block map).
#:
#: Deferred direct writes (the default; ``$ACTSTORE_DIRECT_IO=0`` turns them off): a caller that
#: keeps a batch's arrays unchanged until its commit (``Store.write_batch(defer=True)``, the CPU
#: capture's split schedule) has the aligned middle of each raw chunk write queued instead of
#: copied into the page cache, and written with O_DIRECT straight from its buffer when the batch
#: is synced (``LocalGroup.sync``, in the commit, beside the next forward pass): no copy, no
#: page-cache writeback, ~0.05 s of CPU a 1.5 GB where the page cache took ~1 s. Spans whose source
#: is not aligned as the file system asks (statx STATX_DIOALIGN) go through the page cache.
DIRECT_ALIGN = 4096
DIRECT_MIN = 64 << 10
DIRECT_BOUNCE = 4 << 20
_bounce_local = threading.local()
_STATX_DIOALIGN = 0x2000
_AT_FDCWD = -100


def _libc(name: str, argtypes: list) -> Any:
    """The C library's function ``name`` (Linux only; None where it is missing)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = ctypes.c_int
    return fn


_STATX = _libc("statx", [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p])


def dio_alignment(path: Path) -> tuple[int, int] | None:
    """``(memory, offset)``: how a buffer's address and a file offset (and length) must be aligned
    for O_DIRECT on the file at ``path`` (Linux statx ``STATX_DIOALIGN``, kernels >= 6.1). None when
    the file system says it has no direct I/O; ``(DIRECT_ALIGN, DIRECT_ALIGN)``, the safe guess,
    where it cannot say (older kernels, other platforms): a refusal then falls back as before."""
    if not hasattr(os, "O_DIRECT"):
        return None
    if _STATX is None:
        return DIRECT_ALIGN, DIRECT_ALIGN
    buf = ctypes.create_string_buffer(256)  # struct statx
    if _STATX(_AT_FDCWD, os.fsencode(path), 0, _STATX_DIOALIGN, buf) != 0:
        return DIRECT_ALIGN, DIRECT_ALIGN
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & _STATX_DIOALIGN:  # the kernel or the file system does not say (tmpfs: no direct I/O)
        return DIRECT_ALIGN, DIRECT_ALIGN
    mem, off = int.from_bytes(buf.raw[152:156], "little"), int.from_bytes(buf.raw[156:160], "little")
    return (mem, off) if mem and off else None


@dataclass(frozen=True, slots=True)
class ArrayMeta:
    """What the catalog says about one array (a row of the ``arrays`` table)."""

    name: str
    kind: str
    site: str | None
    layer: int | None
    pool: str | None
    n_rows: int
    width: int
    dtype: str
    logical_dtype: str
    chunk_rows: int
    shard_chunks: int
    codec: str

    @property
    def raw(self) -> bool:
        return self.codec == "none" and self.shard_chunks == 1

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    @property
    def axis(self) -> str | None:
        return axis_of(self.kind, self.pool)

    @property
    def row_bytes(self) -> int:
        return self.width * self.np_dtype.itemsize


def _compressors(codec: str, itemsize: int):
    if codec == "none":
        return None
    if codec == "blosc-lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=itemsize)]
    if codec == "blosc-zstd":
        return [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle", typesize=itemsize)]
    if codec == "zstd":
        return [ZstdCodec(level=3)]
    raise UsageError(f"unknown codec {codec!r}; use one of {', '.join(CODECS)}")


def _attributes(meta: ArrayMeta) -> dict:
    return {"logical_dtype": meta.logical_dtype, "site": meta.site, "layer": meta.layer, "pool": meta.pool,
            "kind": meta.kind}


def _capacity(meta: ArrayMeta, have: int, need: int) -> int:
    """The Zarr length to give an array of ``have`` rows that must hold ``need`` (GROW_CHUNKS)."""
    if meta.kind != "activation":
        return need
    c = meta.chunk_rows
    step = min(max(have, GROW_MIN_CHUNKS * c), GROW_CHUNKS * c)
    return -(-max(need, have + step) // c) * c


_SYNC_FILE_RANGE = _libc("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int, offset: int, n: int) -> None:
    """Ask the kernel to start writing bytes ``[offset, offset + n)`` of ``fd`` to disk now
    (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``: it returns at once and promises nothing;
    the fsync before the commit is what makes the data durable). The disk then works while the
    next arrays are copied into the page cache, instead of idling until the fsyncs. A no-op
    where the call does not exist."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, offset, n, _SYNC_FILE_RANGE_WRITE)  # advisory: a failure changes nothing


def _replace_file(path: Path, data: bytes) -> None:
    """Write ``path`` whole beside itself and rename it into place: a reader sees the old file or
    the new one, never a part."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _chunk_key(doc: dict, key: int) -> str:
    """The file name, inside its array's directory, of chunk (or shard) ``key`` of a
    ``[rows, width]`` array whose zarr.json is ``doc`` (Zarr v3's ``default`` and ``v2`` chunk
    key encodings; a second coordinate of 0: chunks span the full width)."""
    enc = doc.get("chunk_key_encoding") or {"name": "default"}
    name = enc.get("name", "default")
    sep = (enc.get("configuration") or {}).get("separator", "/" if name == "default" else ".")
    return f"c{sep}{key}{sep}0" if name == "default" else f"{key}{sep}0"


def _pwrite_all(fd: int, buf: memoryview, offset: int) -> None:
    while len(buf):
        n = os.pwrite(fd, buf, offset)
        buf, offset = buf[n:], offset + n


#: Advice given for a chunk file once fsynced (None where the platform has none): drop its pages
#: from the page cache (they are clean). An ingest writes each page once and does not read it
#: back: kept, the page cache grows by every byte written and each new write needs memory that has
#: not been touched for a while; dropped, the next batch's pages reuse what this one freed. On the
#: development VM, whose freed memory goes back to the host until touched again, a 5.8 GiB store
#: took 14-15 s of CPU at 630-660 MiB/s with its pages kept and 5.7-6.5 s at 1,080-1,150 MiB/s
#: with them dropped. Readers get the pages from disk; zarr.json files keep theirs.
_FADV_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None) if hasattr(os, "posix_fadvise") else None


def _after_sync(path: Path) -> int | None:
    """The fadvise advice for ``path`` once fsynced (see _FADV_DONTNEED)."""
    return None if path.name == "zarr.json" else _FADV_DONTNEED


def direct_io_mode() -> str:
    """``$ACTSTORE_DIRECT_IO`` (read when a store is opened for writing): ``auto`` when unset (direct
    writes only where deferred: see above), ``on`` (``1``: every raw chunk write's aligned middle,
    synchronously, through a staging buffer), ``off`` (``0``: never). ``off`` where the platform
    has no ``O_DIRECT``."""
    raw = os.environ.get("ACTSTORE_DIRECT_IO", "").strip().lower()
    if raw not in ("0", "1", "", "off", "on", "false", "true", "no", "yes"):
        raise UsageError(f"ACTSTORE_DIRECT_IO must be 1 or 0 (or unset: direct only for deferred writes), not {raw!r}")
    if not hasattr(os, "O_DIRECT") or raw in ("0", "off", "false", "no"):
        return "off"
    return "auto" if raw == "" else "on"


def direct_io_wanted() -> bool:
    """Synchronous direct I/O for every raw chunk write: ``$ACTSTORE_DIRECT_IO=1``."""
    return direct_io_mode() == "on"


def _each(pool: Any, fn: Any, items: Any) -> None:
    """``fn(item)`` for every item: on ``pool`` (an executor) when given and there are several,
    else in turn. Raises the first failure."""
    items = list(items)
    if pool is not None and len(items) > 1:
        for f in [pool.submit(fn, x) for x in items]:
            f.result()
    else:
        for x in items:
            fn(x)


def _bounce() -> np.ndarray:
    """This thread's page-aligned staging buffer for direct writes (an anonymous mapping, so
    aligned to the page; reused for the life of the thread)."""
    buf = getattr(_bounce_local, "buf", None)
    if buf is None:
        buf = np.frombuffer(mmap.mmap(-1, DIRECT_BOUNCE), dtype=np.uint8)
        _bounce_local.buf = buf
    return buf


class LocalGroup:
    """Reads and writes the arrays of one segment, a Zarr group on a local disk, in local rows."""

    def __init__(self, dir: Path, read_only: bool, durable: bool = True) -> None:
        self.dir = dir
        self.read_only = read_only
        self.durable = durable
        self._zstore = LocalStore(self.dir, read_only=read_only)
        self._open: dict[str, zarr.Array] = {}
        # Each array's zarr.json as this process last wrote or read it: raw writes, trims and chunk
        # paths use its shape and key encoding without opening the array through Zarr (~1 ms of
        # CPU and an event-loop round each, hundreds of arrays per store).
        self._docs: dict[str, dict] = {}
        # Mapped raw chunk files, reused across gathers (an analysis gathers many times; mapping
        # and faulting a chunk in again each time cost 3-4x). Writes drop the chunks they touch.
        self._maps: OrderedDict[tuple[str, int], np.memmap] = OrderedDict()
        # Written but not yet fsynced (writes with sync=False; see sync()); writer threads add here.
        self._dirty_files: set[Path] = set()
        self._dirty_dirs: set[Path] = set()
        self._dirty_lock = threading.Lock()
        self._groups_made: set[str] = set()  # parent groups made by create() in this session
        # O_DIRECT for raw chunk writes (DIRECT_ALIGN); off once the file system refuses it.
        mode = direct_io_mode() if durable and not read_only else "off"
        self.direct = mode == "on"
        # Deferred direct writes (write_rows(defer=True)): off with $ACTSTORE_DIRECT_IO=0, and once
        # the file system refuses them. Queued as (file, source bytes, offset) until sync().
        self.defer_direct = mode != "off"
        self._deferred: list[tuple[Path, memoryview, int]] = []
        self._dio_align: tuple[int, int] | None = None  # asked of the file system once (_dio_known)
        self._dio_known = False
        self.direct_bytes = 0  # bytes written with O_DIRECT (benchmarks and tests read it)
        self._layouts: dict[tuple, dict] = {}  # zarr.json documents by array layout (create())
        if not read_only:
            self.dir.mkdir(parents=True, exist_ok=True)
            if not (self.dir / "zarr.json").exists():
                zarr.open_group(store=self._zstore, mode="a")

    # -- write -------------------------------------------------------------------------------
    def create(self, meta: ArrayMeta, n_rows: int = 0) -> None:
        """A new, empty array (replacing any earlier one of the name). Zarr makes its metadata,
        in memory; the file is written here: Zarr's own create on a local store (parent groups
        rewritten, old keys listed and deleted, each a separate async round) took ~10 ms an
        array, seconds for a model's hundreds. Its zarr.json and directories are fsynced by the
        next :meth:`sync` (before the first batch that holds rows of it commits)."""
        parent = meta.name.rpartition("/")[0]
        with self._dirty_lock:
            make_parent = parent not in self._groups_made
            self._groups_made.add(parent)
        if make_parent and parent:
            zarr.open_group(store=self._zstore, path=parent, mode="a")
        path = self.dir / meta.name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        doc = self._metadata_doc(meta, n_rows)
        _replace_file(path / "zarr.json", json.dumps(doc, indent=2).encode())
        self._docs[meta.name] = doc
        self._open.pop(meta.name, None)
        with self._dirty_lock:
            self._dirty_files.add(path / "zarr.json")
            self._dirty_dirs.update(self.dir / "/".join(meta.name.split("/")[:i])
                                    for i in range(meta.name.count("/") + 2))

    def _metadata_doc(self, meta: ArrayMeta, n_rows: int) -> dict:
        """zarr.json of a new array: Zarr's own metadata for its shape, chunking, dtype and codec
        (made once per such layout, in memory: ~4 ms each), with this array's attributes."""
        layout = (_capacity(meta, n_rows, n_rows), meta.width, meta.chunk_rows, meta.shard_chunks,
                  meta.dtype, meta.codec, meta.kind)
        with self._dirty_lock:
            doc = self._layouts.get(layout)
        if doc is None:
            arr = self._new_array(meta, n_rows, zarr.storage.MemoryStore())
            doc = json.loads(arr.metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())
            with self._dirty_lock:
                self._layouts[layout] = doc
        return {**doc, "attributes": _attributes(meta)}

    def _doc(self, name: str) -> dict:
        """An array's zarr.json (cached: only this writer changes it, and a reader needs only its
        chunk key encoding, which never changes)."""
        doc = self._docs.get(name)
        if doc is None:
            doc = json.loads((self.dir / name / "zarr.json").read_bytes())
            self._docs[name] = doc
        return doc

    def _set_length(self, meta: ArrayMeta, n_rows: int) -> None:
        """Write an array's new Zarr length straight into its zarr.json (whole, renamed into place)."""
        doc = {**self._doc(meta.name), "shape": [n_rows, meta.width]}
        _replace_file(self.dir / meta.name / "zarr.json", json.dumps(doc, indent=2).encode())
        self._docs[meta.name] = doc
        self._open.pop(meta.name, None)  # a cached Zarr array's shape is stale

    def _new_array(self, meta: ArrayMeta, n_rows: int, store: Any) -> zarr.Array:
        shards = None if meta.shard_chunks == 1 else (meta.chunk_rows * meta.shard_chunks, meta.width)
        return zarr.create_array(
            store=store,
            name=meta.name,
            shape=(_capacity(meta, n_rows, n_rows), meta.width),
            chunks=(meta.chunk_rows, meta.width),
            shards=shards,
            dtype=meta.np_dtype,
            compressors=_compressors(meta.codec, meta.np_dtype.itemsize),
            fill_value=0,
            # Chunk files side by side (``c.<i>.0``) rather than one directory per chunk
            # (``c/<i>/0``): making a directory cost ~0.8 ms of CPU here, a chunk file 0.06 ms,
            # and each new directory was one more to fsync. Zarr readers follow the metadata.
            chunk_key_encoding={"name": "default", "separator": "."},
            attributes=_attributes(meta),
            config={"write_empty_chunks": True},  # a missing chunk file then always means damage
            overwrite=True,
        )

    def array(self, name: str) -> zarr.Array:
        arr = self._open.get(name)
        if arr is None:
            arr = zarr.open_array(store=self._zstore, path=name, mode="r" if self.read_only else "r+")
            self._open[name] = arr
        return arr

    def write_rows(
        self, meta: ArrayMeta, row_lo: int, data: np.ndarray, tail_crc: tuple[int, int] | None,
        sync: bool = True, writeback: bool = True, defer: bool = False,
    ) -> list[tuple[int, int, int]]:
        """Write ``data`` at rows ``[row_lo, row_lo + len(data))`` and make it durable.

        ``tail_crc`` is ``(n_rows, crc)`` already recorded for the chunk holding ``row_lo`` when
        that chunk is partly filled. Returns ``(chunk, n_rows_covered, crc32)`` for every touched
        chunk: CRC-32 over the committed rows of the chunk, continued from the recorded prefix,
        so no chunk is read back.

        ``sync=False`` leaves the fsyncs to :meth:`sync`, which the caller must call (and see
        return) before it commits the rows: an append writes every array first and then fsyncs
        all the touched files together, so the kernel writes the whole batch back in one go.
        ``writeback=False`` (raw arrays) does not start the kernel's writeback of each span as it
        is written, which blocks while the disk's queue is full: the later fsync does it all.
        ``defer=True`` (raw arrays, with ``sync=False``): the aligned middles are queued and written
        with O_DIRECT by :meth:`sync`, straight from ``data``, which must not change until then
        (see :data:`DIRECT_ALIGN`).
        """
        row_hi = row_lo + len(data)
        if meta.raw:  # no Zarr at all: the shape lives in zarr.json, the rows in the chunk files
            have = self._doc(meta.name)["shape"][0]
            grown = have < row_hi
            if grown:
                self._set_length(meta, _capacity(meta, have, row_hi))
            return self._write_raw(meta, row_lo, data, tail_crc, grown, sync, writeback, defer and not sync)
        arr = self.array(meta.name)
        grown = self._grow(arr, meta, row_hi)
        arr[row_lo:row_hi] = data
        out = []
        for sp in spans(row_lo, row_hi, meta.chunk_rows):
            prev = self._crc_prefix(meta, sp, tail_crc)
            part = data[sp.lo - row_lo : sp.hi - row_lo]
            out.append((sp.chunk, sp.hi - sp.start, crc32(np.ascontiguousarray(part).data, prev)))
        if self.durable:
            self._note_dirty(meta, [c for c, _, _ in out])
            if sync:
                self.sync()
        return out

    def _grow(self, arr: zarr.Array, meta: ArrayMeta, row_hi: int) -> bool:
        """Make the Zarr shape hold ``row_hi`` rows (see :data:`GROW_CHUNKS`); True if it changed."""
        have = arr.shape[0]
        if have >= row_hi:
            return False
        arr.resize((_capacity(meta, have, row_hi), meta.width))
        self._docs.pop(meta.name, None)  # Zarr rewrote zarr.json
        return True

    def sync(self, pool: Any = None) -> None:
        """fsync every file and directory that writes with ``sync=False`` left dirty (files in
        parallel on ``pool``, an executor, when given). Raises the first failure; what failed
        stays pending, so the next sync tries it again."""
        with self._dirty_lock:
            files, dirs = sorted(self._dirty_files), sorted(self._dirty_dirs)
            deferred, self._deferred = self._deferred, []  # tried once: a failed batch is written again
        if deferred:  # before the fsyncs, which then find the data on disk already
            by_file: dict[Path, list[tuple[memoryview, int]]] = {}
            for path, src, off in deferred:
                by_file.setdefault(path, []).append((src, off))
            _each(pool, self._write_deferred, by_file.items())
        if not files and not dirs:
            return
        _each(pool, lambda p: fsync_path(p, _after_sync(p)), files)
        for d in dirs:
            fsync_path(d)
        with self._dirty_lock:
            self._dirty_files.difference_update(files)
            self._dirty_dirs.difference_update(dirs)

    def _crc_prefix(self, meta: ArrayMeta, sp, tail_crc: tuple[int, int] | None) -> int:
        """The recorded CRC of a chunk's committed rows that an append continues (0: a new chunk);
        drops the chunk's cached map, which the write makes stale."""
        self._maps.pop((meta.name, sp.chunk), None)
        if sp.lo == sp.start:
            return 0
        if tail_crc is None or tail_crc[0] != sp.lo - sp.start:
            raise IntegrityError(f"{meta.name}: no checksum for the partly filled chunk {sp.chunk}")
        return tail_crc[1]

    def _write_raw(self, meta: ArrayMeta, row_lo: int, data: np.ndarray,
                   tail_crc: tuple[int, int] | None, grown: bool, sync: bool,
                   writeback: bool, defer: bool = False) -> list[tuple[int, int, int]]:
        """Uncompressed, unsharded: write the rows into the chunk files directly (Zarr's path
        rewrote the whole tail chunk of every unaligned append, and was ~20-30% slower than a
        plain file write on aligned ones).

        A raw chunk file is the chunk's full shape in C order, little-endian (the v3 ``bytes``
        codec); a new one is made full size with zeros (the fill value), then only the appended
        rows are written, so the committed rows of a tail chunk are never rewritten. Durable: each
        chunk file is fsynced, and a directory only when an entry was made in it (a new chunk
        file, a new chunk directory, zarr.json rewritten by a resize).
        """
        data = np.ascontiguousarray(data, dtype=meta.np_dtype.newbyteorder("<"))
        row_bytes = meta.width * meta.np_dtype.itemsize
        full = meta.chunk_rows * row_bytes
        out: list[tuple[int, int, int]] = []
        files: list[Path] = [self.dir / meta.name / "zarr.json"] if grown else []
        dirs: set[Path] = {self.dir / meta.name} if grown else set()
        for sp in spans(row_lo, row_lo + len(data), meta.chunk_rows):
            prev = self._crc_prefix(meta, sp, tail_crc)
            part = data[sp.lo - row_lo : sp.hi - row_lo].reshape(-1).view(np.uint8).data
            path = self._chunk_file(meta, sp.chunk)
            if not path.exists():
                if not path.parent.exists():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    dirs.add(path.parent.parent)
                dirs.add(path.parent)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size != full:
                    os.ftruncate(fd, full)
                off = (sp.lo - sp.start) * row_bytes
                if not (defer and self._defer_span(fd, path, part, off, writeback)):
                    self._write_span(fd, path, part, off, writeback)
            finally:
                os.close(fd)
            files.append(path)
            out.append((sp.chunk, sp.hi - sp.start, crc32(part, prev)))
        if self.durable:
            with self._dirty_lock:
                self._dirty_files.update(files)
                self._dirty_dirs.update(dirs)
            if sync:
                self.sync()
        return out

    def _defer_span(self, fd: int, path: Path, part: memoryview, off: int, writeback: bool) -> bool:
        """Queue the direct write of ``part``'s aligned middle for :meth:`sync` and write its
        unaligned head and tail through the page cache now; False (nothing written) where the file
        system has no direct I/O, the middle is short, or ``part``'s address is not aligned as the
        file offset is (the caller then writes it all through the page cache)."""
        if not self.defer_direct:
            return False
        if not self._dio_known:
            self._dio_align, self._dio_known = dio_alignment(path), True
        if self._dio_align is None:
            self.defer_direct = False
            return False
        mem, align = self._dio_align
        n = len(part)
        a0 = -(-off // align) * align
        a1 = (off + n) // align * align
        if a1 - a0 < DIRECT_MIN or (np.frombuffer(part, dtype=np.uint8).ctypes.data + a0 - off) % mem:
            return False
        if a0 > off:
            self._buffered(fd, part[: a0 - off], off, writeback)
        if a1 < off + n:
            self._buffered(fd, part[a1 - off :], a1, writeback)
        with self._dirty_lock:
            self._deferred.append((path, part[a0 - off : a1 - off], a0))
        return True

    def discard_deferred(self) -> None:
        """Drop direct writes queued by ``write_rows(defer=True)`` and not yet synced (their batch
        failed: written again, it queues its own; run later, these could overwrite its rows)."""
        with self._dirty_lock:
            self._deferred = []

    def _write_deferred(self, item: tuple[Path, list[tuple[memoryview, int]]]) -> None:
        """The queued direct writes of one chunk file; through the page cache if refused (EINVAL:
        this file system or alignment), and none deferred from then on."""
        path, pieces = item
        done = 0
        try:
            fd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            fd = None
        try:
            if fd is not None:
                for src, off in pieces:
                    _pwrite_all(fd, src, off)
                    done += 1
                    with self._dirty_lock:
                        self.direct_bytes += len(src)
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
        finally:
            if fd is not None:
                os.close(fd)
        if done < len(pieces):
            self.defer_direct = False
            fd = os.open(path, os.O_WRONLY)
            try:
                for src, off in pieces[done:]:
                    _pwrite_all(fd, src, off)
            finally:
                os.close(fd)

    def _write_span(self, fd: int, path: Path, part: memoryview, off: int, writeback: bool) -> None:
        """Write ``part`` at byte ``off`` of the chunk file open as ``fd``: the DIRECT_ALIGN-aligned
        middle with O_DIRECT through this thread's staging buffer, the rest through the page
        cache (whose writeback starts at once if ``writeback``). Same bytes in the file either way."""
        n = len(part)
        a0 = -(-off // DIRECT_ALIGN) * DIRECT_ALIGN
        a1 = (off + n) // DIRECT_ALIGN * DIRECT_ALIGN
        if not self.direct or a1 - a0 < DIRECT_MIN:
            self._buffered(fd, part, off, writeback)
            return
        if a0 > off:
            self._buffered(fd, part[: a0 - off], off, writeback)
        if a1 < off + n:
            self._buffered(fd, part[a1 - off :], a1, writeback)
        try:
            dfd = os.open(path, os.O_WRONLY | os.O_DIRECT)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            self.direct = False  # this file system has no direct I/O
            self._buffered(fd, part[a0 - off : a1 - off], a0, writeback)
            return
        src = np.frombuffer(part, dtype=np.uint8)
        buf = _bounce()
        pos = a0
        try:
            while pos < a1:
                k = min(len(buf), a1 - pos)
                np.copyto(buf[:k], src[pos - off : pos - off + k])
                _pwrite_all(dfd, buf[:k].data, pos)
                pos += k
                self.direct_bytes += k
        except OSError as e:
            if e.errno != errno.EINVAL:
                raise
            self.direct = False  # an alignment this file system does not take: buffered from here on
            self._buffered(fd, part[pos - off : a1 - off], pos, writeback)
        finally:
            os.close(dfd)

    def _buffered(self, fd: int, part: memoryview, off: int, writeback: bool) -> None:
        _pwrite_all(fd, part, off)
        if self.durable and writeback:
            _start_writeback(fd, off, len(part))

    def _note_dirty(self, meta: ArrayMeta, chunks: list[int]) -> None:
        """What a write through Zarr left to fsync: the touched chunk (shard) files, zarr.json,
        and their directories (Zarr writes a file as a new file renamed into place)."""
        files = {self.dir / meta.name / _chunk_key(self._doc(meta.name), c // meta.shard_chunks) for c in chunks}
        files.add(self.dir / meta.name / "zarr.json")
        with self._dirty_lock:
            self._dirty_files.update(files)
            self._dirty_dirs.update({d for p in files for d in (p.parent, p.parent.parent)})

    def trim(self, meta: ArrayMeta, n_rows: int) -> None:
        """Set the Zarr shape to the committed rows (appends grow it ahead of them, and a crash
        may leave rows past them). Safe to call for different arrays from several threads."""
        doc = self._doc(meta.name)
        have = doc["shape"][0]
        if have != n_rows:
            # The new shape goes straight into zarr.json (written whole and renamed into place):
            # Zarr's resize took ~10 ms an array, and would try to delete every chunk key past the
            # new shape one by one (tens per array, hundreds of arrays); only a crash leaves files
            # there, so remove just the ones that exist.
            self._set_length(meta, n_rows)
            per_key = meta.chunk_rows * meta.shard_chunks
            for k in range(-(-n_rows // per_key), -(-have // per_key)):
                (self.dir / meta.name / _chunk_key(doc, k)).unlink(missing_ok=True)
        for key in list(self._maps):  # a snapshot: other threads trim other arrays
            if key[0] == meta.name:
                self._maps.pop(key, None)

    # -- read --------------------------------------------------------------------------------
    def _chunk_file(self, meta: ArrayMeta, chunk: int) -> Path:
        return self.dir / meta.name / _chunk_key(self._doc(meta.name), chunk)

    def read_span(self, meta: ArrayMeta, lo: int, hi: int) -> np.ndarray:
        """Rows ``[lo, hi)`` in storage dtype. Caller guarantees ``hi <= meta.n_rows``."""
        if not meta.raw:
            return np.asarray(self.array(meta.name)[lo:hi])
        out = np.empty((hi - lo, meta.width), dtype=meta.np_dtype)
        row_bytes = meta.width * meta.np_dtype.itemsize
        for sp in spans(lo, hi, meta.chunk_rows):
            n = sp.hi - sp.lo
            got = np.fromfile(self._chunk_file(meta, sp.chunk), dtype=meta.np_dtype,
                              count=n * meta.width, offset=(sp.lo - sp.start) * row_bytes)
            if got.size != n * meta.width:
                raise IntegrityError(f"{meta.name}: chunk {sp.chunk} is shorter than its rows; run 'actstore verify'")
            out[sp.lo - lo : sp.hi - lo] = got.reshape(n, meta.width)
        return out

    def gather(self, meta: ArrayMeta, rows: np.ndarray) -> np.ndarray:
        """Rows in any order (repeats allowed), each chunk visited once, in storage dtype."""
        out = np.empty((len(rows), meta.width), dtype=meta.np_dtype)
        for chunk, local, pos in group_rows_by_chunk(rows, meta.chunk_rows):
            if meta.raw:
                out[pos] = self._mapped(meta, chunk)[local]
            else:
                start = chunk * meta.chunk_rows
                lo, hi = int(local[0]), int(local[-1]) + 1  # local is sorted
                block = np.asarray(self.array(meta.name)[start + lo : start + hi])
                out[pos] = block[local - lo]
        return out

    def _mapped(self, meta: ArrayMeta, chunk: int) -> np.memmap:
        key = (meta.name, chunk)
        mm = self._maps.get(key)
        if mm is None:
            try:
                mm = np.memmap(self._chunk_file(meta, chunk), dtype=meta.np_dtype, mode="r",
                               shape=(meta.chunk_rows, meta.width))
            except (FileNotFoundError, ValueError):
                raise IntegrityError(f"{meta.name}: chunk {chunk} is missing or short; run 'actstore verify'") from None
            self._maps[key] = mm
            if len(self._maps) > MAX_MAPS:
                self._maps.popitem(last=False)
        else:
            self._maps.move_to_end(key)
        return mm

    def exists(self, name: str) -> bool:
        return (self.dir / name / "zarr.json").exists()

    def chunk_key(self, meta: ArrayMeta, chunk: int) -> str:
        """The file of a chunk relative to this group (the shard file for sharded arrays)."""
        return f"{meta.name}/" + _chunk_key(self._doc(meta.name), chunk // meta.shard_chunks)


class ArrayIO:
    """Every array of a store, across its segments; rows and chunks here are global.

    Writes (appends, weights) go to the last segment and segment 0 respectively; a fresh or
    single-writer store has one segment, so both are ``arrays/``.
    """

    def __init__(self, groups: list, segments: SegmentMap) -> None:
        self.groups = groups
        self.segments = segments

    @classmethod
    def local(cls, root: Path, segments: SegmentMap, read_only: bool, durable: bool = True) -> ArrayIO:
        groups = [LocalGroup(root / s.path, read_only=read_only, durable=durable) for s in segments.segments]
        return cls(groups, segments)

    def _writable(self, meta: ArrayMeta):
        # Weights live in segment 0; appends extend the last segment.
        return self.groups[0] if meta.axis is None else self.groups[-1]

    def _local_lo(self, meta: ArrayMeta, row_lo: int) -> int:
        return row_lo - int(self.segments.starts(meta.axis)[-1]) if meta.axis else row_lo

    # -- write -------------------------------------------------------------------------------
    def create(self, meta: ArrayMeta, n_rows: int = 0) -> None:
        self._writable(meta).create(meta, n_rows)

    def write_rows(self, meta: ArrayMeta, row_lo: int, data: np.ndarray,
                   tail_crc: tuple[int, int] | None, sync: bool = True,
                   writeback: bool = True, defer: bool = False) -> list[tuple[int, int, int]]:
        """Append at global ``row_lo`` (in the last segment); chunks returned are that segment's."""
        return self._writable(meta).write_rows(meta, self._local_lo(meta, row_lo), data, tail_crc, sync, writeback,
                                               defer)

    def discard_deferred(self) -> None:
        """See LocalGroup.discard_deferred."""
        for g in self.groups:
            g.discard_deferred()

    def sync(self, pool: Any = None) -> None:
        """fsync what writes with ``sync=False`` left dirty, in every group (see LocalGroup.sync)."""
        for g in {id(g): g for g in (self.groups[0], self.groups[-1])}.values():  # the writable ones
            g.sync(pool)

    def last_segment(self, meta: ArrayMeta) -> int:
        return 0 if meta.axis is None else len(self.groups) - 1

    def tail_chunk(self, meta: ArrayMeta, row_lo: int) -> tuple[int, int] | None:
        """(segment, chunk) of a partly filled chunk that an append at ``row_lo`` continues."""
        local = self._local_lo(meta, row_lo)
        return (self.last_segment(meta), local // meta.chunk_rows) if local % meta.chunk_rows else None

    def trim(self, meta: ArrayMeta) -> None:
        seg = self.last_segment(meta)
        self.groups[seg].trim(meta, self.segments.local_count(seg, meta.n_rows, meta.axis))

    # -- read --------------------------------------------------------------------------------
    def array(self, name: str, seg: int = 0):
        return self.groups[seg].array(name)

    def read_span(self, meta: ArrayMeta, lo: int, hi: int) -> np.ndarray:
        """Global rows ``[lo, hi)`` in storage dtype. Caller guarantees ``hi <= meta.n_rows``."""
        parts = self.segments.spans(lo, hi, meta.axis)
        if len(parts) == 1:
            p = parts[0]
            return self.groups[p.seg].read_span(meta, p.lo, p.hi)
        out = np.empty((hi - lo, meta.width), dtype=meta.np_dtype)
        for p in parts:
            out[p.out : p.out + p.hi - p.lo] = self.groups[p.seg].read_span(meta, p.lo, p.hi)
        return out

    def gather(self, meta: ArrayMeta, rows: np.ndarray) -> np.ndarray:
        """Global rows in any order (repeats allowed), each chunk visited once, in storage dtype."""
        if len(self.groups) == 1 or meta.axis is None:
            return self.groups[0].gather(meta, rows)
        seg = self.segments.locate(rows, meta.axis)
        starts = self.segments.starts(meta.axis)
        out = np.empty((len(rows), meta.width), dtype=meta.np_dtype)
        for k in np.unique(seg).tolist():
            pos = np.flatnonzero(seg == k)
            out[pos] = self.groups[k].gather(meta, rows[pos] - starts[k])
        return out

    def chunk_plan(self, meta: ArrayMeta, rows: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """See :meth:`SegmentMap.chunk_plan`."""
        return self.segments.chunk_plan(rows, meta.chunk_rows, meta.axis)

    def local_rows(self, meta: ArrayMeta, seg: int) -> int:
        return self.segments.local_count(seg, meta.n_rows, meta.axis)

    def segments_of(self, meta: ArrayMeta) -> range:
        return range(1) if meta.axis is None else range(len(self.groups))

    def chunk_crc(self, meta: ArrayMeta, seg: int, chunk: int, n_rows: int) -> int:
        """CRC-32 of the first ``n_rows`` decoded rows of a segment's chunk (for verify)."""
        start = chunk * meta.chunk_rows
        block = self.groups[seg].read_span(meta, start, start + n_rows)
        return crc32(np.ascontiguousarray(block).data)

    def exists(self, name: str, seg: int = 0) -> bool:
        return self.groups[seg].exists(name)
