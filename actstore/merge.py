"""Joining the parts of a sharded ingest into one store without copying array data.

Each part becomes one or more *segments* of the merged store (see ``actstore.segments``): its
chunk files are hard-linked in (``mode="copy"`` copies them where links cannot cross
filesystems), and only the catalog is rewritten, with record, row, batch, run and vector ids
offset part by part. Merging the parts of ``--shard I/N`` workers in shard order therefore gives
the rows, in the order, that a single process would have written. The merged store is assembled
in a hidden sibling directory and renamed into place; the parts are left as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from actstore import catalog as cat
from actstore.errors import NotAStoreError, SchemaMismatchError, StoreNotFoundError, UsageError, WriterBusyError
from actstore.publish import array_files
from actstore.segments import segment_path
from actstore.shard import expand, order_parts

#: Tables whose ids are renumbered, and how: column -> which offset is added.
_OFFSETS: dict[str, dict[str, str]] = {
    "records": {"record_id": "rec", "row_start": "row", "batch_id": "batch"},
    "tokens": {"row": "row", "record_id": "rec"},
    "batches": {"batch_id": "batch", "record_start": "rec", "row_start": "row", "run_id": "run"},
    "runs": {"run_id": "run"},
    "vectors": {"vector_id": "vector", "run_id": "run"},
}
#: Written by the merge itself, or taken from the first part only.
_SPECIAL = {"meta", "migrations", "segments", "arrays", "chunk_checksums", "models", "vocab"}
#: Keyed by a name that every worker may have inserted (each worker inserts the prompts of its
#: share, maybe more): a key already merged is kept from the earlier part.
_SHARED = {"prompts", "responses", "labels"}
MODES = ("link", "copy")


@dataclass(frozen=True, slots=True)
class MergeReport:
    out: str
    parts: int
    segments: int
    records: int
    rows: int
    files_linked: int
    files_copied: int
    chunks_verified: int | None


@dataclass(frozen=True, slots=True)
class _Part:
    root: Path
    db: Path
    n_rows: int
    n_records: int
    n_batches: int
    max_run: int
    max_vector: int
    segments: tuple
    arrays: tuple


def _check_part(root: Path) -> None:
    if not root.exists():
        raise StoreNotFoundError(f"no store at {root}; pass the part stores to merge")
    if not (root / cat.CATALOG).exists():
        raise NotAStoreError(f"{root} is not a store (no {cat.CATALOG}); pass the part stores to merge")
    if cat.writer_active(root):
        raise WriterBusyError(f"a writer holds {root} (or crashed leaving unpublished work); let the worker "
                              "finish (or rerun it to recover), then merge")


def _load(st: Any) -> _Part:
    def scalar(q: str) -> int:
        return int(st.con.execute(q).fetchall()[0][0])

    has_vectors = scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'vectors' "
                         "AND table_catalog = current_database()")
    return _Part(Path(st.root), st.catalog_file, st.n_rows, st.n_records,
                 scalar("SELECT coalesce(max(batch_id) + 1, 0) FROM batches"),
                 scalar("SELECT coalesce(max(run_id), 0) FROM runs"),
                 scalar("SELECT coalesce(max(vector_id) + 1, 0) FROM vectors") if has_vectors else 0,
                 st.segments.segments, tuple(st.arrays()))


def _compatible(first: Any, other: Any, where: Path) -> None:
    a, b = first.model, other.model
    if b is not None and a is not None and (a.name, a.dtype, a.n_layers, a.d_model) != (b.name, b.dtype, b.n_layers, b.d_model):
        raise SchemaMismatchError(f"{where} holds {b.name} ({b.dtype}, {b.n_layers} layers) but the first part "
                                  f"holds {a.name} ({a.dtype}, {a.n_layers} layers); merge parts of one ingest")
    acts = {m.name: m for m in first.arrays() if m.kind == "activation"}
    mine = {m.name: m for m in other.arrays() if m.kind == "activation"}
    if set(acts) != set(mine):
        diff = sorted(set(acts) ^ set(mine))
        raise SchemaMismatchError(f"{where} stores different arrays than the first part ({diff[0]} ...); "
                                  "merge parts ingested with the same sites, layers and pools")
    layout = ("width", "dtype", "logical_dtype", "chunk_rows", "shard_chunks", "codec")
    for name, m in acts.items():
        if [getattr(m, f) for f in layout] != [getattr(mine[name], f) for f in layout]:
            raise SchemaMismatchError(f"{where}: array {name} is laid out differently than in the first part "
                                      "(width, dtype, chunking or codec); merge parts ingested with the same options")


def merge(parts: list[str | Path], out: str | Path, mode: str = "link", verify: bool = True) -> MergeReport:
    """Merge part stores into a new store at ``out`` (see module docstring)."""
    import actstore

    if mode not in MODES:
        raise UsageError(f"unknown merge mode {mode!r}; use one of {', '.join(MODES)}")
    # a STORE.parts directory stands for a whole sharded ingest: then every part must be there
    whole = any(Path(p).expanduser().is_dir() and not (Path(p).expanduser() / cat.CATALOG).exists() for p in parts)
    paths = order_parts(expand(parts), complete=whole)
    if not paths:
        raise UsageError("nothing to merge; pass the part stores (or their STORE.parts directory)")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out} already exists; merge into a new directory")
    for p in paths:
        _check_part(p)
    stores = [actstore.open(p) for p in paths]
    tmp = out.parent / f".{out.name}.merge-{os.getpid()}"
    try:
        for p, st in zip(paths[1:], stores[1:]):
            _compatible(stores[0], st, p)
        info = [_load(st) for st in stores]
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        n_segments = _write_catalog(tmp, info, stores[0], mode)
        linked, copied = _link_arrays(tmp, info, stores, mode)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for st in stores:
            st.close()
    checked = None
    try:
        if verify:
            from actstore.publish import _verify_copy

            checked = _verify_copy(tmp)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
        cat.fsync_path(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return MergeReport(str(out), len(paths), n_segments, sum(i.n_records for i in info),
                       sum(i.n_rows for i in info), linked, copied, checked)


def _offsets(info: list[_Part]) -> list[dict[str, int]]:
    out, acc = [], {"row": 0, "rec": 0, "batch": 0, "run": 0, "vector": 0, "seg": 0}
    for p in info:
        out.append(dict(acc))
        acc = {"row": acc["row"] + p.n_rows, "rec": acc["rec"] + p.n_records, "batch": acc["batch"] + p.n_batches,
               "run": acc["run"] + p.max_run, "vector": acc["vector"] + p.max_vector,
               "seg": acc["seg"] + len(p.segments)}
    return out


def _write_catalog(tmp: Path, info: list[_Part], first: Any, mode: str) -> int:
    session = cat.WriterSession(tmp, create=True)
    con = session.con
    try:
        for k, p in enumerate(info):
            con.execute(f"ATTACH {cat._sql_str(str(p.db))} AS p{k} (READ_ONLY)")
        con.execute(f"USE {cat.ALIAS}")
        offs = _offsets(info)
        con.execute("BEGIN TRANSACTION")
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'p0' AND schema_name = 'main' "
            "ORDER BY table_name").fetchall()]
        have = {r[0] for r in con.execute(
            f"SELECT table_name FROM duckdb_tables() WHERE database_name = '{cat.ALIAS}'").fetchall()}
        for t in tables:
            if t not in have:  # e.g. vectors, whose FLOAT[d_model] column is made with the model
                ddl = con.execute("SELECT sql FROM duckdb_tables() WHERE database_name = 'p0' AND table_name = ?",
                                  [t]).fetchall()[0][0]
                con.execute(ddl)
        con.execute("INSERT INTO models SELECT * FROM p0.models")
        con.execute("INSERT INTO vocab SELECT * FROM p0.vocab")
        for t in tables:
            if t in _SPECIAL:
                continue
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'p0' AND table_name = ? "
                "ORDER BY column_index", [t]).fetchall()]
            shifts = dict(_OFFSETS.get(t, {}))
            if "run_id" in cols:
                shifts.setdefault("run_id", "run")
            verb = "INSERT OR IGNORE" if t in _SHARED else "INSERT"
            for k in range(len(info)):
                exprs = [f'"{c}" + {offs[k][shifts[c]]}' if c in shifts else f'"{c}"' for c in cols]
                names = ", ".join(f'"{c}"' for c in cols)
                try:
                    con.execute(f"{verb} INTO {t} ({names}) SELECT {', '.join(exprs)} FROM p{k}.{t}")
                except duckdb.ConstraintException:
                    raise SchemaMismatchError(f"table {t}: rows of {info[k].root} repeat keys of an earlier part, "
                                              "and merge does not know how to renumber them") from None
        _arrays_and_segments(con, info, offs)
        run_id = offs[-1]["run"] + info[-1].max_run + 1
        params = {"parts": [str(p.root) for p in info], "mode": mode}
        from actstore.store import _now, versions

        con.execute("INSERT INTO runs VALUES (?, 'merge', ?, ?, 'done', ?, ?, NULL)",
                    [run_id, json.dumps(params), json.dumps(versions()), _now(), _now()])
        con.execute("COMMIT")
        for k in range(len(info)):
            con.execute(f"DETACH p{k}")
    except BaseException:
        session.close(publish=False)
        raise
    session.close()
    return offs[-1]["seg"] + len(info[-1].segments)


def _arrays_and_segments(con: Any, info: list[_Part], offs: list[dict[str, int]]) -> None:
    totals = {"token": sum(p.n_rows for p in info)}
    n_rec = sum(p.n_records for p in info)
    con.execute(f"""INSERT INTO arrays SELECT * REPLACE (
                      CASE WHEN kind <> 'activation' THEN n_rows WHEN pool = 'token' THEN {totals['token']}
                           ELSE {n_rec} END AS n_rows) FROM p0.arrays""")
    for k, p in enumerate(info):
        for seg in p.segments:
            new_id = offs[k]["seg"] + seg.segment_id
            con.execute("INSERT INTO segments VALUES (?, ?, ?, ?, ?)",
                        [new_id, segment_path(new_id), offs[k]["row"] + seg.row_start,
                         offs[k]["rec"] + seg.record_start,
                         str(p.root) + (f"#{seg.segment_id}" if len(p.segments) > 1 else "")])
        # weights come from the first part only (they live in segment 0)
        only = "" if k == 0 else "AND name IN (SELECT name FROM p0.arrays WHERE kind = 'activation')"
        con.execute(f"""INSERT INTO chunk_checksums (name, chunk, n_rows, crc32, segment_id)
                        SELECT name, chunk, n_rows, crc32, segment_id + {offs[k]['seg']} FROM p{k}.chunk_checksums
                        WHERE name IN (SELECT name FROM p0.arrays) {only}""")


def _link_arrays(tmp: Path, info: list[_Part], stores: list, mode: str) -> tuple[int, int]:
    """Hard-link (or copy) each part's committed chunk files into its segments; copy metadata."""
    linked = copied = 0
    seg_base = 0
    for k, (p, st) in enumerate(zip(info, stores)):
        metas = [m for m in st.arrays() if m.kind == "activation" or k == 0]
        for rel in array_files(st, metas):
            old = next(s for s in p.segments if rel.startswith(s.path + "/"))
            dst = tmp / segment_path(seg_base + old.segment_id) / rel[len(old.path) + 1:]
            dst.parent.mkdir(parents=True, exist_ok=True)
            src = p.root / rel
            if rel.endswith("zarr.json") or mode == "copy":
                shutil.copyfile(src, dst)  # metadata is rewritten on resize: never share it
                copied += 1
                continue
            try:
                os.link(src, dst)
            except OSError as err:
                raise UsageError(f"cannot hard-link {src} into {tmp.parent} ({err.strerror}); put --out on the "
                                 "same filesystem as the parts, or pass --copy") from None
            linked += 1
        seg_base += len(p.segments)
    return linked, copied

