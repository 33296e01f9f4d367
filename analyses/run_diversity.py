"""``actstore analyze diversity``: lexical diversity of responses chosen with SQL.

Responses are read from ``responses`` joined to their ``prompts`` (columns of both, with
``response_source`` for the response's own ``source``), filtered by ``where`` and grouped by the
SQL expression ``by`` (default ``condition``; ``'all'`` for one group). V of EAD is the store's model
vocabulary size unless ``vocab_size`` is given (the expected number of distinct n-grams is that of
uniform draws from V items). The texts are streamed from
the catalog in batches into one :class:`analyses.evals.diversity.DiversityCounter` per group, so
memory is the distinct n-grams of each group, not the responses. Semantic diversity needs an
embedding model and is left to the library call :func:`analyses.evals.diversity.diversity_report`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from actstore.errors import InputError
from actstore.store import Store
from analyses.evals.diversity import DEFAULT_VOCAB_SIZE, DiversityCounter, DiversityReport
from analyses.recording import Recorder, record, sql_batches

FETCH_ROWS = 4096  # responses per fetch from the catalog

BASE = ("SELECT r.response_id, r.text, r.sample_idx, r.seed, r.source AS response_source, r.run_id AS response_run, "
        "p.* FROM responses r LEFT JOIN prompts p ON p.prompt_id = r.prompt_id")


@dataclass(frozen=True)
class DiversitySpec:
    where: str | None = None
    by: str = "condition"
    vocab_size: int | None = None  # V of EAD; None = the store's model vocabulary, else DEFAULT_VOCAB_SIZE
    record: bool = True

    def __post_init__(self) -> None:
        if self.vocab_size is not None and int(self.vocab_size) < 2:
            raise InputError(f"--vocab-size must be at least 2, got {self.vocab_size}")
        if not self.by.strip():
            raise InputError("--by needs a column or SQL expression, e.g. condition, or 'all'")


@dataclass(frozen=True)
class DiversityResult:
    groups: dict[str, DiversityReport]
    run_id: int | None = None

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"group": g, **r.as_dict()} for g, r in self.groups.items()])


def vocab_size_of(store: Store) -> int:
    """V of EAD for a store: its model's vocabulary size, else DEFAULT_VOCAB_SIZE (no model recorded)."""
    model = store.model
    return int(model.vocab_size) if model is not None and model.vocab_size else DEFAULT_VOCAB_SIZE


def run(store: Store, spec: DiversitySpec) -> DiversityResult:
    vocab_size = int(spec.vocab_size) if spec.vocab_size is not None else vocab_size_of(store)
    by = "'all'" if spec.by.strip() == "all" else spec.by
    where = f" WHERE {spec.where}" if spec.where else ""
    query = f"SELECT CAST(({by}) AS VARCHAR) AS grp, text FROM ({BASE}){where} ORDER BY grp, response_id"
    counters: dict[str, DiversityCounter] = {}
    # Streamed in batches into one counter per group: memory is the distinct n-grams, not the texts.
    for batch in sql_batches(store, query, FETCH_ROWS):
        for grp, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            key = str(grp)
            if key not in counters:
                counters[key] = DiversityCounter(vocab_size)
            counters[key].add(text)
    if not counters:
        raise InputError("no responses match" + (f" --where {spec.where!r}" if spec.where else "; the store has no responses"))
    res = DiversityResult({g: c.report() for g, c in counters.items()})
    if not spec.record:
        return res
    summary = {g: r.as_dict() for g, r in res.groups.items()}
    run_id, _ = record(store, "diversity", {"where": spec.where, "by": spec.by, "vocab_size": vocab_size},
                       Recorder(), summary)
    return replace(res, run_id=run_id)
