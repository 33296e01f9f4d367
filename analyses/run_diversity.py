"""``actstore analyze diversity``: lexical diversity of responses chosen with SQL.

Responses are read from ``responses`` joined to their ``prompts`` (columns of both, with
``response_source`` for the response's own ``source``), filtered by ``where`` and grouped by the
SQL expression ``by`` (default ``condition``; ``'all'`` for one group). V of EAD is the store's model
vocabulary size unless ``vocab_size`` is given (the expected number of distinct n-grams is that of
uniform draws from V items). The texts are streamed from
the catalog in batches into one :class:`analyses.evals.diversity.DiversityCounter` per group, so
memory is the distinct n-grams of each group, not the responses. Semantic diversity needs an
embedding model and is left to the library call :func:`analyses.evals.diversity.diversity_report`.

EAD's vocabulary size V is the store's: the model's ``vocab_size`` (``models`` table), else the
number of rows of its ``vocab`` table, else :data:`~analyses.evals.diversity.DEFAULT_VOCAB_SIZE`
(said in the result); ``vocab_size`` overrides it. The CLI and the demo use the same rule.

Groups differ in size, and Distinct-n falls as text piles up, so the raw numbers favour the smaller
group. With ``n_rep`` > 0 every group is also measured at one size, ``n_rep`` times: a random
subsample (chosen in SQL by a seeded hash) of as many responses as the smallest group has, counted up
to one common number of tokens (90% of what the shortest-texted group's subsample is expected to
hold); each metric is then the mean over repetitions with the 2.5-97.5% range (the ``_eq``,
``_lo``, ``_hi`` columns). Each repetition is one more streamed pass; memory stays one counter per group.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses.evals.diversity import DEFAULT_VOCAB_SIZE, LEXICAL, DiversityCounter, DiversityReport
from analyses.recording import Recorder, record, sql_batches
from analyses.stats import percentile_ci

FETCH_ROWS = 4096  # responses per fetch from the catalog

BASE = ("SELECT r.response_id, r.text, r.sample_idx, r.seed, r.source AS response_source, r.run_id AS response_run, "
        "p.* FROM responses r LEFT JOIN prompts p ON p.prompt_id = r.prompt_id")


@dataclass(frozen=True)
class DiversitySpec:
    where: str | None = None
    by: str = "condition"
    vocab_size: int | None = None  # None: the store's (model vocab_size, else its vocab table)
    n_rep: int = 20  # equal-size repetitions (0 = raw numbers only)
    seed: int = 0
    record: bool = True

    def __post_init__(self) -> None:
        if int(self.n_rep) < 0:
            raise InputError(f"--repeats must be >= 0, got {self.n_rep}")
        if self.vocab_size is not None and int(self.vocab_size) < 2:
            raise InputError(f"--vocab-size must be at least 2, got {self.vocab_size}")
        if not self.by.strip():
            raise InputError("--by needs a column or SQL expression, e.g. condition, or 'all'")


@dataclass(frozen=True)
class DiversityResult:
    groups: dict[str, DiversityReport]
    run_id: int | None = None
    vocab_size: int = DEFAULT_VOCAB_SIZE
    vocab_source: str = "default"  # model | vocab table | default | option
    equal: dict[str, dict] | None = None  # group -> n, tokens, metric -> (mean, lo, hi) at equal size
    n_rep: int = 0

    def table(self):
        """Per group: the raw numbers, then (with repetitions) each metric at equal size with its range."""
        import pandas as pd

        rows = []
        for g, r in self.groups.items():
            row = {"group": g, **r.as_dict()}
            if self.equal is not None:
                e = self.equal[g]
                row |= {"n_eq": e["n"], "tokens_eq": e["tokens"]}
                for m in LEXICAL:
                    row |= {f"{m}_eq": e[m][0], f"{m}_lo": e[m][1], f"{m}_hi": e[m][2]}
            rows.append(row)
        return pd.DataFrame(rows)

    def sentences(self) -> list[str]:
        """The comparison in words (Distinct-2 and EAD-2 at equal size, with their ranges)."""
        if self.equal is None or len(self.equal) < 2:
            return []
        any_e = next(iter(self.equal.values()))
        parts = [f"{g} Distinct-2 {e['distinct_2'][0]:.3f} [{e['distinct_2'][1]:.3f}, {e['distinct_2'][2]:.3f}], "
                 f"EAD-2 {e['ead_2'][0]:.3f} [{e['ead_2'][1]:.3f}, {e['ead_2'][2]:.3f}]" for g, e in self.equal.items()]
        return [f"At equal size ({any_e['n']} responses, about {any_e['tokens']:.0f} tokens per group, "
                f"mean and range over {self.n_rep} subsamples; "
                f"EAD with V = {self.vocab_size} from the {self.vocab_source}): " + "; ".join(parts) + "."]


def store_vocab_size(store: Store) -> tuple[int, str]:
    """The vocabulary size EAD should use for this store, and where it came from."""
    model = store.model
    if model is not None and model.vocab_size:
        return int(model.vocab_size), "model"
    n = store.sql("SELECT count(*) FROM vocab").fetchall()[0][0]
    if n:
        return int(n), "vocab table"
    return DEFAULT_VOCAB_SIZE, "default"


def _equal_size(store: Store, base: str, counts: dict[str, DiversityCounter], spec: DiversitySpec,
                vocab: int) -> dict[str, dict]:
    n_eq = min(c.n_responses for c in counts.values())
    per_resp = min(c.n_tokens / c.n_responses for c in counts.values())
    cap = max(1, int(0.9 * per_resp * n_eq))
    reps: dict[str, list[list[float]]] = {g: [] for g in counts}
    for r in range(spec.n_rep):
        query = (f"SELECT grp, text FROM ({base}) QUALIFY row_number() OVER (PARTITION BY grp "
                 f"ORDER BY hash(response_id, {int(spec.seed)}, {r}), response_id) <= {n_eq} ORDER BY grp")
        cs: dict[str, DiversityCounter] = {}
        for batch in sql_batches(store, query, FETCH_ROWS):
            for grp, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                cs.setdefault(str(grp), DiversityCounter(vocab, max_tokens=cap)).add(text)
        for g, c in cs.items():
            rep = c.report()
            reps[g].append([getattr(rep, m) for m in LEXICAL] + [c.n_tokens])
    out = {}
    for g, rows in reps.items():
        arr = np.array(rows, dtype=np.float64)
        lo, hi = percentile_ci(arr)
        out[g] = {"n": n_eq, "tokens": float(arr[:, -1].mean()),
                  **{m: (float(arr[:, j].mean()), float(lo[j]), float(hi[j])) for j, m in enumerate(LEXICAL)}}
    return out


def run(store: Store, spec: DiversitySpec) -> DiversityResult:
    by = "'all'" if spec.by.strip() == "all" else spec.by
    where = f" WHERE {spec.where}" if spec.where else ""
    vocab, source = (int(spec.vocab_size), "option") if spec.vocab_size is not None else store_vocab_size(store)
    base = f"SELECT CAST(({by}) AS VARCHAR) AS grp, text, response_id FROM ({BASE}){where}"
    query = f"SELECT grp, text FROM ({base}) ORDER BY grp, response_id"
    counters: dict[str, DiversityCounter] = {}
    # Streamed in batches into one counter per group: memory is the distinct n-grams, not the texts.
    for batch in sql_batches(store, query, FETCH_ROWS):
        for grp, text in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            key = str(grp)
            if key not in counters:
                counters[key] = DiversityCounter(vocab)
            counters[key].add(text)
    if not counters:
        raise InputError("no responses match" + (f" --where {spec.where!r}" if spec.where else "; the store has no responses"))
    equal = _equal_size(store, base, counters, spec, vocab) if spec.n_rep and min(
        c.n_responses for c in counters.values()) > 0 else None
    res = DiversityResult({g: c.report() for g, c in counters.items()}, vocab_size=vocab, vocab_source=source,
                          equal=equal, n_rep=spec.n_rep if equal is not None else 0)
    if not spec.record:
        return res
    summary: dict = {g: r.as_dict() for g, r in res.groups.items()}
    if equal is not None:
        summary["equal_size"] = {"n_rep": spec.n_rep, "seed": spec.seed, "groups": equal,
                                 "method": "subsample to the smallest group's responses and a common token count; "
                                           "mean and 2.5-97.5% range over repetitions"}
    summary["vocab"] = {"size": vocab, "source": source}
    run_id, _ = record(store, "diversity", {"where": spec.where, "by": spec.by, "vocab_size": vocab,
                                            "vocab_source": source, "n_rep": spec.n_rep, "seed": spec.seed},
                       Recorder(), summary)
    return replace(res, run_id=run_id)
