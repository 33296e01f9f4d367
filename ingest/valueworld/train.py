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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from actstore.errors import InputError
from ingest.valueworld.corpus import CorpusConfig, generate
from ingest.valueworld.tokenizer import ROLE_TOKENS, train_tokenizer


@dataclass(frozen=True, slots=True)
class TrainConfig:
    seed: int = 0
    steps: int = 450
    batch_size: int = 32
    lr: float = 3e-3
    warmup: int = 30
    weight_decay: float = 0.01
    vocab_size: int = 3000
    hidden: int = 128
    layers: int = 4
    heads: int = 4
    intermediate: int = 512
    max_len: int = 128
    threads: int = 2  # fixed, because float reductions (and so the weights) depend on the thread count
    corpus: CorpusConfig = field(default_factory=CorpusConfig)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden", "layers", "heads", "intermediate", "threads"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}={getattr(self, name)} must be at least 1")
        if self.hidden % self.heads:
            raise InputError(f"hidden={self.hidden} is not divisible by heads={self.heads}; pick matching sizes")


def _encode(tokenizer, dialogues, max_len: int) -> list[tuple[list[int], list[bool]]]:
    """Token ids and a loss mask that is true on the answer and its closing end token only."""
    rendered = [tokenizer.apply_chat_template(d.messages(), tokenize=False) for d in dialogues]
    ids_list = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    assistant_id = tokenizer.convert_tokens_to_ids(ROLE_TOKENS["assistant"])
    out = []
    for ids in ids_list:
        start = ids.index(assistant_id) + 1
        ids = ids[:max_len]
        out.append((ids, [i >= start for i in range(len(ids))]))
    return out


def build(out_dir: str | Path, seed: int = 0, steps: int | None = None, cfg: TrainConfig | None = None) -> Path:
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
    data = _encode(tokenizer, dialogues, cfg.max_len)

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
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for row, (ids, mask) in enumerate(batch):
            ids_t[row, :len(ids)] = torch.tensor(ids)
            attn[row, :len(ids)] = 1
            labels[row, :len(ids)] = torch.where(torch.tensor(mask), torch.tensor(ids), -100)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=ids_t, attention_mask=attn, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())

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
    ap.add_argument("--steps", type=int, default=None, help=f"optimizer steps (default {TrainConfig.steps})")
    args = ap.parse_args(argv)
    path = build(args.out, seed=args.seed, steps=args.steps)
    meta = json.loads((path / "valueworld.json").read_text())
    print(f"saved {path}: loss {meta['final_loss']:.3f}, {meta['train_seconds']} s")


if __name__ == "__main__":
    main()
