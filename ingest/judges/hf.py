"""A local Hugging Face chat model as judge.

Two ways to read its verdict (``scoring``):

- ``logprob`` (the default): one forward pass per prompt, and the next-token probabilities of the
  answer options are the verdict. Yes/no mode: score = P(Yes) / (P(Yes) + P(No)), summing the usual
  spellings of each; 1-5 mode: the expected rating under P(1..5). It never fails to parse and gives a
  graded score per (response, value); expressed = score >= ``threshold`` (0.5 / 4 by default, or one
  chosen by ``actstore judge eval``).
- ``generate``: greedy decoding (a judge should give the same verdict twice) and the text parsed;
  an unreadable answer is an abstention (``expressed`` None).

``prompt``: ``per-value`` asks one question per (response, value); ``all`` (the default with logprob)
asks once per response which of the ten values (listed as letters A-J) the reply expresses most, and
the score of a value is the probability of its letter. On SmolLM2-135M, 50 Value Portrait responses,
the all-ten prompt had the better kappa (mostly the values' base rates) and the per-value prompt
ranked better within each value, every interval overlapping, at a sixth of the forward passes for
all-ten (README, Judges); its scores sum to one over the values, so a response that expresses two
values shares the mass between them.

Batched with left padding, so that every row's last position is its own prompt's end. torch and
transformers are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from actstore.errors import InputError, ModelError
from ingest.values import VALUE_SLUGS

from .base import JudgeItem, Label, expand
from .rubric import LETTERS, MODES, Mode, all_values_messages, judge_messages, read_verdict

SCORINGS = ("logprob", "generate")
PROMPTS = ("per-value", "all")
#: Spellings whose first token counts towards each answer option.
_OPTIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "yesno": {"yes": ("Yes", " Yes", "yes", " yes", "YES"), "no": ("No", " No", "no", " no", "NO")},
    "score": {str(k): (str(k), f" {k}") for k in range(1, 6)},
    "all": {c: (c, f" {c}") for c in LETTERS},
}
#: What the assistant's turn starts with before the scored token (so that it comes next).
_PREFILL = {"yesno": "", "score": "Score:", "all": "Answer:"}


def option_ids(tokenizer: Any, kind: str) -> dict[str, list[int]]:
    """Answer option -> the token ids that start its spellings: single-token spellings where the
    tokenizer has them, else first tokens; a token that starts spellings of two options counts for
    neither."""
    first: dict[str, set[int]] = {}
    for opt, spellings in _OPTIONS[kind].items():
        ids = [tokenizer.encode(w, add_special_tokens=False) for w in spellings]
        first[opt] = {t[0] for t in ids if len(t) == 1} or {t[0] for t in ids if t}
    owners: dict[int, int] = {}
    for toks in first.values():
        for t in toks:
            owners[t] = owners.get(t, 0) + 1
    out = {opt: sorted(t for t in toks if owners[t] == 1) for opt, toks in first.items()}
    empty = [o for o, ids in out.items() if not ids]
    if empty:
        raise InputError(f"the tokenizer has no token of its own for answer {empty[0]!r}; use scoring=generate")
    return out


def hf_options(options: Sequence[str]) -> dict[str, str]:
    """Constructor keywords from a spec's ``#`` options (``hf:PATH#generate,score``)."""
    kw: dict[str, str] = {}
    for o in options:
        key = "scoring" if o in SCORINGS else "prompt" if o in PROMPTS else "mode" if o in MODES else None
        if key is None:
            raise InputError(f"unknown hf judge option {o!r}; use {', '.join(SCORINGS + PROMPTS + MODES)}")
        kw[key] = o
    return kw


class HFChatJudge:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        mode: Mode = "yesno",
        batch_size: int = 8,
        max_new_tokens: int = 8,
        threshold: float | None = None,
        judge_id: str | None = None,
        scoring: str = "logprob",
        prompt: str | None = None,
    ) -> None:
        # Default: the all-ten prompt when reading probabilities (on SmolLM2 neither prompt was shown
        # better with people, and it costs a sixth of the forward passes; README, Judges), else one per value.
        prompt = prompt or ("all" if scoring == "logprob" else "per-value")
        if mode not in MODES:
            raise InputError(f"unknown judge mode {mode!r}; use one of {', '.join(MODES)}")
        if scoring not in SCORINGS or prompt not in PROMPTS:
            raise InputError(f"scoring={scoring!r}, prompt={prompt!r}; use scoring in {SCORINGS} and prompt in {PROMPTS}")
        if prompt == "all" and scoring != "logprob":
            raise InputError("prompt='all' reads letter probabilities: use it with scoring='logprob'")
        if batch_size < 1 or max_new_tokens < 1:
            raise InputError("batch_size and max_new_tokens must be at least 1")
        self.model, self.tokenizer = model, tokenizer
        self.mode, self.batch_size, self.max_new_tokens = mode, batch_size, max_new_tokens
        self.scoring, self.prompt = scoring, prompt
        if threshold is None:
            # 4 = "clearly" on the 1-5 scale; 0.5 = Yes likelier than No; 0.2 = twice a uniform tenth.
            threshold = 0.2 if prompt == "all" else 4.0 if mode == "score" else 0.5 if scoring == "logprob" else 4.0
        self.threshold = float(threshold)
        name = getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
        self.judge_id = judge_id or self.default_id(name)
        # Padding side is passed per call (not set on the tokenizer), so a tokenizer shared with
        # generation code is left as it was. A missing pad token has to be set; any id works, as the
        # attention mask hides it, and EOS is the usual choice.
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def default_id(self, name: str) -> str:
        """``hf:NAME:MODE`` for generated verdicts (as before scores existed), else
        ``hf:NAME:MODE:logprob[-all]``, plus ``@t=`` when a threshold other than the default is set."""
        kind = "" if self.scoring == "generate" else ":logprob" + ("-all" if self.prompt == "all" else "")
        return f"hf:{name}:{self.mode}{kind}"

    @classmethod
    def from_pretrained(cls, name_or_path: str, device: str = "cpu", dtype: str = "auto", **kw: Any) -> HFChatJudge:
        """Load a judge by hub name, local directory or local ``.gguf`` file; ``kw`` as for the constructor."""
        try:
            from ingest.models import load_model
        except ImportError:
            raise ModelError("transformers is not installed; pip install 'actstore[models]'") from None
        # The one loader of the project: local directories, hub names offline, .gguf files, shortcuts.
        model, tok = load_model(name_or_path, dtype=dtype, device=device)
        judge = cls(model, tok, **kw)
        if "judge_id" not in kw:
            judge.judge_id = judge.default_id(name_or_path)
        return judge

    def _chat(self, msgs: list[dict[str, str]], prefill: str = "") -> str:
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        else:
            # No chat template (base models, test tokenizers): a plain transcript with an open answer slot.
            text = "\n\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\n\nassistant:"
        return text + prefill

    def render(self, item: JudgeItem, value: str) -> str:
        prefill = _PREFILL[self.mode] if self.scoring == "logprob" else ""
        return self._chat(judge_messages(item.query, item.response, value, self.mode), prefill)

    def render_all(self, item: JudgeItem) -> str:
        return self._chat(all_values_messages(item.query, item.response), _PREFILL["all"])

    def next_token_probs(self, texts: Sequence[str]) -> Any:
        """``[len(texts), vocab]`` float32 next-token probabilities after each rendered prompt."""
        import torch

        device = next(self.model.parameters()).device
        rows = []
        for start in range(0, len(texts), self.batch_size):
            chunk = list(texts[start : start + self.batch_size])
            enc = self.tokenizer(
                chunk, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
            ).to(device)
            with torch.no_grad():
                logits = self.model(**enc).logits[:, -1, :]
            rows.append(torch.softmax(logits.float(), dim=-1).cpu())
        return torch.cat(rows) if rows else torch.zeros((0, 0))

    def _option_mass(self, probs: Any, kind: str) -> tuple[Any, list[str]]:
        """``[n, n_options]`` probability of each option (summed over its spellings), and the options."""
        import torch

        ids = option_ids(self.tokenizer, kind)
        opts = list(ids)
        return torch.stack([probs[:, ids[o]].sum(1) for o in opts], dim=1), opts

    def _judge_logprob(self, items: Sequence[JudgeItem]) -> list[Label]:
        pairs = expand(items)
        if self.prompt == "all":
            mass, opts = self._option_mass(self.next_token_probs([self.render_all(it) for it in items]), "all")
            total = mass.sum(1, keepdim=True).clamp_min(1e-30)
            share = (mass / total).numpy()
            row = {id(it): i for i, it in enumerate(items)}
            labels = []
            for it, v in pairs:
                k = VALUE_SLUGS.index(v)
                s = float(share[row[id(it)], k])
                raw = f"p({LETTERS[k]})={s:.4f} of mass {float(total[row[id(it)], 0]):.4f}"
                labels.append(Label(it.response_id, v, s >= self.threshold, s, self.judge_id, raw))
            return labels
        mass, opts = self._option_mass(self.next_token_probs([self.render(it, v) for it, v in pairs]), self.mode)
        total = mass.sum(1).clamp_min(1e-30)
        labels = []
        for (it, v), m, tot in zip(pairs, mass.numpy(), total.numpy()):
            if self.mode == "yesno":
                s = float(m[0] / tot)  # options are (yes, no)
            else:
                s = float(sum(int(o) * x for o, x in zip(opts, m)) / tot)
            raw = " ".join(f"p({o})={x:.4f}" for o, x in zip(opts, m))
            labels.append(Label(it.response_id, v, s >= self.threshold, s, self.judge_id, raw))
        return labels

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
        if self.scoring == "logprob":
            return self._judge_logprob(items)
        pairs = expand(items)
        raws = self.generate([self.render(it, v) for it, v in pairs])
        labels = []
        for (it, v), raw in zip(pairs, raws):
            expressed, score = read_verdict(raw, self.mode, self.threshold)
            labels.append(Label(it.response_id, v, expressed, score, self.judge_id, raw))
        return labels
