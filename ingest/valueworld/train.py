"""Train the value-world chat model: ``python -m ingest.valueworld.train --out DIR [--seed 0] [--steps N]``.

A small Llama (standard Hugging Face architecture, so the real loading and hooking code applies) is
trained from scratch on :func:`ingest.valueworld.corpus.generate`, with the loss on assistant tokens
only. Everything follows from the seed on a fixed thread count: same seed, same machine type, same
weights.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from actstore.errors import InputError
from ingest.valueworld.corpus import CorpusConfig, generate
from ingest.valueworld.pools import PHRASES
from ingest.valueworld.tokenizer import ROLE_TOKENS, train_tokenizer


@dataclass(frozen=True, slots=True)
class TrainConfig:
    seed: int = 0
    # 1000 left the value choice under-learned (prompted 0.35); 3000 with single-phrase leads gave 0.78;
    # 4000 with lead_repeats=2 gives 0.93 (ingest/valueworld/README.md)
    steps: int = 4000
    batch_size: int = 16
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.01
    vocab_size: int = 3000
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    max_len: int = 128
    # One thread: the weights then do not depend on the core count, and on a shared machine one thread
    # beats two that spin-wait at every OpenMP barrier (measured: 1.3 s vs 5-20 s per step under load).
    threads: int = 1
    decision_weight: float = 8.0  # loss weight on the tokens where a value is chosen (see _encode)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden", "layers", "heads", "intermediate", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}={getattr(self, name)} must be at least 1")
        if self.hidden % self.heads:
            raise InputError(f"hidden={self.hidden} is not divisible by heads={self.heads}; pick matching sizes")


def _phrase_starts(d, text: str) -> list[int]:
    """Character offsets in ``text`` where the answer's value phrases begin (every phrase, repeats too)."""
    base = text.rindex(d.assistant)
    out = []
    for v in dict.fromkeys(d.values):
        for phrase in PHRASES[d.lang][v]:
            at = d.assistant.find(phrase)
            if at >= 0:
                out.append(base + at)
    return sorted(out)


def _encode(tokenizer, dialogues, max_len: int, decision_weight: float) -> list[tuple[list[int], list[float]]]:
    """Token ids and per-token loss weights: 0 outside the answer (and its closing end token), 1 inside,
    ``decision_weight`` on the answer's first token and the first two tokens of each value phrase.

    Why the extra weight: which value an answer expresses is decided at those few tokens (about 1 in 25
    answer tokens, worth ~0.04 nats/token of loss), so with uniform weights the model learns phrases long
    before it learns to condition the choice on the system prompt and topic.
    """
    rendered = [tokenizer.apply_chat_template(d.messages(), tokenize=False) for d in dialogues]
    enc = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
    assistant_id = tokenizer.convert_tokens_to_ids(ROLE_TOKENS["assistant"])
    out = []
    for d, text, ids, offsets in zip(dialogues, rendered, enc["input_ids"], enc["offset_mapping"], strict=True):
        start = ids.index(assistant_id) + 1
        weights = [1.0 if i >= start else 0.0 for i in range(len(ids))]
        weights[start] = decision_weight  # opener, refusal or compliance: decided here
        for char in _phrase_starts(d, text):
            # byte-level BPE offsets may include the leading space: match the token that covers `char`
            first = next(i for i, (a, b) in enumerate(offsets) if i >= start and b > char)
            for i in (first, first + 1):
                weights[i] = decision_weight
        out.append((ids[:max_len], weights[:max_len]))
    return out


def build(out_dir: str | Path, seed: int = 0, steps: int | None = None, cfg: TrainConfig | None = None,
          verbose: bool = False) -> Path:
    """Generate the corpus, train tokenizer and model, save both to ``out_dir``; returns the directory."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    cfg = cfg or TrainConfig(seed=seed, corpus=CorpusConfig(seed=seed))
    if steps is not None:
        cfg = TrainConfig(**{**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__}, "steps": steps})
    out = Path(out_dir)
    t0 = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    dialogues = generate(cfg.corpus)
    tokenizer = train_tokenizer((t for d in dialogues for t in (d.system or "", d.user, d.assistant)),
                                vocab_size=cfg.vocab_size)
    data = _encode(tokenizer, dialogues, cfg.max_len, cfg.decision_weight)

    mcfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden, intermediate_size=cfg.intermediate,
        num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads, num_key_value_heads=cfg.heads,
        max_position_embeddings=256, tie_word_embeddings=True,  # tied: halves the checkpoint
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(mcfg).float()
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98))

    def lr_at(step: int) -> float:  # linear warm-up, cosine down to a tenth
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return cfg.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * frac)))

    gen = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(data), generator=gen).tolist()
    cursor, losses = 0, []
    for step in range(cfg.steps):
        if cursor + cfg.batch_size > len(order):
            order, cursor = torch.randperm(len(data), generator=gen).tolist(), 0
        batch = [data[i] for i in order[cursor:cursor + cfg.batch_size]]
        cursor += cfg.batch_size
        width = max(len(ids) for ids, _ in batch)
        ids_t = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        weights = torch.zeros((len(batch), width))
        for row, (ids, w) in enumerate(batch):
            ids_t[row, :len(ids)] = torch.tensor(ids)
            attn[row, :len(ids)] = 1
            weights[row, :len(ids)] = torch.tensor(w)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=ids_t, attention_mask=attn).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids_t[:, 1:].reshape(-1),
                                                reduction="none")
        w = weights[:, 1:].reshape(-1)  # token t is predicted at position t-1
        loss = (nll * w).sum() / w.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if verbose and (step % 50 == 0 or step == cfg.steps - 1):
            print(f"step {step:4d}  loss {loss.item():.3f}  {time.perf_counter() - t0:6.1f} s", file=sys.stderr)

    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=96,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    meta = {
        "name": "valueworld", "seed": cfg.seed, "steps": cfg.steps, "train_config": asdict(cfg),
        "final_loss": sum(losses[-20:]) / len(losses[-20:]), "train_seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }
    (out / "valueworld.json").write_text(json.dumps(meta, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ingest.valueworld.train", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="directory to write the model and tokenizer to")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {TrainConfig().steps})")
    args = ap.parse_args(argv)
    path = build(args.out, seed=args.seed, steps=args.steps, verbose=True)
    meta = json.loads((path / "valueworld.json").read_text())
    print(f"saved {path}: loss {meta['final_loss']:.3f}, {meta['train_seconds']} s")


if __name__ == "__main__":
    main()
