"""Import responses someone else wrote, with their labels: no generation, then capture as usual.

Value Portrait (``ingest.prompts.value_portrait``): each tagged response becomes

* a prompt: its query asked with no value-priority system prompt, so condition ``intrinsic`` (the
  study's definition), source ``value-portrait``; with ``intrinsic_system`` ``default`` no system
  message (a chat template's default system prompt then applies, recorded in ``effective_system``),
  with ``empty`` an empty one, as for generated intrinsic prompts;
* a response: ``response_id`` ``vp-<portrait_id>-<output id>``, ``sample_idx`` its position among
  the query's outputs, source ``imported:value-portrait``, no sampling parameters or seed;
* one label per value with a rho: expressed when rho >= the threshold, score = rho, judge id
  ``value-portrait:rho>=0.3`` (the threshold is part of the id, so two thresholds can coexist).

Records longer than the model can read. A record is the chat-rendered prompt (with whatever the
template adds, e.g. a default system prompt) plus the response, and it must fit the model's context
(``max_position_embeddings``) or ``--max-tokens N``. :func:`fit_to_context` applies one rule, chosen
with ``--overlong``, before the store is opened:

* ``error`` (default): nothing is written; one line says how many records are too long, the longest,
  and the two other rules;
* ``skip``: those responses (and their labels) are not imported; their ids are listed in the import
  run's params (``runs.params -> overlong.skipped``);
* ``truncate``: the response is cut to its first ``max_tokens - prompt tokens`` tokens; the response
  row keeps the captured tokens (``gen_params.token_ids``) and their text, and ``gen_params.overlong``
  says ``{"rule": "truncate", "tokens": <whole record>, "kept": <tokens kept>}``; the human labels are
  those of the whole response. A prompt that alone is too long cannot be cut: that record is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from actstore.errors import InputError
from ingest.config import IngestConfig
from ingest.prompts import Prompt, TaggedResponse, load_value_portrait_tagged

SOURCE = "imported:value-portrait"


def judge_id(threshold: float) -> str:
    return f"value-portrait:rho>={threshold:g}"


def load_import(config: IngestConfig) -> list[TaggedResponse]:
    """Read and check the file named by ``config.import_path`` (before any store is opened)."""
    if not config.import_path:
        raise InputError("nothing to import; pass the Value Portrait directory or tagged_responses.json")
    tagged = load_value_portrait_tagged(config.import_path, threshold=config.import_threshold)
    if not tagged:
        raise InputError(f"{config.import_path}: no tagged responses; point at Value Portrait's tagged_responses.json")
    if config.max_queries is not None:
        keep: list[str] = []
        for t in tagged:
            if t.query.query_id not in keep:
                keep.append(t.query.query_id)
        chosen = set(keep[:config.max_queries])
        tagged = [t for t in tagged if t.query.query_id in chosen]
    return tagged


@dataclass
class Fit:
    """What :func:`fit_to_context` decided: the responses left out, and those cut."""

    rule: str
    max_tokens: int
    n_records: int = 0
    longest: int = 0
    skipped: list[str] = field(default_factory=list)
    #: response id -> (kept response token ids, whole record's tokens, kept record's tokens)
    truncated: dict[str, tuple[list[int], int, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """As recorded in the import run's params (``runs.params -> overlong``)."""
        return {"rule": self.rule, "max_tokens": self.max_tokens, "records": self.n_records,
                "longest": self.longest, "skipped": list(self.skipped),
                "truncated": {rid: {"tokens": whole, "kept": kept} for rid, (_, whole, kept) in self.truncated.items()}}


def model_context(model: Any) -> int | None:
    """The longest input the model's position scheme takes (``max_position_embeddings``), if it says."""
    from ingest.adapters import adapter_for

    cfg = adapter_for(model).text_config_of(model.config)
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if isinstance(n, int) and n > 0 else None


def fit_to_context(tagged: Sequence[TaggedResponse], tokenizer: Any, max_tokens: int, rule: str,
                   intrinsic_system: str = "default") -> Fit:
    """Apply the overlong ``rule`` (error | skip | truncate) to records longer than ``max_tokens``
    (prompt as the chat template renders it + response; ``intrinsic_system`` as the import asks
    it); see the module docstring."""
    from ingest.tokenize import tokenize_prompt

    fit = Fit(rule, max_tokens, len(tagged))
    prompt_len: dict[str, int] = {}
    over: list[tuple[TaggedResponse, int, list[int]]] = []
    for t in tagged:
        p = Prompt.make(t.query, "intrinsic", intrinsic_system=intrinsic_system)
        if p.prompt_id not in prompt_len:
            prompt_len[p.prompt_id] = tokenize_prompt(tokenizer, p.messages()).prompt_len
        ids = list(tokenizer(t.response, add_special_tokens=False)["input_ids"])
        n = prompt_len[p.prompt_id] + len(ids)
        fit.longest = max(fit.longest, n)
        if n > max_tokens:
            over.append((t, prompt_len[p.prompt_id], ids))
    if over and rule == "error":
        raise InputError(
            f"{len(over)} of {len(tagged)} records are longer than {max_tokens} tokens (prompt + response; the "
            f"longest has {fit.longest}); pass --overlong truncate to cut those responses, --overlong skip to "
            "leave them out, or a larger --max-tokens if the model reads further")
    for t, n_prompt, ids in over:
        room = max_tokens - n_prompt
        if rule == "skip" or room < 1:
            fit.skipped.append(t.response_id)
        else:
            fit.truncated[t.response_id] = (ids[:room], n_prompt + len(ids), max_tokens)
    return fit


def import_value_portrait(store: Any, tagged: list[TaggedResponse], tokenizer: Any, config: IngestConfig,
                          run_id: int, keep: Collection[str] | None = None, fit: Fit | None = None) -> dict[str, int]:
    """Write prompts, responses and labels (each keyed, so a rerun adds nothing twice). ``keep``: write
    only these response ids (a shard's share), with the prompts they need; sample indexes still count
    every tagged response, so a share's rows are those of a whole import. ``fit``: the overlong
    rule's decisions (skipped responses are not written; truncated ones keep their cut token ids)."""
    from ingest.pipeline import prompt_rows

    prompts: dict[str, Prompt] = {}
    prompt_of: list[str] = []
    sample: list[int] = []
    seen: dict[str, int] = {}
    for t in tagged:
        p = Prompt.make(t.query, "intrinsic", intrinsic_system=config.intrinsic_system)
        prompts.setdefault(p.prompt_id, p)
        prompt_of.append(p.prompt_id)
        sample.append(seen.get(p.prompt_id, 0))
        seen[p.prompt_id] = sample[-1] + 1
    skipped = set(fit.skipped) if fit is not None else set()
    cut = fit.truncated if fit is not None else {}
    if keep is not None or skipped:
        mine = [i for i, t in enumerate(tagged)
                if (keep is None or t.response_id in keep) and t.response_id not in skipped]
        tagged, prompt_of, sample = [tagged[i] for i in mine], [prompt_of[i] for i in mine], [sample[i] for i in mine]
        asked = set(prompt_of)
        prompts = {pid: p for pid, p in prompts.items() if pid in asked}
    have = set(store.sql("SELECT prompt_id FROM prompts").fetchnumpy()["prompt_id"].tolist())
    new = [p for p in prompts.values() if p.prompt_id not in have]
    n_prompts = store.insert("prompts", prompt_rows(new, tokenizer, quiet=config.quiet),
                             on_conflict="ignore") if new else 0
    n = len(tagged)
    texts = [t.response for t in tagged]
    gen: list[str | None] = [None] * n
    for i, t in enumerate(tagged):
        if t.response_id in cut:
            ids, whole, kept = cut[t.response_id]
            texts[i] = tokenizer.decode(ids, skip_special_tokens=False)
            gen[i] = json.dumps({"token_ids": ids, "overlong": {"rule": "truncate", "tokens": whole, "kept": kept}})
    n_responses = store.insert("responses", {
        "response_id": [t.response_id for t in tagged], "prompt_id": prompt_of, "sample_idx": sample,
        "text": texts, "gen_params": gen, "seed": [None] * n,
        "source": [SOURCE] * n, "run_id": [run_id] * n}, on_conflict="ignore")
    labels = [lab for t in tagged for lab in t.labels(judge_id(config.import_threshold))]
    n_labels = store.insert("labels", {
        "response_id": [x.response_id for x in labels], "value": [x.value for x in labels],
        "judge_id": [x.judge_id for x in labels], "expressed": [bool(x.expressed) for x in labels],
        "score": [x.score for x in labels], "raw": [x.raw for x in labels],
        "run_id": [run_id] * len(labels)}, on_conflict="ignore")
    return {"prompts": n_prompts, "responses": n_responses, "labels": n_labels}
