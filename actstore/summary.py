"""A plain-dict summary of a store (for ``actstore info`` and notebooks)."""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import asdict


def _compact_layers(layers: list[int]) -> str:
    layers = sorted(layers)
    parts, start = [], None
    for i, x in enumerate(layers):
        if start is None:
            start = x
        if i == len(layers) - 1 or layers[i + 1] != x + 1:
            parts.append(str(start) if start == x else f"{start}-{x}")
            start = None
    return ",".join(parts)


RUNS_SHOWN = 8  # the latest runs listed; "n_runs" says how many there are


def _allocated_bytes(root) -> int:
    """Bytes the files under ``root`` occupy on disk, as ``du`` counts them: allocated blocks (a chunk
    file written at an offset has holes, so its length overstates it), directories included, each hard-linked
    file once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in (".", *files):  # directories take blocks too
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            blocks = getattr(st, "st_blocks", None)
            total += blocks * 512 if blocks is not None else st.st_size
    return total


def summarize(store) -> dict:
    con = store.con
    version = con.execute("SELECT value FROM meta WHERE key = 'format_version'").fetchall()[0][0]
    counts = {}
    for t in ("prompts", "responses", "labels", "records"):
        counts[t] = con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
    counts["tokens"] = store.n_rows
    has_vectors = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'vectors' "
        "AND table_catalog = current_database()").fetchall()[0][0]
    counts["vectors"] = con.execute("SELECT count(*) FROM vectors").fetchall()[0][0] if has_vectors else 0
    counts["neuron_scores"] = con.execute("SELECT count(*) FROM neuron_scores").fetchall()[0][0]
    groups: dict = defaultdict(lambda: {"layers": [], "bytes": 0})
    for m in store.arrays():
        what = f"{m.pool}/{m.site}" if m.kind == "activation" else f"weight/{m.site}"
        g = groups[what]
        g["layers"].append(m.layer if m.layer is not None else -1)
        g["bytes"] += m.n_rows * m.width * m.np_dtype.itemsize
        g.update(width=m.width, dtype=m.logical_dtype, codec=m.codec)
    arrays = [{"what": k, **{**v, "layers": _compact_layers([x for x in v["layers"] if x >= 0]) or "-"}}
              for k, v in sorted(groups.items())]
    runs = con.execute(f"SELECT run_id, kind, status, started_at FROM runs ORDER BY run_id DESC LIMIT {RUNS_SHOWN}"
                       ).fetchall()
    n_runs = con.execute("SELECT count(*) FROM runs").fetchall()[0][0]
    if getattr(store, "is_remote", False):
        # No listing over HTTP: count the catalog and the committed array bytes instead.
        disk = os.path.getsize(store.catalog_file) + sum(m.n_rows * m.width * m.np_dtype.itemsize
                                                     for m in store.arrays())
    else:
        disk = _allocated_bytes(store.root)
    model = store.model
    return {
        "path": str(store.root),
        "remote": bool(getattr(store, "is_remote", False)),
        "segments": len(store.segments),
        "format_version": int(version),
        "disk_bytes": disk,
        "model": {k: v for k, v in asdict(model).items() if k != "config"} if model else None,
        "counts": counts,
        "arrays": arrays,
        "runs": [dict(zip(("run_id", "kind", "status", "started_at"), r)) for r in runs],
        "n_runs": int(n_runs),
    }
