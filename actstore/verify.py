"""Check a store against itself: every chunk against its checksum, every catalog row against the arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

from actstore.errors import RemoteError
from actstore.layout import n_chunks


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
    """Recompute every chunk's CRC-32 over its committed rows and cross-check the catalog."""
    rep = VerifyReport()
    con = store.con
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
    for k in range(n_chunks(local_n, meta.chunk_rows)):
        covered = min(meta.chunk_rows, local_n - k * meta.chunk_rows)
        rec = sums.get(k)
        if rec is None or rec[0] != covered:
            rep.problems.append(f"{where}: chunk {k} has no checksum for its {covered} rows")
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
