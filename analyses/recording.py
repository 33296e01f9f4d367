"""What every ``run(store, spec)`` shares: reading and writing catalog vectors, recording a run,
checking layers, streaming a query's rows. The only module of the analyses that writes to a store.

An analysis computes on whatever store it is given (read-only is the normal case) and opens the
store writable only for the short moment of recording: a writer holds the store's lock, and an
analysis that took it for minutes would block an ingest for nothing. Everything is computed and
checked before the first write, so bad input leaves the store unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

import actstore
from actstore.errors import InputError
from actstore.store import Store

#: Columns of ``vectors`` besides ``vector_id``, ``run_id`` and ``vec`` (see Store.set_model).
VECTOR_COLUMNS = ("name", "value", "condition", "component", "site", "layer", "pool", "language",
                  "n_pos", "n_neg", "norm", "meta")


@contextmanager
def writable(store: Store) -> Iterator[Store]:
    """The store itself if writable, else a writer opened on its directory for the duration."""
    if not store.read_only:
        yield store
        return
    writer = actstore.open(store.root, read_only=False)
    try:
        yield writer
    finally:
        writer.close()
        store.refresh()  # the caller's reader now sees what was recorded


@dataclass
class Recorder:
    """Rows an analysis wants to record, written together by :func:`record`."""

    vectors: list[dict[str, Any]] = field(default_factory=list)
    vecs: list[np.ndarray] = field(default_factory=list)
    neuron_rows: dict[str, np.ndarray] | None = None

    def add_vector(self, vec: np.ndarray, **cols: Any) -> None:
        row = {c: cols.get(c) for c in VECTOR_COLUMNS}
        row["norm"] = float(np.linalg.norm(vec))
        if isinstance(row["meta"], dict):
            row["meta"] = json.dumps(row["meta"])
        self.vectors.append(row)
        self.vecs.append(np.asarray(vec, dtype=np.float32))


def record(store: Store, kind: str, params: dict[str, Any], rec: Recorder,
           summary: dict[str, Any] | None = None) -> tuple[int, list[int]]:
    """One ``runs`` row plus the recorder's vectors and neuron rows. Returns (run_id, vector ids)."""
    with writable(store) as w:
        run_id = w.begin_run(kind, params)
        try:
            ids = _insert_vectors(w, run_id, rec)
            if rec.neuron_rows is not None and len(rec.neuron_rows["neuron"]):
                n = len(rec.neuron_rows["neuron"])
                cols = {k: (v.tolist() if v.dtype == object else v) for k, v in rec.neuron_rows.items()}
                w.insert("neuron_scores", {"run_id": np.full(n, run_id, dtype=np.int32), **cols})
        except BaseException as err:
            w.end_run(run_id, "failed", str(err).splitlines()[0] if str(err) else type(err).__name__)
            raise
        w.end_run(run_id, "done", json.dumps(summary, default=float) if summary else None)
    return run_id, ids


def _insert_vectors(w: Store, run_id: int, rec: Recorder) -> list[int]:
    if not rec.vectors:
        return []
    start = int(w.sql("SELECT coalesce(max(vector_id) + 1, 1) FROM vectors").fetchall()[0][0])
    ids = list(range(start, start + len(rec.vectors)))
    d = rec.vecs[0].shape[0]
    flat = pa.array(np.concatenate(rec.vecs).astype(np.float32))
    cols: dict[str, Any] = {"vector_id": pa.array(ids, pa.int32()), "run_id": pa.array([run_id] * len(ids), pa.int32())}
    types = {"layer": pa.int32(), "n_pos": pa.int32(), "n_neg": pa.int32(), "norm": pa.float64()}
    for c in VECTOR_COLUMNS:
        cols[c] = pa.array([r[c] for r in rec.vectors], types.get(c, pa.string()))
    cols["vec"] = pa.FixedSizeListArray.from_arrays(flat, d)
    w.insert("vectors", pa.table(cols))
    return ids


def need_model(store: Store):
    model = store.model
    if model is None:
        raise InputError(f"store {store.root} has no model yet; ingest activations into it first")
    return model


def check_layers(store: Store, layers: Sequence[int] | None, site: str, pool: str) -> list[int]:
    """Requested layers (None = every layer stored for ``site``/``pool``), each checked."""
    n_layers = need_model(store).n_layers
    stored = sorted(int(m.layer) for m in store.arrays()
                    if m.kind == "activation" and m.site == site and m.pool == pool and m.layer is not None)
    if layers is None:
        if not stored:
            raise InputError(f"the store has no {site} arrays pooled as {pool}; "
                             f"ingest them, or choose another --tokens/--site")
        return stored
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise InputError(f"layer {layer} out of range; this model has layers 0-{n_layers - 1}")
        if layer not in stored:
            raise InputError(f"layer {layer} of {site} is not stored pooled as {pool}; "
                             f"stored layers: {', '.join(map(str, stored)) or 'none'}")
    return list(layers)


def check_vector_width(store: Store, site: str, layer: int, pool: str, recording: bool) -> None:
    """The ``vectors`` table holds d_model-wide vectors: refuse early to record anything wider."""
    width = store.array_meta(site, layer, pool).width
    d_model = need_model(store).d_model
    if recording and width != d_model:
        raise InputError(f"{site} is {width} wide but the vectors table holds d_model = {d_model} vectors; "
                         "pass --no-record to compute them without storing")


def load_vectors(store: Store, where: str, params: Sequence[Any] = ()) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Vectors matching a WHERE clause: (row dicts without vec, ``[n, d]`` float32), by vector_id."""
    cols = ", ".join(("vector_id", "run_id") + VECTOR_COLUMNS)
    tbl = store.sql(f"SELECT {cols}, vec FROM vectors WHERE {where} ORDER BY vector_id", list(params) or None).arrow()
    if hasattr(tbl, "read_all"):  # DuckDB >= 1.4 hands back a RecordBatchReader
        tbl = tbl.read_all()
    n = tbl.num_rows
    d = need_model(store).d_model
    vec = tbl.column("vec").combine_chunks()
    arr = vec.flatten().to_numpy(zero_copy_only=False).reshape(n, d) if n else np.zeros((0, d), np.float32)
    rows = tbl.drop(["vec"]).to_pylist()
    return rows, arr.astype(np.float32, copy=False)


def sql_batches(store: Store, query: str, rows: int = 1 << 16) -> Iterator[pa.RecordBatch]:
    """A query's result as Arrow record batches of about ``rows`` rows, streamed from DuckDB, so a
    result with a row per token is never held whole. Run no other query on the store while
    iterating (the stream shares its connection)."""
    reader = store.sql(query).to_arrow_reader(rows)
    try:
        yield from reader
    finally:
        reader.close()


def latest_run(store: Store, kind: str, where: str = "TRUE") -> int | None:
    row = store.sql(f"SELECT max(run_id) FROM runs WHERE kind = ? AND status = 'done' AND {where}", [kind]).fetchall()[0]
    return None if row[0] is None else int(row[0])


def run_params(store: Store, run_id: int) -> tuple[str, dict[str, Any]]:
    rows = store.sql("SELECT kind, params FROM runs WHERE run_id = ?", [run_id]).fetchall()
    row = rows[0] if rows else None
    if row is None:
        raise InputError(f"no run {run_id} in this store; list runs with: actstore sql STORE \"SELECT * FROM runs\"")
    return row[0], json.loads(row[1] or "{}")


def parse_frac(text: str | float) -> float:
    """``"1%"`` -> 0.01, ``"0.01"`` -> 0.01."""
    if isinstance(text, (int, float)):
        return float(text)
    t = text.strip()
    try:
        return float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise InputError(f"bad fraction {text!r}; write e.g. 1% or 0.01") from None
