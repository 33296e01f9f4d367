"""Check a store against itself: every catalog block readable, every chunk file of the size the
format allows and matching its checksum, every catalog row against the arrays."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from actstore.arrays import LocalGroup
from actstore.catalog import damage
from actstore.errors import RemoteError
from actstore.layout import n_chunks

#: Zarr v3 sharding (``index_location = end``): per inner chunk a little-endian (offset, nbytes)
#: pair of uint64, then a CRC-32C of the index; an absent inner chunk is (2^64-1, 2^64-1).
_INDEX_ENTRY, _INDEX_CRC, _ABSENT = 16, 4, 2**64 - 1


@dataclass
class VerifyReport:
    arrays: int = 0
    chunks: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(store, progress=None) -> VerifyReport:
    """Read every catalog table through, check every chunk file's size against the format and
    recompute every chunk's CRC-32 over its committed rows, and cross-check the catalog."""
    rep = VerifyReport()
    con = store.con
    if not _check_catalog(rep, con):
        return rep  # everything below reads the catalog
    n_rows, n_rec = store.n_rows, store.n_records

    # Catalog consistency: batches tile the row and record axes; records and tokens stay inside.
    checks = [
        ("tokens", "SELECT count(*) FROM tokens", n_rows),
        ("records", "SELECT count(*) FROM records", n_rec),
    ]
    for what, q, want in checks:
        got = con.execute(q).fetchall()[0][0]
        if got != want:
            rep.problems.append(f"catalog: {what} has {got} rows but the batches account for {want}")
    bad = con.execute(
        "SELECT record_id, row_start, n_tokens FROM records WHERE row_start < 0 OR row_start + n_tokens > ? "
        "ORDER BY record_id LIMIT 3", [n_rows]).fetchall()
    for rid, rs, nt in bad:
        rep.problems.append(f"catalog: record {rid} points at rows {rs}-{rs + nt - 1}, past the {n_rows} stored rows")
    bad = con.execute('SELECT "row" FROM tokens WHERE "row" < 0 OR "row" >= ? LIMIT 3', [n_rows]).fetchall()
    for (row,) in bad:
        rep.problems.append(f"catalog: token row {row} is past the {n_rows} stored rows")
    bad = con.execute("SELECT record_id FROM records WHERE record_id < 0 OR record_id >= ? LIMIT 3", [n_rec]).fetchall()
    for (rid,) in bad:
        rep.problems.append(f"catalog: record id {rid} is past the {n_rec} stored records")

    io = store.arrays_io
    for meta in store.arrays():
        rep.arrays += 1
        if meta.kind == "activation":
            want = n_rows if meta.pool == "token" else n_rec
            if meta.n_rows != want:
                rep.problems.append(f"{meta.name}: holds {meta.n_rows} rows, the catalog expects {want}")
        for seg in io.segments_of(meta):
            _check_segment(rep, con, io, meta, seg)
        if progress:
            progress(meta.name)
    return rep


def _check_catalog(rep: VerifyReport, con) -> bool:
    """Read every value of every catalog table: DuckDB checks each block's checksum as it reads
    it, and reads lazily, so damage in rows no command happened to touch is found here."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY 1").fetchall()]
    ok = True
    for t in tables:
        try:
            con.execute(f'SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM "{t}"').fetchall()
        except Exception as err:
            bad = damage(err)
            if bad is None:
                raise
            first = (str(err).strip().splitlines() or [""])[0]
            rep.problems.append(f"catalog: table {t} is damaged ({first}); restore catalog.duckdb from a copy "
                                "of the store or a backup")
            ok = False
    return ok


def _check_segment(rep: VerifyReport, con, io, meta, seg: int) -> None:
    where = meta.name if len(io.groups) == 1 else f"{meta.name} (segment {seg})"
    if not io.exists(meta.name, seg):
        rep.problems.append(f"{where}: array is missing from {io.segments.segments[seg].path}/")
        return
    local_n = io.local_rows(meta, seg)
    shape = io.array(meta.name, seg).shape
    if shape[0] < local_n or shape[1] != meta.width:
        rep.problems.append(f"{where}: Zarr shape {shape} cannot hold the catalog's {local_n}x{meta.width}")
        return
    sums = {c: (n, x) for c, n, x in con.execute(
        "SELECT chunk, n_rows, crc32 FROM chunk_checksums WHERE name = ? AND segment_id = ?",
        [meta.name, seg]).fetchall()}
    files = _ChunkFiles(io.groups[seg], meta)
    for k in range(n_chunks(local_n, meta.chunk_rows)):
        covered = min(meta.chunk_rows, local_n - k * meta.chunk_rows)
        rec = sums.get(k)
        if rec is None or rec[0] != covered:
            rep.problems.append(f"{where}: chunk {k} has no checksum for its {covered} rows")
            continue
        size_problem = files.problem(k)
        if size_problem:
            rep.problems.append(f"{where}: chunk {k} {size_problem}")
            continue
        try:
            crc = io.chunk_crc(meta, seg, k, covered)
        except RemoteError:
            raise  # the network, not the data: say so rather than blame every chunk
        except Exception as err:  # a damaged compressed chunk fails inside the codec
            rep.problems.append(f"{where}: chunk {k} unreadable ({err})")
            continue
        rep.chunks += 1
        rep.bytes += covered * meta.row_bytes
        if crc != rec[1]:
            rep.problems.append(f"{where}: chunk {k} does not match its checksum (damaged data)")


class _ChunkFiles:
    """The sizes the format allows for one array's chunk files (schema/FORMAT.md, "Chunk files"):

    - raw (uncompressed, unsharded): exactly ``chunk_rows * row_bytes``, the last chunk too;
    - compressed, unsharded: not empty (the codec checks the rest when the chunk is decoded);
    - sharded: at least the shard index, and every committed inner chunk's byte range present in
      the index and inside the file before it (``chunk_rows * row_bytes`` long when uncompressed).
    """

    def __init__(self, group, meta) -> None:
        self.group, self.meta = group, meta
        self.full = meta.chunk_rows * meta.row_bytes
        self.index_bytes = _INDEX_ENTRY * meta.shard_chunks + _INDEX_CRC
        self._shards: dict[int, tuple[str | None, list[tuple[int, int]] | None, int]] = {}

    def _size(self, key: str) -> int | None:
        """The file's size; -1 when it is missing; None when unknown (a server that does not say)."""
        if isinstance(self.group, LocalGroup):
            try:
                return (self.group.dir / key).stat().st_size
            except FileNotFoundError:
                return -1
        try:
            return self.group.file_size(key)
        except FileNotFoundError:
            return -1

    def _read(self, key: str, start: int, end: int) -> bytes:
        if isinstance(self.group, LocalGroup):
            with open(self.group.dir / key, "rb") as f:
                f.seek(start)
                return f.read(end - start)
        return self.group.read_range(key, start, end)

    def problem(self, chunk: int) -> str | None:
        """What is wrong with the file holding ``chunk``, as the end of a sentence, or None."""
        meta = self.meta
        key = self.group.chunk_key(meta, chunk)
        if meta.shard_chunks == 1:
            size = self._size(key)
            if size == -1:
                return f"is missing (no file {key})"
            if size is None:
                return None
            if meta.codec == "none" and size != self.full:
                return (f"file {key} is {size} bytes; a raw chunk is always {self.full} "
                        f"({meta.chunk_rows} rows x {meta.row_bytes} bytes): truncated or damaged")
            if size == 0:
                return f"file {key} is empty: truncated or damaged"
            return None
        shard = chunk // meta.shard_chunks
        if shard not in self._shards:
            self._shards[shard] = self._read_shard(key)
        whole, index, size = self._shards[shard]
        if whole is not None:
            return whole
        if index is None:
            return None
        offset, nbytes = index[chunk % meta.shard_chunks]
        if (offset, nbytes) == (_ABSENT, _ABSENT):
            return f"is absent from its shard file {key}"
        if offset + nbytes > size - self.index_bytes:
            return (f"lies at bytes {offset}-{offset + nbytes} of its shard file {key}, past the file's data "
                    f"({size - self.index_bytes} bytes before the index): truncated or damaged")
        if meta.codec == "none" and nbytes != self.full:
            return f"is {nbytes} bytes in its shard file {key}; uncompressed it must be {self.full}"
        return None

    def _read_shard(self, key: str) -> tuple[str | None, list[tuple[int, int]] | None, int]:
        """(problem of the whole file, its index entries, its size)."""
        size = self._size(key)
        if size == -1:
            return f"is missing (no shard file {key})", None, 0
        if size is None:
            return None, None, 0
        if size < self.index_bytes:
            return (f"shard file {key} is {size} bytes, shorter than its {self.index_bytes}-byte index: "
                    "truncated or damaged"), None, size
        raw = self._read(key, size - self.index_bytes, size - _INDEX_CRC)
        index = [struct.unpack_from("<QQ", raw, i * _INDEX_ENTRY) for i in range(self.meta.shard_chunks)]
        return None, index, size
