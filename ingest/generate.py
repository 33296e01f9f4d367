"""Batched sampling with one random stream per response.

Hugging Face's ``generate`` samples every row of a batch from one global generator, so a response
depends on which other prompts shared its batch and in what order. Here each row carries its own
``torch.Generator`` seeded by :func:`response_seed` (a hash of the run seed, the prompt id and the
sample index), and sampling happens in a logits processor that hands ``generate`` a one-hot score
row, which greedy decoding then picks. A response is thus determined by its recorded seed and the
model's logits (which, across batch shapes, agree to rounding; see ``ingest.capture``).

Prompts are left-padded (the tokenizer from ``load_model`` pads left) so that every row's new tokens
start at the same column. Only our recorded parameters act on the logits: ``generate`` gets a fresh
``GenerationConfig`` (no repetition penalty or top-k from the checkpoint's defaults).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from ingest.prompts import stable_id
from ingest.tokenize import TokenizedRecord, collate


@dataclass(frozen=True, slots=True)
class GenParams:
    """Sampling parameters, recorded with every response (``responses.gen_params``)."""

    max_new_tokens: int
    temperature: float
    top_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def response_id(prompt_id: str, sample: int) -> str:
    return f"{prompt_id}#s{sample}"


def response_seed(seed: int, prompt_id: str, sample: int) -> int:
    """A 63-bit seed per response, independent of batch composition and order."""
    return int(stable_id(seed, prompt_id, sample, length=16), 16) & ((1 << 63) - 1)


class _RowSampler:
    """A logits processor that samples each row with its own generator (temperature, top-p)."""

    def __init__(self, seeds: Sequence[int], params: GenParams, device: torch.device) -> None:
        self.params = params
        self.gens = []
        for s in seeds:
            g = torch.Generator(device=device)
            g.manual_seed(int(s))
            self.gens.append(g)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.params.temperature == 0:
            return scores  # greedy: generate() takes the argmax itself
        logits = scores.float() / self.params.temperature
        if self.params.top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            cum = sorted_logits.softmax(-1).cumsum(-1)
            # Drop a token when the tokens ranked above it already reach top_p (the first always stays).
            drop_sorted = (cum - sorted_logits.softmax(-1)) >= self.params.top_p
            drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(-1)
        # One draw per row (a loop over rows, not tokens), each from the row's own stream.
        picks = torch.stack([torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(self.gens)])
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, picks[:, None], 0.0)
        return out


def _stop_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None) if gen is not None else None
    for x in ([eos] if isinstance(eos, int) else list(eos or [])) + [tokenizer.eos_token_id]:
        if x is not None and int(x) not in ids:
            ids.append(int(x))
    return ids


def generate_batch(model: Any, tokenizer: Any, prompts: Sequence[TokenizedRecord], seeds: Sequence[int],
                   params: GenParams) -> list[tuple[np.ndarray, str, str]]:
    """Generate one response per prompt row: ``[(token_ids int32[n], text, finish)]``.

    ``finish`` is "stop" (an end-of-turn token ended it; that token is not kept) or "length".
    """
    from transformers import GenerationConfig, LogitsProcessorList

    device = next(model.parameters()).device
    ids, mask, _ = collate(prompts, tokenizer.pad_token_id, side="left")
    stops = _stop_ids(model, tokenizer)
    cfg = GenerationConfig(max_new_tokens=params.max_new_tokens, do_sample=False, num_beams=1,
                           pad_token_id=tokenizer.pad_token_id, eos_token_id=stops or None)
    sampler = _RowSampler(seeds, params, device)
    with torch.no_grad():
        out = model.generate(input_ids=torch.from_numpy(ids).to(device),
                             attention_mask=torch.from_numpy(mask).to(device),
                             generation_config=cfg, logits_processor=LogitsProcessorList([sampler]))
    new = out[:, ids.shape[1]:].to("cpu").numpy()
    results = []
    stop_set = np.asarray(stops, dtype=np.int64)
    for row in new:
        hit = np.flatnonzero(np.isin(row, stop_set)) if stop_set.size else np.empty(0, dtype=np.int64)
        end = int(hit[0]) if hit.size else row.shape[0]
        kept = row[:end].astype(np.int32)
        text = tokenizer.decode(kept.tolist(), skip_special_tokens=True)
        results.append((kept, text, "stop" if hit.size else "length"))
    return results
