"""Batched generation under interventions: left-padded prompts, the same ids ingest would feed.

Prompts are tokenized with :func:`ingest.tokenize.tokenize_prompt` (the chat template, or the plain
format for tokenizers without one), so a steered answer starts from exactly the ids an ingest run
generates from. Batches are padded on the left, so every prompt ends at the same column and
"generated tokens" are one suffix of the batch (see :mod:`.interventions`).

Sampling: ``temperature == 0`` is greedy (deterministic, and the same tokens batched or one by
one). With sampling, each batch seeds torch's generator from ``seed`` and its first row's index, so
a sweep re-run with the same spec draws the same tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from actstore.errors import InputError
from analyses.steering.interventions import Intervention, Steering
from ingest.tokenize import collate, tokenize_prompt

Chat = Sequence[Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class GenConfig:
    """How to generate. ``temperature`` 0 = greedy."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens={self.max_new_tokens}; generate at least 1 token")
        if self.temperature < 0:
            raise InputError(f"temperature={self.temperature}; use 0 (greedy) or a positive number")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p={self.top_p}; use a number in (0, 1]")
        if self.batch_size < 1:
            raise InputError(f"batch_size={self.batch_size}; use 1 or more")


def _device(model: Any) -> torch.device:
    dev = getattr(model, "device", None)
    return dev if isinstance(dev, torch.device) else next(model.parameters()).device


def generate(model: Any, tokenizer: Any, chats: Sequence[Chat], cfg: GenConfig = GenConfig(),
             interventions: Sequence[Intervention] = (), *, adapter: Any = None) -> list[str]:
    """One answer per chat (``[{"role": "system"|"user", "content": ...}, ...]``), in order.

    ``interventions`` are installed for the whole call and removed afterwards.
    """
    if isinstance(chats, (str, bytes)) or not len(chats):
        raise InputError("generate needs a non-empty list of chats (each a list of role/content dicts)")
    pad = tokenizer.pad_token_id
    if pad is None:
        pad = tokenizer.eos_token_id
    if pad is None:
        raise InputError("the tokenizer has neither a pad nor an eos token; set tokenizer.pad_token")
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None) or tokenizer.eos_token_id
    prompts = [tokenize_prompt(tokenizer, chat) for chat in chats]
    dev = _device(model)
    steering = Steering(model, interventions, adapter=adapter) if interventions else None
    out: list[str] = []
    with torch.no_grad(), (steering if steering is not None else nullcontext()):
        for lo in range(0, len(prompts), cfg.batch_size):
            batch = prompts[lo:lo + cfg.batch_size]
            ids, mask, _ = collate(batch, pad, side="left")
            width = ids.shape[1]
            if steering is not None:
                steering.prompt_width = width
            sample = cfg.temperature > 0
            kw: dict[str, Any] = {"do_sample": sample}
            if sample:
                torch.manual_seed(cfg.seed * 1_000_003 + lo)
                kw.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
            else:  # pin greedy: a checkpoint's generation_config may ask for sampling
                kw.update(temperature=None, top_p=None, top_k=None)
            gen = model.generate(input_ids=torch.as_tensor(ids, device=dev),
                                 attention_mask=torch.as_tensor(mask, device=dev),
                                 max_new_tokens=cfg.max_new_tokens, pad_token_id=pad, eos_token_id=eos, **kw)
            out += tokenizer.batch_decode(gen[:, width:].cpu(), skip_special_tokens=True)
    return out


def chat(user: str, system: str | None = None) -> list[dict[str, str]]:
    """``[{"role": "system", ...}, {"role": "user", ...}]`` (no system turn when ``system`` is None)."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
