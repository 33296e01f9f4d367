"""The ingest pipeline: prompts -> responses -> labels -> activations, into one store.

Library twins of the ``actstore ingest`` commands, each taking one :class:`IngestConfig`:
:func:`run` (every stage), :func:`generate` (prompts + responses), :func:`label`, :func:`capture` and
:func:`import_` (external responses with labels, then capture). Each stage is a ``runs`` row and
is resumable: rerun the same call and it does only what is missing (prompts and labels are keyed
rows; responses are generated per batch of prompts and skipped when present; capture skips
responses that have a record, see ``ingest.packing``).

Sharding (``config.shard = "I/N"``, ``--shard``): the stage writes the part store ``config.target``
(``STORE.parts/part-IIII-of-NNNN``) and takes worker I's share of the units of work
(``ingest.units``): ``run``, ``generate`` and ``import_`` the share of the responses they plan, and
write only the prompts those need; ``label`` and ``capture`` work on what the part holds.
``actstore merge STORE.parts --out STORE`` then gives the store one process writes.

Order of work: every check that input can fail (config, prompt files, values, languages, layer
range against the model's config, the judge spec, the store's existing model and arrays) runs
first, with no store opened for writing and no weights loaded; then the model loads; then the store
opens. A bad input thus leaves the store as it was (or not created).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import actstore
from actstore.errors import InputError, SchemaMismatchError, StoreNotFoundError, UsageError
from ingest.config import IngestConfig, parse_judge
from ingest.progress import Progress
from ingest.prompts import Prompt, build_prompts, load_queries
from ingest.values import VALUE_SLUGS

JUDGE_CHUNK = 64  # responses per judge call and per labels insert


@dataclass
class Report:
    """What a call did, by stage (counts of rows written)."""

    store: str
    counts: dict[str, int] = field(default_factory=dict)
    abstentions: int | None = None  # of the labels written, unreadable verdicts (stored as NULL)

    def lines(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.counts.items()]


# -- checks before anything is written ----------------------------------------------------------

@dataclass(frozen=True)
class _StoreState:
    model: Any  # actstore.ModelInfo | None
    arrays: frozenset[str]
    n_records: int


def _peek(path: str) -> _StoreState | None:
    """What an existing store holds, read-only (None for a new store). Every stage calls this
    before it loads a model: a store another process is writing is refused here, not after."""
    root = Path(path).expanduser()
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} is a file; pass a directory for the store")
    actstore.store.check_writable(root)
    if not (root / "catalog.duckdb").exists():
        return None
    with actstore.open(root, read_only=True) as st:
        return _StoreState(st.model, frozenset(m.name for m in st.arrays() if m.kind == "activation"),
                           st.n_records)


def _model_name(config: IngestConfig, state: _StoreState | None) -> str:
    if config.model:
        return config.model
    if state is not None and state.model is not None:
        return state.model.name
    raise UsageError("no model; pass --model NAME_OR_PATH (or set model in the config file)")


@dataclass(frozen=True)
class _Checked:
    model: str
    shapes: Any
    layers: list[int]
    dtype: str


def _check_model(config: IngestConfig, state: _StoreState | None, capture: bool) -> _Checked:
    from ingest.models import canonical_name, model_shapes

    name = canonical_name(_model_name(config, state))
    shapes = model_shapes(name, trust_remote_code=config.trust_remote_code, quiet=config.quiet)
    layers = config.check_shapes(shapes)
    dtype = config.model_dtype(shapes)
    have = state.model if state is not None else None
    if have is not None and have.name != name and _same_gguf(have, name):
        name = have.name  # the same GGUF file named another way (smollm2 vs its path, a copy): the store's name
    if have is not None and (have.name, have.dtype, have.n_layers, have.d_model) != (
            name, dtype, shapes.n_layers, shapes.d_model):
        raise SchemaMismatchError(
            f"store holds {have.name} ({have.dtype}, {have.n_layers} layers); it cannot take {name} ({dtype}, "
            f"{shapes.n_layers} layers): use a new store, or the same --model and --dtype")
    if capture and state is not None and state.n_records:
        want = {s.key.name for s in _array_plan(config, shapes, layers, dtype).specs()}
        if want != set(state.arrays):
            extra = sorted(want - state.arrays) or sorted(state.arrays - want)
            raise SchemaMismatchError(
                f"store already holds records with other arrays than asked ({extra[0]} differs); rerun with "
                "the layers, sites, pools and --per-token of the first capture, or use a new store")
    return _Checked(name, shapes, layers, dtype)


def _same_gguf(have: Any, name: str) -> bool:
    """Is ``name`` a GGUF file with the content the store's model was converted from?"""
    from ingest.models import file_sha256, gguf_path, is_gguf

    recorded = ((have.config or {}).get("gguf") or {}).get("sha256")
    return bool(recorded) and is_gguf(name) and file_sha256(gguf_path(name)) == recorded


def _array_plan(config: IngestConfig, shapes: Any, layers: Sequence[int], dtype: str):
    from ingest.stage_capture import ArrayPlan

    return ArrayPlan(tuple(layers), tuple(config.sites), config.per_token, tuple(config.pools), dtype,
                     shapes.d_model, shapes.d_mlp, config.codec)


def prompt_set(config: IngestConfig) -> list[Prompt]:
    """The config's prompts, in their deterministic order (validated; no model needed)."""
    if config.prompts == "valueworld":
        return _valueworld_prompts(config)
    src = Path(config.prompts)
    # The table loader reports an empty file as a missing column; say what is wrong instead.
    if src.is_file() and src.suffix.lower() in (".jsonl", ".ndjson", ".csv", ".tsv", ".json") \
            and not src.read_text(encoding="utf-8", errors="replace").strip():
        raise InputError(f"{src}: the file is empty (no rows); give at least one query")
    queries = load_queries(config.prompts, list(config.columns) or None,
                           list(config.languages) if config.languages else None)
    if config.max_queries is not None:
        keep: list[str] = []
        for q in queries:
            if q.query_id not in keep:
                keep.append(q.query_id)
        chosen = set(keep[:config.max_queries])
        queries = [q for q in queries if q.query_id in chosen]
    prompts = build_prompts(queries, list(config.values) if config.values else None,
                            list(config.languages) if config.languages else None,
                            config.templates_per_value, config.prompt_seed, config.include_intrinsic,
                            intrinsic_system=config.intrinsic_system)
    if not prompts:
        raise InputError(f"{config.prompts}: the prompt set is empty; check --language, --value and the file")
    return prompts


def _valueworld_prompts(config: IngestConfig) -> list[Prompt]:
    """The value world's own questions and system prompts (its model knows nothing else)."""
    from ingest.prompts.valueworld import valueworld_queries, valueworld_templates

    queries = valueworld_queries(tuple(config.languages) if config.languages else None)
    if config.max_queries is not None:
        ids = set(list(dict.fromkeys(q.query_id for q in queries))[:config.max_queries])
        queries = [q for q in queries if q.query_id in ids]
    return build_prompts(queries, list(config.values) if config.values else None,
                         list(config.languages) if config.languages else None, config.templates_per_value,
                         config.prompt_seed, config.include_intrinsic, templates=valueworld_templates(),
                         intrinsic_system=config.intrinsic_system)


def with_judge(config: IngestConfig, model: Any = None) -> IngestConfig:
    """``config`` with its judge chosen: the one given, else ``lexicon`` when the model (a name or a
    store's ``ModelInfo``) is the value-world model or the prompts are the value world's, else the
    packaged sentence-embedding judge (``ingest.defaults.REAL_MODEL_JUDGE``), with one line on stderr
    that names it and its measured agreement (unless ``quiet``). The lexicon's phrases are the value
    world's: on another model's answers they would label by chance. Without the embedding model
    installed: one error line saying how to install it or which ``--judge`` to pass."""
    from ingest.defaults import is_valueworld_model, real_model_judge

    if config.judge is not None:
        return config
    info = model if model is not None and not isinstance(model, str) else None
    if config.prompts == "valueworld" or is_valueworld_model(model if isinstance(model, str) else None, info):
        return config.with_overrides(judge="lexicon")
    return config.with_overrides(judge=real_model_judge(quiet=config.quiet))


def make_judge(config: IngestConfig) -> Any:
    """The judge a ``--judge`` spec names (files are read here, models loaded here), with the
    ``judge_threshold`` applied (``from-eval``: the one the store's latest ``judge eval`` recorded)."""
    judge = _make_judge(config)
    if config.judge_threshold is not None:
        from ingest.judge_eval import recorded_threshold, with_threshold

        if config.judge_threshold == "from-eval":
            if _peek(config.target) is None:
                raise _no_store(config, "label --threshold from-eval", "'actstore ingest run' or 'generate'")
            with actstore.open(config.target) as st:
                threshold = recorded_threshold(st, judge.judge_id)
        else:
            threshold = float(config.judge_threshold)
        judge = with_threshold(judge, threshold)
    return judge


def _make_judge(config: IngestConfig) -> Any:
    from ingest.judges import HFChatJudge, JudgeItem, OpenAIJudge

    if config.judge is None:
        raise UsageError("no judge; pass --judge lexicon | lexicon:PHRASES.json | embed | hf:MODEL_PATH | openai:URL#MODEL")
    spec = parse_judge(config.judge)
    target = spec.target or ""
    if spec.kind == "lexicon":
        judge = _lexicon(target)
        # Probe every value now: a value without phrases must fail before generation, not after.
        judge.judge([JudgeItem("probe", "", "", tuple(config.values or VALUE_SLUGS))])
        return judge
    if spec.kind == "embed":
        from ingest.judges.embed import EmbeddingJudge

        return EmbeddingJudge.load(target or None, device=config.device)
    if spec.kind == "hf":
        from ingest.judges.hf import hf_options

        return HFChatJudge.from_pretrained(target, device=config.device, **hf_options(spec.options))
    return OpenAIJudge(spec.model or "", base_url=target)


def _lexicon(target: str) -> Any:
    """``lexicon`` (the value-world pools) or ``lexicon:FILE.json`` ({value: [phrases]})."""
    from ingest.judges import LexiconJudge, valueworld_lexicon_judge

    if not target:
        return valueworld_lexicon_judge()
    path = Path(target)
    try:
        phrases = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such lexicon file; pass lexicon:FILE.json with {{value: [phrases]}}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg}); write {{value: [phrases]}}") from None
    if not isinstance(phrases, dict) or not all(isinstance(v, list) for v in phrases.values()):
        raise InputError(f"{path}: expected {{value: [phrases]}}; fix the lexicon file")
    return LexiconJudge(phrases, judge_id=f"lexicon:{path.stem}")


# -- the store session -----------------------------------------------------------------------------

@contextmanager
def _stage(store: Any, kind: str, config: IngestConfig, extra: dict[str, Any] | None = None) -> Iterator[int]:
    """A ``runs`` row around a stage (params: the config, plus ``extra``): done, or failed with the error's line."""
    run_id = store.begin_run(f"ingest:{kind}", {**config.to_dict(), **(extra or {})})
    try:
        yield run_id
    except BaseException as e:
        msg = "interrupted" if isinstance(e, KeyboardInterrupt) else str(e).splitlines()[0] if str(e) else type(e).__name__
        try:
            store.end_run(run_id, "failed", msg)
        except Exception:  # noqa: BLE001, S110 - the original error matters more than bookkeeping
            pass
        raise
    store.end_run(run_id, "done")


def _open_store(config: IngestConfig) -> Any:
    store = actstore.open(config.target, read_only=False, create=True)
    # We hold the writer lock, so a run still marked running belongs to a process that died
    # (kill -9, power loss): say so, and let this run pick up where it stopped.
    for (run_id,) in store.sql("SELECT run_id FROM runs WHERE status = 'running'").fetchall():
        store.end_run(int(run_id), "failed", "interrupted: its process ended before the run finished")
    return store


def _model_info(name: str, model: Any, shapes: Any) -> Any:
    from ingest.models import gguf_info

    cfg = model.config.to_dict() if hasattr(model.config, "to_dict") else None
    gguf = gguf_info(name)
    if gguf is not None and cfg is not None:  # the file, its content hash and quantization type
        cfg["gguf"] = gguf.to_dict()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return actstore.ModelInfo(name=name, dtype=dtype, n_layers=shapes.n_layers, d_model=shapes.d_model,
                              d_mlp=shapes.d_mlp, vocab_size=shapes.vocab_size, family=shapes.family,
                              revision=getattr(model.config, "_commit_hash", None), config=cfg)


def _vocab(tokenizer: Any, vocab_size: int) -> list[str]:
    n = min(len(tokenizer), vocab_size)
    texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
    return list(texts) + [""] * (vocab_size - n)


def _set_model(store: Any, checked: _Checked, model: Any, tokenizer: Any) -> None:
    if store.model is None:
        store.set_model(_model_info(checked.model, model, checked.shapes), _vocab(tokenizer, checked.shapes.vocab_size))


# -- stages ------------------------------------------------------------------------------------

def prompt_rows(prompts: Sequence[Prompt], tokenizer: Any, *, quiet: bool = False) -> dict[str, list]:
    """Rows of the ``prompts`` table, ``chat_text`` rendered by the tokenizer's chat template and
    ``effective_system`` the system text the model sees (the template's default system prompt for a
    prompt without a system message, if the template has one; said once on stderr)."""
    from ingest.tokenize import effective_system, render_prompt, warn_default_system

    warn_default_system(tokenizer, sum(p.system is None for p in prompts), quiet=quiet)
    return {"prompt_id": [p.prompt_id for p in prompts], "query_id": [p.query_id for p in prompts],
            "condition": [p.condition for p in prompts], "target_value": [p.target_value for p in prompts],
            "language": [p.language for p in prompts], "template_id": [p.template_id for p in prompts],
            "system_text": [p.system for p in prompts], "user_text": [p.user for p in prompts],
            "chat_text": [render_prompt(tokenizer, p.messages()) for p in prompts],
            "source": [p.source for p in prompts],
            "effective_system": [effective_system(tokenizer, p.messages()) for p in prompts]}


def _write_prompts(store: Any, prompts: Sequence[Prompt], tokenizer: Any, config: IngestConfig) -> int:
    with _stage(store, "prompts", config):
        have = set(store.sql("SELECT prompt_id FROM prompts").fetchnumpy()["prompt_id"].tolist())
        new = [p for p in prompts if p.prompt_id not in have]
        return store.insert("prompts", prompt_rows(new, tokenizer, quiet=config.quiet),
                            on_conflict="ignore") if new else 0


def _n_samples(prompt: Prompt, config: IngestConfig) -> int:
    if prompt.condition == "intrinsic" and config.intrinsic_samples is not None:
        return config.intrinsic_samples
    return config.samples


#: One planned response: its prompt and sample index.
GenRow = tuple[Prompt, int]


def generation_units(prompts: Sequence[Prompt], config: IngestConfig) -> list[list[GenRow]]:
    """The responses this process generates, in units of work (``ingest.units``): every planned
    (prompt, sample), cut by response id into units of ``config.shard_unit``, and of those the
    shard's block (all of them when not sharded). Pure: no model, no store."""
    from ingest.generate import response_id
    from ingest.units import share

    rows = {response_id(p.prompt_id, k): (p, k) for p in prompts for k in range(_n_samples(p, config))}
    return [[rows[rid] for rid in unit] for unit in share(rows, config.shard_unit, config.shard_spec)]


def _prompts_of(prompts: Sequence[Prompt], units: Sequence[Sequence[GenRow]]) -> list[Prompt]:
    """The prompts the units ask, in the prompt set's order."""
    used = {p.prompt_id for unit in units for p, _ in unit}
    return [p for p in prompts if p.prompt_id in used]


def _generate(store: Any, model: Any, tokenizer: Any, units: Sequence[Sequence[GenRow]], config: IngestConfig) -> int:
    from ingest.generate import GenParams, generate_batch, response_id, response_seed
    from ingest.tokenize import tokenize_prompt

    params = GenParams(config.max_new_tokens, float(config.temperature), float(config.top_p))
    with _stage(store, "generate", config) as run_id:
        have = set(store.sql("SELECT response_id FROM responses").fetchnumpy()["response_id"].tolist())
        toks = {p.prompt_id: tokenize_prompt(tokenizer, p.messages()) for unit in units for p, _ in unit}
        # Unit by unit; in a unit, longest prompt first, then id: batches depend neither on what is
        # done nor on which process generates the unit.
        batches = []
        for unit in units:
            order = sorted(unit, key=lambda r: (-toks[r[0].prompt_id].input_ids.shape[0], r[0].prompt_id, r[1]))
            batches += [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
        written = 0
        with Progress("generate", sum(map(len, units)), unit="responses", quiet=config.quiet) as progress:
            for batch in batches:
                ids = [response_id(p.prompt_id, k) for p, k in batch]
                if all(i in have for i in ids):
                    progress.update(len(batch))
                    continue
                seeds = [response_seed(config.seed, p.prompt_id, k) for p, k in batch]
                out = generate_batch(model, tokenizer, [toks[p.prompt_id] for p, _ in batch], seeds, params)
                data = {"response_id": ids, "prompt_id": [p.prompt_id for p, _ in batch],
                        "sample_idx": [k for _, k in batch], "text": [t for _, t, _ in out],
                        "gen_params": [json.dumps({**params.to_dict(), "finish": f, "token_ids": t.tolist()})
                                       for t, _, f in out],
                        "seed": seeds, "source": ["generated"] * len(batch), "run_id": [run_id] * len(batch)}
                written += store.insert("responses", data, on_conflict="ignore")  # one batch, one commit
                progress.update(len(batch), tokens=int(sum(t.shape[0] for t, _, _ in out)))
        return written


def _stored_units(store: Any, config: IngestConfig) -> dict[str, int]:
    """Unit of work of every response in the store (``ingest.units``). In a part these are the
    global units: the part holds whole units, the first of which starts its sorted ids."""
    from ingest.units import unit_of

    return unit_of(store.sql("SELECT response_id FROM responses").fetchnumpy()["response_id"].tolist(),
                   config.shard_unit)


def _label(store: Any, judge: Any, config: IngestConfig) -> tuple[int, int]:
    """(labels written, of which abstentions: unreadable verdicts, stored with expressed NULL)."""
    from ingest.judges import JudgeItem
    from ingest.units import runs_of

    values = list(config.values or VALUE_SLUGS)
    abstained = 0
    with _stage(store, "label", config) as run_id:
        pending = store.sql(
            "SELECT r.response_id, p.user_text, r.text, "
            "list(l.value) FILTER (WHERE l.value IS NOT NULL) AS have "
            "FROM responses r JOIN prompts p USING (prompt_id) "
            "LEFT JOIN labels l ON l.response_id = r.response_id AND l.judge_id = ? "
            "GROUP BY r.response_id, p.user_text, r.text ORDER BY r.response_id", [judge.judge_id]).fetchall()
        unit = _stored_units(store, config)
        items = []
        for rid, query, text, have in pending:
            missing = tuple(v for v in values if v not in set(have or ()))
            if missing:
                items.append(JudgeItem(rid, query, text, missing))
        # Unit by unit, by response id: a judge call never mixes units (see ingest.units).
        items.sort(key=lambda x: (unit[x.response_id], x.response_id))
        chunks = [items[r.start:r.stop][i:i + JUDGE_CHUNK] for r in runs_of([unit[x.response_id] for x in items])
                  for i in range(0, len(r), JUDGE_CHUNK)]
        written = 0
        with Progress("label", len(items), unit="responses", quiet=config.quiet) as progress:
            for chunk in chunks:
                labels = judge.judge(chunk)
                abstained += sum(x.expressed is None for x in labels)
                written += store.insert("labels", {
                    "response_id": [x.response_id for x in labels], "value": [x.value for x in labels],
                    "judge_id": [x.judge_id for x in labels], "expressed": [None if x.expressed is None else bool(x.expressed) for x in labels],
                    "score": [x.score for x in labels], "raw": [x.raw for x in labels],
                    "run_id": [run_id] * len(labels)}, on_conflict="ignore")
                progress.update(len(chunk))
        return written, abstained


def _capture(store: Any, model: Any, tokenizer: Any, checked: _Checked, config: IngestConfig) -> int:
    from ingest.adapters import adapter_for
    from ingest.stage_capture import CaptureRecord, capture_records, store_weights
    from ingest.tokenize import TokenizedRecord, tokenize_prompt, with_response

    with _stage(store, "capture", config) as run_id:
        rows = store.sql(
            "SELECT r.response_id, r.prompt_id, p.system_text, p.user_text, r.text, r.gen_params "
            "FROM responses r JOIN prompts p USING (prompt_id) "
            "WHERE r.response_id NOT IN (SELECT response_id FROM records WHERE response_id IS NOT NULL) "
            "ORDER BY r.response_id").fetchall()
        prompt_toks: dict[str, Any] = {}
        records = []
        for rid, pid, system, user, text, gen in rows:
            if pid not in prompt_toks:
                msgs = ([{"role": "system", "content": system}] if system is not None else []) + \
                       [{"role": "user", "content": user}]
                prompt_toks[pid] = tokenize_prompt(tokenizer, msgs)
            ids = json.loads(gen).get("token_ids") if gen else None
            rec = with_response(tokenizer, prompt_toks[pid], text, response_ids=ids)
            # Keep ids and roles only: the plan holds every pending record, and its text is in the store.
            records.append(CaptureRecord(rid, pid, TokenizedRecord(rec.input_ids, rec.roles, rec.prompt_len, "")))
        del prompt_toks
        store_weights(store, model, adapter_for(model), checked.layers, config.weights)
        arrays = _array_plan(config, checked.shapes, checked.layers, checked.dtype)
        if config.shard is not None:  # a part with nothing to capture still declares what the others hold
            store.declare_arrays(arrays.specs())
        unit = _stored_units(store, config)
        return capture_records(store, model, tokenizer, records, arrays, token_budget=config.token_budget,
                               batch_bytes=config.batch_bytes(), run_id=run_id, quiet=config.quiet,
                               units=[unit[r.response_id] for r in records])


# -- public calls ----------------------------------------------------------------------------------

def _load(config: IngestConfig, checked: _Checked) -> tuple[Any, Any]:
    from ingest.models import load_model
    from ingest.threads import configure

    configure(config.threads)
    if config.quiet:  # transformers' own bars and notices go to stderr too
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    return load_model(checked.model, dtype=config.dtype, device=config.device,
                      trust_remote_code=config.trust_remote_code, quiet=config.quiet)


def run(config: IngestConfig) -> Report:
    """The whole pipeline: prompts, generation, judging, capture (with a shard: its share, into its part)."""
    state = _peek(config.target)
    checked = _check_model(config, state, capture=True)
    prompts = prompt_set(config)
    units = generation_units(prompts, config)
    config = with_judge(config, checked.model)
    judge = make_judge(config)
    model, tokenizer = _load(config, checked)
    rep = Report(config.target)
    with _open_store(config) as store:
        _set_model(store, checked, model, tokenizer)
        rep.counts["prompts"] = _write_prompts(store, _prompts_of(prompts, units), tokenizer, config)
        rep.counts["responses"] = _generate(store, model, tokenizer, units, config)
        rep.counts["labels"], rep.abstentions = _label(store, judge, config)
        rep.counts["records"] = _capture(store, model, tokenizer, checked, config)
    return rep


def generate(config: IngestConfig) -> Report:
    """Prompts and responses only (with a shard: its share, into its part)."""
    state = _peek(config.target)
    checked = _check_model(config, state, capture=False)
    prompts = prompt_set(config)
    units = generation_units(prompts, config)
    model, tokenizer = _load(config, checked)
    rep = Report(config.target)
    with _open_store(config) as store:
        _set_model(store, checked, model, tokenizer)
        rep.counts["prompts"] = _write_prompts(store, _prompts_of(prompts, units), tokenizer, config)
        rep.counts["responses"] = _generate(store, model, tokenizer, units, config)
    return rep


def _no_store(config: IngestConfig, stage: str, makers: str) -> StoreNotFoundError:
    # a missing store is not a usage error (exit 1, as everywhere else)
    if config.shard is None:
        return StoreNotFoundError(f"no store at {config.store}; create it with {makers}")
    return StoreNotFoundError(f"no part at {config.target}; a sharded {stage} works on the part that {makers} with "
                      f"--shard {config.shard} wrote: run that first (or {stage} {config.store} without a shard)")


def label(config: IngestConfig) -> Report:
    """Judge every response that lacks a label of this judge for the config's values (with a shard:
    those of its part)."""
    state = _peek(config.target)
    if state is None:
        raise _no_store(config, "label", "'actstore ingest run' or 'generate'")
    config = with_judge(config, config.model or state.model)
    if config.judge is not None and config.judge.startswith(("hf:", "embed")):  # a local judge model runs here
        from ingest.threads import configure

        configure(config.threads)
    judge = make_judge(config)
    rep = Report(config.target)
    with _open_store(config) as store:
        rep.counts["labels"], rep.abstentions = _label(store, judge, config)
    return rep


def capture(config: IngestConfig) -> Report:
    """Capture every response in the store that has no record yet (with a shard: in its part)."""
    state = _peek(config.target)
    if state is None:
        raise _no_store(config, "capture", "'actstore ingest run', 'generate' or 'import'")
    checked = _check_model(config, state, capture=True)
    model, tokenizer = _load(config, checked)
    rep = Report(config.target)
    with _open_store(config) as store:
        _set_model(store, checked, model, tokenizer)
        rep.counts["records"] = _capture(store, model, tokenizer, checked, config)
    return rep


def import_(config: IngestConfig) -> Report:
    """Value Portrait's responses with their human-derived labels, then capture (no generation; with a
    shard: its share of the responses, into its part)."""
    from ingest.importers import fit_to_context, import_value_portrait, load_import, model_context
    from ingest.units import share

    if not config.import_path:
        raise UsageError("nothing to import; pass the Value Portrait directory or tagged_responses.json")
    tagged = load_import(config)  # validates the file before anything else
    keep = None
    if config.shard is not None:
        keep = {rid for unit in share((t.response_id for t in tagged), config.shard_unit, config.shard_spec)
                for rid in unit}
    state = _peek(config.target)
    checked = _check_model(config, state, capture=True)
    model, tokenizer = _load(config, checked)
    # Records longer than the model reads: the --overlong rule, decided before the store opens.
    limit = config.max_tokens or model_context(model)
    fit = fit_to_context(tagged, tokenizer, limit, config.overlong, config.intrinsic_system) if limit else None
    rep = Report(config.target)
    with _open_store(config) as store:
        _set_model(store, checked, model, tokenizer)
        with _stage(store, "import", config, {"overlong": fit.summary()} if fit else None) as run_id:
            rep.counts.update(import_value_portrait(store, tagged, tokenizer, config, run_id, keep=keep, fit=fit))
        if fit is not None and (fit.skipped or fit.truncated):
            rep.counts["skipped (overlong)"] = len(fit.skipped)
            rep.counts["truncated (overlong)"] = len(fit.truncated)
        rep.counts["records"] = _capture(store, model, tokenizer, checked, config)
    return rep


__all__ = ["Report", "capture", "generate", "generation_units", "import_", "label", "make_judge", "prompt_set",
           "run", "with_judge"]
