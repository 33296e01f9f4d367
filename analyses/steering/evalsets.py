"""The evaluations a sweep runs under each setting: what to ask, and how to score the answers.

Each :class:`EvalSet` is a list of items (a chat to answer) and a ``score`` that turns the answers into
metrics (plain floats, recorded in ``steering_metrics``) and one verdict per answer (recorded with the
generation). The scoring itself lives in :mod:`analyses.evals`; this module only wires prompts to it.

==============  ==========================================================================================
eval            items -> metrics
==============  ==========================================================================================
expression      the prompt set (``--prompts``), k samples each -> ``expression.<value>`` for the ten values
                by the judge, ``expression`` for the steered value, ``any_value``
diversity       the same answers as expression (no extra generation) -> Distinct-1/2, EAD-1/2, TTR
questionnaire   portrait items (ours, or Value Portrait by path) on the 6-point scale -> ``raw.<value>``,
                ``centered.<value>``, answered share
mcq             multiple-choice questions (built-in or an MMLU-layout path) -> ``accuracy``
jailbreak       harmful requests (built-in, value world, ``advbench:PATH``, ``harmbench:PATH``), k samples ->
                ``asr`` (not refused), ``refusal_rate``, and for the value world ``compliance``
instructions    queries with a verifiable instruction appended -> ``follow_rate``, ``follow.<kind>``
==============  ==========================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actstore.errors import InputError
from actstore.store import Store
from ingest.values import VALUE_SLUGS

EVALS: tuple[str, ...] = ("expression", "diversity", "questionnaire", "mcq", "jailbreak", "instructions")
#: Evals whose answers come from another eval's generations.
SHARES_GENERATIONS: dict[str, str] = {"diversity": "expression"}
#: ``valueworld`` (the value world's exact judge), or any ``ingest`` judge spec: ``lexicon``,
#: ``lexicon:FILE.json``, ``hf:PATH``, ``openai:URL#MODEL``.
JUDGES: tuple[str, ...] = ("valueworld", "lexicon", "lexicon:FILE.json", "hf:PATH", "openai:URL#MODEL")


@dataclass(frozen=True, eq=False)
class EvalItem:
    item_id: str
    user: str
    system: str | None = None
    payload: Any = None  # the Question / Instruction / Item behind it

    def chat(self) -> list[dict[str, str]]:
        # None: no system message; "" is an explicit empty one (see SweepSpec.intrinsic_system).
        return ([{"role": "system", "content": self.system}] if self.system is not None else []) + \
            [{"role": "user", "content": self.user}]


Scorer = Callable[[Sequence[EvalItem], Sequence[str], "str | None"], tuple[dict[str, float], list[float | None]]]


@dataclass(frozen=True, eq=False)
class EvalSet:
    name: str
    items: tuple[EvalItem, ...]
    score: Scorer
    samples: int = 1
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def with_empty_system(ev: EvalSet) -> EvalSet:
    """``ev`` with an explicit empty system message on every item that has none."""
    from dataclasses import replace

    return replace(ev, items=tuple(replace(i, system="") if i.system is None else i for i in ev.items))


def check_evals(names: Sequence[str]) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(n.strip() for n in names if n.strip()))
    bad = [n for n in out if n not in EVALS]
    if bad:
        raise InputError(f"unknown eval {bad[0]!r}; use some of {', '.join(EVALS)}")
    if not out:
        raise InputError(f"no evals asked for; use some of {', '.join(EVALS)}")
    return out


# --- prompts -----------------------------------------------------------------------------------------


def load_prompts(spec: str, store: Store | None = None, limit: int | None = None,
                 language: str | None = "en") -> list[EvalItem]:
    """The expression prompts. ``builtin`` (the project's queries), ``heldout`` (the project's
    queries that the store's prompts do not contain, by query id and by text: not the prompts its
    vectors were extracted from), ``valueworld`` (the value world's held-out questions, no system
    prompt), ``store`` (the store's intrinsic prompts), ``store:WHERE`` (a WHERE clause on
    ``prompts``), or a path (``.jsonl`` with ``user``/``text`` and optional ``system``, or ``.txt``
    with one query per line)."""
    items: list[EvalItem]
    if spec in ("builtin", "heldout"):
        from ingest.prompts.loaders import load_builtin_queries

        items = [EvalItem(q.query_id, q.text) for q in load_builtin_queries([language or "en"])]
        if spec == "heldout":
            if store is None:
                raise InputError("--prompts heldout needs a store (its prompts are what is held out)")
            used = store.sql("SELECT query_id, user_text FROM prompts").fetchall()
            ids, texts = {str(q) for q, _ in used}, {str(t).strip() for _, t in used}
            items = [i for i in items if i.item_id not in ids and i.user.strip() not in texts]
            if not items:
                raise InputError(f"the store was made from every built-in query in {language or 'en'!r}, so none is "
                                 "held out for steering; pass --prompts FILE with other queries (or --prompts builtin)")
    elif spec == "valueworld":
        from ingest.valueworld.corpus import eval_prompts

        items = [EvalItem(f"vw-{p.lang}-{i}", p.user) for i, p in enumerate(eval_prompts())
                 if p.kind == "intrinsic" and (language is None or p.lang == language)]
    elif spec == "store" or spec.startswith("store:"):
        if store is None:
            raise InputError("--prompts store needs a store")
        where = spec[6:].strip() or "condition = 'intrinsic'"
        rows = store.sql(f"SELECT prompt_id, system_text, user_text FROM prompts WHERE {where} ORDER BY prompt_id").fetchall()
        items = [EvalItem(str(pid), user, system) for pid, system, user in rows]
    else:
        items = _prompt_file(Path(spec).expanduser())
    if not items:
        raise InputError(f"no prompts from {spec!r}; check the prompt set (and its language)")
    return items[:limit] if limit else items


def _prompt_file(path: Path) -> list[EvalItem]:
    import json

    if not path.is_file():
        raise InputError(f"prompt file not found: {path}; use builtin, valueworld, store, or a .jsonl/.txt file")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{n}: not JSON ({err.msg}); write one object per line") from None
            user = row.get("user") or row.get("text") or row.get("prompt") if isinstance(row, dict) else None
            if not isinstance(user, str) or not user.strip():
                raise InputError(f"{path}:{n}: no 'user' (or 'text') field; give each line a user query")
            out.append(EvalItem(str(row.get("id", f"l{n}")), user, row.get("system")))
        return out
    return [EvalItem(f"l{n}", line.strip()) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


# --- judges --------------------------------------------------------------------------------------------


def expressed_values(judge: str) -> Callable[[str], set[str]]:
    """``text -> values expressed`` for a judge name."""
    if judge == "valueworld":
        from ingest.valueworld.judge import LexiconJudge

        vw = LexiconJudge()
        return lambda text: set(vw.expressed(text))
    # Any judge ingest knows (lexicon, lexicon:FILE.json, hf:PATH, openai:URL#MODEL), through the
    # ingest judge protocol: one JudgeItem per answer, asking about all ten values.
    from ingest.config import IngestConfig
    from ingest.judges import JudgeItem
    from ingest.pipeline import make_judge

    j = make_judge(IngestConfig(store="-", judge=judge))

    def read(text: str) -> set[str]:
        return {lab.value for lab in j.judge([JudgeItem("r", "", text, VALUE_SLUGS)]) if lab.expressed}
    return read


def check_judge(judge: str) -> str:
    """``valueworld`` or an ingest judge spec (checked without loading anything)."""
    if judge == "valueworld":
        return judge
    from ingest.config import parse_judge

    parse_judge(judge)
    return judge


# --- the eval sets ----------------------------------------------------------------------------------------


def _rate(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else math.nan


def expression_set(prompts: list[EvalItem], judge: str, samples: int) -> EvalSet:
    read = expressed_values(judge)

    def score(items: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        got = [read(t) for t in texts]
        m = {f"expression.{v}": _rate([v in g for g in got]) for v in VALUE_SLUGS}
        m["any_value"] = _rate([bool(g) for g in got])
        if value in VALUE_SLUGS:
            m["expression"] = m[f"expression.{value}"]
        verdicts: list[float | None] = [float(value in g) if value in VALUE_SLUGS else float(len(g)) for g in got]
        return m, verdicts
    return EvalSet("expression", tuple(prompts), score, samples, meta={"judge": judge})


def diversity_score(texts: Sequence[str]) -> dict[str, float]:
    from analyses.evals.diversity import diversity_report

    d = diversity_report([t if t.strip() else "." for t in texts]).as_dict()
    return {k: v for k, v in d.items() if k not in ("n_responses", "n_tokens")}


def questionnaire_set(limit: int | None, source: str = "builtin") -> EvalSet:
    """Our portrait items (``builtin``), or Value Portrait items by path (its directory or
    ``tagged_responses.json``), scored PVQ-style."""
    from analyses.evals.questionnaire import build_prompt, builtin_items, parse_rating, score_questionnaire

    if source != "builtin":
        return _portrait_set(source, limit)
    qs = builtin_items()[:limit] if limit else builtin_items()

    def score(items: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        ratings = [parse_rating(t) for t in texts]
        s = score_questionnaire([i.payload for i in items], ratings).as_dict()
        return s, [float(r) if r is not None else None for r in ratings]
    return EvalSet("questionnaire", tuple(EvalItem(q.id, build_prompt(q), None, q) for q in qs), score)


def _portrait_set(path: str, limit: int | None) -> EvalSet:
    from analyses.evals.questionnaire import parse_rating
    from analyses.evals.value_portrait import build_portrait_prompt, load_portrait_items, score_portrait

    ps = load_portrait_items(path)
    ps = ps[:limit] if limit else ps

    def score(items: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        ratings = [parse_rating(t) for t in texts]
        s = score_portrait([i.payload for i in items], ratings).as_dict()
        return s, [float(r) if r is not None else None for r in ratings]
    return EvalSet("questionnaire", tuple(EvalItem(str(p.id), build_portrait_prompt(p), None, p) for p in ps), score,
                   source=path)


def mcq_set(source: str, limit: int | None) -> EvalSet:
    from analyses.evals.mcq import build_prompt, builtin_questions, grade, load_mmlu

    qs = builtin_questions() if source == "builtin" else load_mmlu(source)
    qs = qs[:limit] if limit else qs

    def score(items: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        marks = grade([i.payload for i in items], texts)
        return {"accuracy": _rate(marks)}, [float(m) for m in marks]
    return EvalSet("mcq", tuple(EvalItem(f"q{i}", build_prompt(q), None, q) for i, q in enumerate(qs)), score,
                   source=source)


def jailbreak_set(source: str, limit: int | None, refusal: str | None = None, samples: int = 1) -> EvalSet:
    from analyses.evals.harmful import builtin_harmful_prompts, load_advbench, load_harmbench
    from analyses.evals.refusal import is_refusal

    if source == "builtin":
        prompts = [p.prompt for p in builtin_harmful_prompts()]
    elif source in ("valueworld", "valueworld-heldout"):
        from ingest.valueworld.corpus import eval_prompts

        # "valueworld": the requests the model was trained to refuse (asked without a system prompt,
        # as in training); "valueworld-heldout": requests it never saw, which it may not refuse.
        prompts = [p.user for p in eval_prompts(heldout=source.endswith("heldout"))
                   if p.kind == "harmful" and p.system is None]
    elif source.startswith("advbench:"):
        prompts = [p.prompt for p in load_advbench(source[9:])]
    elif source.startswith("harmbench:"):
        prompts = [p.prompt for p in load_harmbench(source[10:])]
    else:
        raise InputError(f"bad harmful set {source!r}; use builtin, valueworld, valueworld-heldout, advbench:PATH "
                         "or harmbench:PATH")
    prompts = prompts[:limit] if limit else prompts
    refusal = refusal or ("valueworld" if source.startswith("valueworld") else "phrases")
    if refusal == "valueworld":
        from ingest.valueworld.judge import LexiconJudge

        vw = LexiconJudge()
        refused: Callable[[str], bool] = vw.is_refusal
        complied: Callable[[str], bool] | None = lambda t: vw.is_compliance(t) and not vw.is_refusal(t)
    elif refusal == "phrases":
        refused, complied = is_refusal, None
    else:
        raise InputError(f"bad refusal detector {refusal!r}; use phrases or valueworld")

    def score(items: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        r = [refused(t) for t in texts]
        m = {"asr": 1.0 - _rate(r), "refusal_rate": _rate(r)}
        if complied is not None:
            m["compliance"] = _rate([complied(t) for t in texts])
        return m, [float(not x) for x in r]
    return EvalSet("jailbreak", tuple(EvalItem(f"h{i}", p) for i, p in enumerate(prompts)), score, samples,
                   source=source, meta={"refusal": refusal})


def instructions_set(limit: int | None) -> EvalSet:
    from analyses.evals.instructions import builtin_instructions
    from ingest.prompts.loaders import load_builtin_queries

    queries = [q.text for q in load_builtin_queries(["en"])]
    ins = builtin_instructions()[:limit] if limit else builtin_instructions()
    items = tuple(EvalItem(f"i{k}", x.apply(queries[k % len(queries)]), None, x) for k, x in enumerate(ins))

    def score(its: Sequence[EvalItem], texts: Sequence[str], value: str | None):
        from analyses.evals.instructions import follow_rate_by_kind

        marks = [i.payload.check(t) for i, t in zip(its, texts)]
        m = {"follow_rate": _rate(marks)}
        m.update({f"follow.{k}": v for k, v in follow_rate_by_kind([i.payload for i in its], texts).items()})
        return m, [float(x) for x in marks]
    return EvalSet("instructions", items, score)
