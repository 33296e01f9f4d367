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
"""

from __future__ import annotations

from collections.abc import Collection
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


def import_value_portrait(store: Any, tagged: list[TaggedResponse], tokenizer: Any, config: IngestConfig,
                          run_id: int, keep: Collection[str] | None = None) -> dict[str, int]:
    """Write prompts, responses and labels (each keyed, so a rerun adds nothing twice). ``keep``: write
    only these response ids (a shard's share), with the prompts they need; sample indexes still count
    every tagged response, so a share's rows are those of a whole import."""
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
    if keep is not None:
        mine = [i for i, t in enumerate(tagged) if t.response_id in keep]
        tagged, prompt_of, sample = [tagged[i] for i in mine], [prompt_of[i] for i in mine], [sample[i] for i in mine]
        asked = set(prompt_of)
        prompts = {pid: p for pid, p in prompts.items() if pid in asked}
    have = set(store.sql("SELECT prompt_id FROM prompts").fetchnumpy()["prompt_id"].tolist())
    new = [p for p in prompts.values() if p.prompt_id not in have]
    n_prompts = store.insert("prompts", prompt_rows(new, tokenizer, quiet=config.quiet),
                             on_conflict="ignore") if new else 0
    n = len(tagged)
    n_responses = store.insert("responses", {
        "response_id": [t.response_id for t in tagged], "prompt_id": prompt_of, "sample_idx": sample,
        "text": [t.response for t in tagged], "gen_params": [None] * n, "seed": [None] * n,
        "source": [SOURCE] * n, "run_id": [run_id] * n}, on_conflict="ignore")
    labels = [lab for t in tagged for lab in t.labels(judge_id(config.import_threshold))]
    n_labels = store.insert("labels", {
        "response_id": [x.response_id for x in labels], "value": [x.value for x in labels],
        "judge_id": [x.judge_id for x in labels], "expressed": [bool(x.expressed) for x in labels],
        "score": [x.score for x in labels], "raw": [x.raw for x in labels],
        "run_id": [run_id] * len(labels)}, on_conflict="ignore")
    return {"prompts": n_prompts, "responses": n_responses, "labels": n_labels}
