"""A local Hugging Face chat model as judge.

Greedy decoding (a judge should give the same verdict twice), batched with left padding so that every
row's generation starts right after its own prompt. torch and transformers are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actstore.errors import InputError, ModelError

from .base import JudgeItem, Label, expand
from .rubric import MODES, Mode, judge_messages, read_verdict


class HFChatJudge:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mode: Mode = "yesno",
        batch_size: int = 8,
        max_new_tokens: int = 8,
        threshold: float = 4.0,
        judge_id: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown judge mode {mode!r}; use one of {', '.join(MODES)}")
        if batch_size < 1 or max_new_tokens < 1:
            raise InputError("batch_size and max_new_tokens must be at least 1")
        self.model, self.tokenizer = model, tokenizer
        self.mode, self.batch_size, self.max_new_tokens, self.threshold = mode, batch_size, max_new_tokens, threshold
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.judge_id = judge_id or f"hf:{name}:{mode}"
        # Padding side is passed per call (not set on the tokenizer), so a tokenizer shared with
        # generation code is left as it was. A missing pad token has to be set; any id works, as the
        # attention mask hides it, and EOS is the usual choice.
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "cpu", dtype: str = "auto", **kw: Any) -> HFChatJudge:
        """Load a judge by hub name or local path; ``kw`` as for the constructor."""
        try:
            from ingest.models import load_model
        except ImportError:
            raise ModelError("transformers is not installed; pip install 'actstore[models]'") from None
        # The one loader of the project: local directories, hub names offline, .gguf files, shortcuts.
        model, tok = load_model(name_or_path, dtype=dtype, device=device)
        kw.setdefault("judge_id", f"hf:{name_or_path}:{kw.get('mode', 'yesno')}")
        return cls(model, tok, **kw)

    def render(self, item: JudgeItem, value: str) -> str:
        msgs = judge_messages(item.query, item.response, value, self.mode)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        # No chat template (base models, test tokenizers): a plain transcript with an open answer slot.
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\n\nassistant:"

    def generate(self, texts: Sequence[str]) -> list[str]:
        """Raw continuations for a list of rendered prompts, ``batch_size`` at a time."""
        import torch

        out: list[str] = []
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            # Templates already carry special tokens; adding them again would double the BOS.
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            ).to(device)
            with torch.no_grad():
                gen = self.model.generate(
                    **enc,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            out.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        pairs = expand(items)
        raws = self.generate([self.render(it, v) for it, v in pairs])
        labels = []
        for (it, v), raw in zip(pairs, raws):
            expressed, score = read_verdict(raw, self.mode, self.threshold)
            labels.append(Label(it.response_id, v, expressed, score, self.judge_id, raw))
        return labels
