"""Copying stores: ``publish`` a local store to a directory or bucket, ``pull`` part of one back.

Only what the catalog commits is copied: the catalog, every Zarr group and array ``zarr.json``,
and the chunk files that hold committed rows (never rows a crashed writer left past the end).
Both check the copy against the chunk checksums before calling it done, and neither leaves a
half-made store where a reader could open it: a local destination is assembled in a hidden
sibling directory and renamed into place; on a bucket the catalog is uploaded last, so the store
appears only once its arrays are there.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from actstore import catalog as cat
from actstore import remote
from actstore.errors import IntegrityError, UsageError, WriterBusyError
from actstore.layout import n_chunks
from actstore.progress import Progress
from actstore.site import POOLS, SITE_KINDS


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What a publish or pull copied, and what the verification of the copy checked."""

    dest: str
    arrays: int
    files: int
    bytes: int
    chunks_verified: int
    unchanged: int = 0  # chunk files an earlier publish at dest already held (not copied again)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which arrays ``pull`` copies: None = all. Weights follow the layers (and unembed etc. always)."""

    layers: tuple[int, ...] | None = None
    sites: tuple[str, ...] | None = None
    pools: tuple[str, ...] | None = None
    weights: bool = True

    def __post_init__(self) -> None:
        for s in self.sites or ():
            if s not in SITE_KINDS:
                raise UsageError(f"unknown site {s!r} in --sites; use one of {', '.join(SITE_KINDS)}")
        for p in self.pools or ():
            if p not in POOLS:
                raise UsageError(f"unknown pool {p!r} in --pools; use one of {', '.join(POOLS)}")

    def keeps(self, meta: Any) -> bool:
        if meta.kind != "activation":
            return self.weights and (meta.layer is None or self.layers is None or meta.layer in self.layers)
        return ((self.layers is None or meta.layer in self.layers)
                and (self.sites is None or meta.site in self.sites)
                and (self.pools is None or meta.pool in self.pools))


def array_files(store: Any, metas: list) -> list[str]:
    """Paths (relative to the store root) of the group/array metadata and committed chunk files."""
    io = store.arrays_io
    out: dict[str, None] = {}
    for seg in store.segments.segments:
        out[f"{seg.path}/zarr.json"] = None
    for meta in metas:
        for k in io.segments_of(meta):
            seg = store.segments.segments[k]
            parts = meta.name.split("/")
            for i in range(1, len(parts) + 1):  # the implicit parent groups, then the array
                out[f"{seg.path}/{'/'.join(parts[:i])}/zarr.json"] = None
            group = io.groups[k]
            for c in range(n_chunks(io.local_rows(meta, k), meta.chunk_rows)):
                out[f"{seg.path}/{group.chunk_key(meta, c)}"] = None  # sharded: one file, many chunks
    return list(out)


def chunk_files(store: Any, metas: list) -> dict[str, tuple]:
    """Committed chunk files (paths relative to the store root) -> what they hold: the array's
    layout and the (chunk, rows, CRC-32) of every chunk in the file (sharded: several)."""
    io = store.arrays_io
    seg_ids = {m.name: io.segments_of(m) for m in metas}
    crcs: dict[tuple[str, int], list[tuple[int, int, int]]] = {}
    for name, seg, chunk, n, crc in store.con.execute(
            "SELECT name, segment_id, chunk, n_rows, crc32 FROM chunk_checksums ORDER BY name, segment_id, chunk"
    ).fetchall():
        crcs.setdefault((name, seg), []).append((chunk, n, crc))
    out: dict[str, list] = {}
    for meta in metas:
        layout = (meta.kind, meta.width, meta.dtype, meta.chunk_rows, meta.shard_chunks, meta.codec)
        for k in seg_ids[meta.name]:
            seg = store.segments.segments[k]
            group = io.groups[k]
            n = n_chunks(io.local_rows(meta, k), meta.chunk_rows)
            for chunk, rows, crc in crcs.get((meta.name, k), []):
                if chunk < n:
                    out.setdefault(f"{seg.path}/{group.chunk_key(meta, chunk)}", [layout]).append((chunk, rows, crc))
    return {rel: tuple(v) for rel, v in out.items()}


def _already_there(st: Any, metas: list, dest: str) -> set[str]:
    """Chunk files that an earlier publish at ``dest`` holds with the same committed content, by
    its catalog's checksums (the copy is verified afterwards, so a damaged one is caught)."""
    import actstore

    where: str | Path = dest if remote.is_url(dest) else Path(dest).expanduser()
    if isinstance(where, Path) and not (where / cat.CATALOG).exists():
        return set()
    try:
        old = actstore.open(where)
    except Exception:  # noqa: BLE001 - no store there yet, or an odd one: copy everything
        return set()
    try:
        theirs = chunk_files(old, old.arrays())
    finally:
        old.close()
    mine = chunk_files(st, metas)
    return {rel for rel, held in mine.items() if theirs.get(rel) == held}


def _staging(dest: Path, what: str, replace_store: bool) -> Path:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        if not (replace_store and (dest / cat.CATALOG).exists() and not cat.writer_active(dest)):
            allowed = "an empty directory or an earlier publish" if replace_store else "an empty directory"
            raise UsageError(f"{dest} exists and is not {allowed}; choose another destination")
    tmp = dest.parent / f".{dest.name}.{what}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def _swap_in(tmp: Path, dest: Path) -> None:
    """Put the finished copy at ``dest``; an earlier copy there is replaced (a rename each)."""
    old = None
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
    os.replace(tmp, dest)
    cat.fsync_path(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


#: Files per fsspec call when progress is shown: enough for a remote filesystem's concurrency, few
#: enough for the line to move.
PROGRESS_BATCH = 64


def _batches(rels: list[str], show: bool) -> list[list[str]]:
    if not show:
        return [rels] if rels else []
    return [rels[i:i + PROGRESS_BATCH] for i in range(0, len(rels), PROGRESS_BATCH)]


def _fetch(fs: Any, base: str, rels: list[str], dest: Path, what: str, progress: bool = False,
           label: str = "copy") -> int:
    """Copy ``base/rel`` from fsspec ``fs`` to ``dest/rel`` for every rel; returns bytes copied."""
    for d in {os.path.dirname(r) for r in rels}:
        (dest / d).mkdir(parents=True, exist_ok=True)
    total = 0
    with Progress(label, len(rels), unit="files", quiet=not progress) as bar:
        for part in _batches(rels, progress):
            src = [remote.join(base, r) for r in part]
            dst = [str(dest / r) for r in part]
            remote.call(what, lambda: fs.get(src, dst))  # noqa: B023 - called at once, in this iteration
            got = sum((dest / r).stat().st_size for r in part)
            total += got
            bar.update(len(part), nbytes=got)
    return total


def verify_progress(store: Any, label: str, show: bool) -> tuple[Progress, Any]:
    """A bytes progress line for ``actstore.verify.verify(store, progress=...)`` (which reports each
    array once it is checked): the line and the callback to pass."""
    sizes = {m.name: m.n_rows * m.row_bytes for m in store.arrays()}
    bar = Progress(label, sum(sizes.values()), unit="bytes", quiet=not show)
    return bar, lambda name: bar.update(sizes.get(name, 0), note=name)


def _verify_copy(where: str | Path, progress: bool = False, label: str = "verify") -> int:
    import actstore
    from actstore.verify import verify

    with actstore.open(where) as st:
        bar, step = verify_progress(st, label, progress)
        with bar:
            rep = verify(st, progress=step)
    if not rep.ok:
        raise IntegrityError(f"the copy at {where} failed verification: {rep.problems[0]}"
                             + (f" (and {len(rep.problems) - 1} more)" if len(rep.problems) > 1 else ""))
    return rep.chunks


def publish(src: str | Path, dest: str, full: bool = False, progress: bool = False) -> CopyReport:
    """Copy a local store to ``dest`` (a directory or a writable fsspec URL), then verify the copy.

    Publishing again to the same ``dest`` copies only what changed: chunk files whose committed
    rows and checksums equal those of the earlier publish are kept (hard-linked into a local
    copy, not uploaded again to a bucket). ``full=True`` copies everything. ``progress=True`` draws
    progress lines (copy, then verification) on stderr when it is a terminal.
    """
    import actstore

    root = Path(src).expanduser()
    if remote.is_url(str(src)):
        raise UsageError(f"publish copies a local store; {src} is a URL (use 'actstore pull' to copy one down)")
    if root.is_dir() and cat.writer_active(root):
        raise WriterBusyError(f"a writer holds {root} (or crashed leaving unpublished work); "
                              "let it finish (or open the store for writing once to recover), then publish")
    with actstore.open(root) as st:
        metas = st.arrays()
        rels = array_files(st, metas)
        snapshot = st.catalog_file
        same = set() if full else _already_there(st, metas, dest)
        todo = [r for r in rels if r not in same]
        if remote.is_url(dest):
            nbytes = _upload(root, snapshot, todo, dest, progress)
        else:
            out = Path(dest).expanduser()
            tmp = _staging(out, "publish", replace_store=True)
            try:
                nbytes = _fetch(_local_fs(), str(root), todo, tmp, f"copying {root}", progress, "publish: copy")
                for r in sorted(same):
                    (tmp / r).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        os.link(out / r, tmp / r)  # the earlier copy's file: same bytes, no copy
                    except OSError:
                        shutil.copyfile(out / r, tmp / r)
                shutil.copyfile(snapshot, tmp / cat.CATALOG)
                nbytes += (tmp / cat.CATALOG).stat().st_size
                checked = _verify_copy(tmp, progress, "publish: verify")
                _swap_in(tmp, out)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            return CopyReport(str(out), len(metas), len(rels) + 1, nbytes, checked, len(same))
    return CopyReport(dest, len(metas), len(rels) + 1, nbytes, _verify_copy(dest, progress, "publish: verify"),
                      len(same))


def _local_fs() -> Any:
    import fsspec

    return fsspec.filesystem("file")


def _upload(root: Path, snapshot: Path, rels: list[str], dest: str, progress: bool = False) -> int:
    fs, base = remote.filesystem(dest)
    try:
        with Progress("publish: upload", len(rels), unit="files", quiet=not progress) as bar:
            for part in _batches(rels, progress):
                src = [str(root / r) for r in part]
                dst = [remote.join(base, r) for r in part]
                remote.call(f"uploading to {dest}", lambda: fs.put(src, dst))  # noqa: B023 - called at once
                bar.update(len(part), nbytes=sum((root / r).stat().st_size for r in part))
        # the catalog last: a reader finds a store only once every chunk it names is there
        remote.call(f"uploading to {dest}", lambda: fs.put_file(str(snapshot), remote.join(base, cat.CATALOG)))
    except NotImplementedError:
        raise UsageError(f"cannot write to {dest}: its protocol is read-only here; publish to a directory "
                         "and serve that, or to a bucket (s3://, gs://)") from None
    return sum((root / r).stat().st_size for r in rels) + snapshot.stat().st_size


def pull(src: str | Path, dest: str | Path, selection: Selection = Selection(), progress: bool = False) -> CopyReport:
    """A local store at ``dest`` holding the arrays ``selection`` keeps from ``src`` (URL or path).

    The catalog comes whole (SQL sees every record and token); the ``arrays`` and
    ``chunk_checksums`` rows of the arrays left behind are removed from the copy, and a ``runs``
    row records the pull. The copy is verified before it appears at ``dest``. ``progress=True``
    draws progress lines (download, then verification) on stderr when it is a terminal.
    """
    import actstore

    out = Path(dest).expanduser()
    if remote.is_url(str(dest)):
        raise UsageError(f"pull writes a local directory; {dest} is a URL (use 'actstore publish' to upload)")
    with actstore.open(src) as st:
        metas = [m for m in st.arrays() if selection.keeps(m)]
        if not any(m.kind == "activation" for m in metas) and any(m.kind == "activation" for m in st.arrays()):
            have = sorted({f"{m.pool}/{m.site}.{m.layer}" for m in st.arrays() if m.kind == "activation"})
            raise UsageError(f"no array of {src} matches the selection; it has: {', '.join(have[:10])}"
                             + (" ..." if len(have) > 10 else ""))
        rels = array_files(st, metas)
        if st.is_remote:
            fs, base = remote.filesystem(str(st.root))
        else:
            fs, base = _local_fs(), str(st.root)
        tmp = _staging(out, "pull", replace_store=False)
        try:
            nbytes = _fetch(fs, base, rels, tmp, f"downloading from {src}", progress, "pull: download")
            shutil.copyfile(st.catalog_file, tmp / cat.CATALOG)
            _prune(tmp / cat.CATALOG, [m.name for m in metas], str(src), selection)
            nbytes += (tmp / cat.CATALOG).stat().st_size
            checked = _verify_copy(tmp, progress, "pull: verify")
            _swap_in(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return CopyReport(str(out), len(metas), len(rels) + 1, nbytes, checked)


def _prune(db: Path, keep: list[str], src: str, selection: Selection) -> None:
    con = duckdb.connect(str(db))
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE TEMP TABLE _keep AS SELECT unnest(?::VARCHAR[]) AS name", [keep])
        con.execute("DELETE FROM chunk_checksums WHERE name NOT IN (SELECT name FROM _keep)")
        con.execute("DELETE FROM arrays WHERE name NOT IN (SELECT name FROM _keep)")
        run_id = con.execute("SELECT coalesce(max(run_id) + 1, 1) FROM runs").fetchall()[0][0]
        now = datetime.now(UTC).replace(tzinfo=None)
        params = {"source": src, "layers": selection.layers, "sites": selection.sites, "pools": selection.pools,
                  "weights": selection.weights, "arrays": len(keep)}
        from actstore.store import versions

        con.execute("INSERT INTO runs VALUES (?, 'pull', ?, ?, 'done', ?, ?, NULL)",
                    [run_id, json.dumps(params), json.dumps(versions()), now, now])
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    finally:
        con.close()
