"""``actstore analyze top-examples``: the token contexts where a neuron or a vector is highest.

Streams the per-token array chunk by chunk (``store.blocks``) and keeps only the running top k;
the token rows to read (all, or ``where``'s, streamed from the catalog) come in batches of
:data:`ROW_BATCH`, so memory is one chunk, one row batch and k rows whatever the store size. A
neuron ``L:I`` reads column I of the per-token ``mlp_act`` at layer L; a vector reads its own site
and layer (``resid_post``) and scores each token by the dot product with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses.recording import Recorder, load_vectors, record, sql_batches

_NEURON_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")
#: Token rows per batch of the row index. A batch costs about 150 bytes a row (measured: the ids
#: and ``store.blocks``' chunk plan over them), so 256k rows are ~40 MB; a batch spans many chunks.
ROW_BATCH = 1 << 18


@dataclass(frozen=True)
class TopExamplesSpec:
    """Exactly one of ``neuron`` ("L:I" or (L, I)) and ``vector_id``. ``where``: a SQL condition on
    the columns of ``tokens_info`` (e.g. ``role = 'response' AND language = 'en'``)."""

    neuron: tuple[int, int] | str | None = None
    vector_id: int | None = None
    k: int = 20
    where: str | None = None
    window: int = 5
    record: bool = True

    def __post_init__(self) -> None:
        if (self.neuron is None) == (self.vector_id is None):
            raise InputError("give exactly one of --neuron L:I and --vector VECTOR_ID")
        if isinstance(self.neuron, str):
            m = _NEURON_RE.match(self.neuron)
            if not m:
                raise InputError(f"bad --neuron {self.neuron!r}; write LAYER:INDEX, e.g. 14:2031")
            object.__setattr__(self, "neuron", (int(m[1]), int(m[2])))
        if not 1 <= int(self.k) <= 10_000:
            raise InputError(f"--k must be between 1 and 10000, got {self.k}")
        if not 0 <= int(self.window) <= 100:
            raise InputError(f"--window must be between 0 and 100 tokens, got {self.window}")


@dataclass(frozen=True)
class TopExamplesResult:
    what: str
    rows: np.ndarray  # [k] global token rows, best first
    scores: np.ndarray  # [k]
    examples: list[dict]  # per row: score, token, context and its record's prompt metadata
    run_id: int | None = None

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.examples)


def top_k_stream(blocks, k: int, score) -> tuple[np.ndarray, np.ndarray]:
    """Running top ``k`` of ``score(block) -> [m]`` over ``(rows, block)`` pairs: (rows, scores), best first."""
    best_rows = np.zeros(0, dtype=np.int64)
    best = np.zeros(0, dtype=np.float64)
    for rows, block in blocks:
        s = np.asarray(score(block), dtype=np.float64)
        rows_all = np.concatenate([best_rows, rows])
        s_all = np.concatenate([best, s])
        if len(s_all) > k:
            keep = np.argpartition(-s_all, k - 1)[:k]
            rows_all, s_all = rows_all[keep], s_all[keep]
        best_rows, best = rows_all, s_all
    order = np.lexsort((best_rows, -best))  # ties by row: the same answer on every run
    return best_rows[order], best[order]


def _contexts(store: Store, rows: np.ndarray, window: int) -> list[dict]:
    if not len(rows):
        return []
    values = ", ".join(f"({int(r)}, {i})" for i, r in enumerate(rows))
    hits = store.sql(
        f"""WITH q(hit_row, rank) AS (VALUES {values})
        SELECT q.rank, t.record_id, t.position, t.token_text, t.role, t.prompt_id, t.response_id,
               t.condition, t.target_value, t.language
        FROM q JOIN tokens_info t ON t."row" = q.hit_row ORDER BY q.rank""").fetchall()
    around = store.sql(
        f"""WITH q(hit_row, rank) AS (VALUES {values}),
        h AS (SELECT q.rank, t.record_id, t.position FROM q JOIN tokens t ON t."row" = q.hit_row)
        SELECT h.rank, w.position - h.position AS off, coalesce(v.text, '#' || w.token_id) AS text
        FROM h JOIN tokens w ON w.record_id = h.record_id AND w.position BETWEEN h.position - {window} AND h.position + {window}
        LEFT JOIN vocab v ON v.token_id = w.token_id ORDER BY h.rank, off""").fetchall()
    ctx: dict[int, list[str]] = {}
    for rank, off, text in around:
        ctx.setdefault(rank, []).append(f"[[{text}]]" if off == 0 else str(text))
    out = []
    for rank, rec, pos, tok, role, pid, rid, cond, target, lang in hits:
        out.append({"rank": rank + 1, "row": int(rows[rank]), "token": tok, "context": " ".join(ctx.get(rank, [])),
                    "role": role, "record_id": rec, "position": pos, "condition": cond, "target_value": target,
                    "language": lang, "prompt_id": pid, "response_id": rid})
    return out


def _row_batches(store: Store, where: str | None, n_rows: int, seen: list[int]) -> Iterator[np.ndarray]:
    """The token rows to score, in ascending batches of about :data:`ROW_BATCH` (``seen[0]`` counts
    them): all rows, or those of ``tokens_info`` matching ``where``, streamed from the catalog, so
    not even the row index is held whole."""
    if where is None:
        for lo in range(0, n_rows, ROW_BATCH):
            seen[0] += min(n_rows, lo + ROW_BATCH) - lo
            yield np.arange(lo, min(n_rows, lo + ROW_BATCH), dtype=np.int64)
        return
    for batch in sql_batches(store, f'SELECT "row" FROM tokens_info WHERE {where} ORDER BY "row"', ROW_BATCH):
        if batch.num_rows:
            seen[0] += batch.num_rows
            yield np.asarray(batch.column(0).to_numpy(), dtype=np.int64)


def _stream(store: Store, site: str, layer: int, where: str | None,
            seen: list[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    n_rows = store.array_meta(site, layer, "token").n_rows
    for rows in _row_batches(store, where, n_rows, seen):
        yield from store.blocks(site, layer, rows)


def run(store: Store, spec: TopExamplesSpec) -> TopExamplesResult:
    seen = [0]
    if spec.neuron is not None:
        assert isinstance(spec.neuron, tuple)  # __post_init__ parsed "L:I"
        layer, index = int(spec.neuron[0]), int(spec.neuron[1])
        meta = store.array_meta("mlp_act", layer, "token")
        if index >= meta.width:
            raise InputError(f"neuron {index} out of range; layer {layer} has {meta.width} neurons (0-{meta.width - 1})")
        what = f"neuron {layer}:{index}"
        top_rows, scores = top_k_stream(_stream(store, "mlp_act", layer, spec.where, seen), spec.k,
                                        lambda b: b[:, index])
    else:
        vrows, vecs = load_vectors(store, "vector_id = ?", [spec.vector_id])
        if not vrows:
            raise InputError(f"no vector {spec.vector_id}; list them with: actstore sql STORE \"SELECT vector_id, name FROM vectors\"")
        site, layer = vrows[0]["site"], vrows[0]["layer"]
        store.array_meta(site, layer, "token")  # a clear error if per-token arrays were not stored
        v = vecs[0].astype(np.float32)
        what = f"vector {spec.vector_id} ({vrows[0]['name']})"
        top_rows, scores = top_k_stream(_stream(store, site, layer, spec.where, seen), spec.k, lambda b: b @ v)
    if spec.where and not seen[0]:
        raise InputError(f"no token rows match --where {spec.where!r}")
    examples = _contexts(store, top_rows, spec.window)
    for ex, s in zip(examples, scores):
        ex["score"] = float(s)
    res = TopExamplesResult(what, top_rows, scores, examples)
    if not spec.record:
        return res
    params = {"neuron": list(spec.neuron) if spec.neuron else None, "vector_id": spec.vector_id, "k": spec.k,
              "where": spec.where}
    run_id, _ = record(store, "top_examples", params, Recorder(),
                       {"rows": top_rows.tolist(), "scores": scores.tolist()})
    return replace(res, run_id=run_id)
