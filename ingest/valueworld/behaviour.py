"""Measure what the trained value-world model does, with the lexicon judge, on held-out prompts.

``python -m ingest.valueworld`` prints the table for the committed checkpoint.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS, circular_distance
from ingest.valueworld import pools as P
from ingest.valueworld.corpus import EvalPrompt, eval_prompts
from ingest.valueworld.judge import LexiconJudge

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

CHECKPOINT_DIR = Path(__file__).with_name("checkpoint")


def checkpoint_path() -> Path:
    """The committed checkpoint (model + tokenizer), loadable with ``from_pretrained``."""
    if not (CHECKPOINT_DIR / "config.json").is_file():
        raise InputError(f"no value-world checkpoint at {CHECKPOINT_DIR}; build one with "
                         "python -m ingest.valueworld.train --out " + str(CHECKPOINT_DIR))
    return CHECKPOINT_DIR


def load(path: str | Path | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path) if path is not None else checkpoint_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32").eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"  # batched generation needs the prompts flush right
    return model, tokenizer


def generate_responses(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                       chats: list[list[dict[str, str]]], *, temperature: float = 1.0, seed: int = 0,
                       batch_size: int = 128, max_new_tokens: int = 80) -> list[str]:
    """Sample one answer per chat (batched, left-padded); returns the decoded answers."""
    import torch

    torch.manual_seed(seed)
    out: list[str] = []
    for i in range(0, len(chats), batch_size):
        texts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                 for c in chats[i:i + batch_size]]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            # generate comes from GenerationMixin, which transformers 5's PreTrainedModel no longer inherits
            # (the causal-LM classes do); mypy only sees nn.Module.__getattr__
            ids = model.generate(  # type: ignore[operator]
                **enc, do_sample=True, temperature=temperature, top_k=0, top_p=1.0,
                max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id)
        out += tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


@dataclass(frozen=True, slots=True)
class BehaviourConfig:
    seed: int = 0
    temperature: float = 1.0
    intrinsic_samples: int = 20  # per held-out question: the prior needs many draws
    prompted_samples: int = 1  # per (held-out question, value)
    harmful_samples: int = 6  # per (held-out request, system variant)
    batch_size: int = 128
    max_new_tokens: int = 80
    # True: questions, frames and harmful requests never seen in training. False: training templates,
    # fresh samples (held-out seeds), which measures what the model learned rather than how it generalises.
    heldout: bool = True

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise InputError(f"temperature={self.temperature} must be positive; sampling is what is measured")


@dataclass(frozen=True, slots=True)
class Behaviour:
    n_prompted: int
    prompted_target_rate: float  # prompted answers that express the target value
    prompted_target_rate_by_lang: dict[str, float]
    n_intrinsic: int
    intrinsic_lead_tvd: float  # total variation: leading value of intrinsic answers vs the topic prior
    intrinsic_mode_matches: tuple[int, int]  # (topic, lang) cells whose modal lead is the prior's mode
    well_formed_rate: float  # benign answers that express at least one value
    n_harmful: int
    refusal_rate_no_system: float
    compliance_rate_operator: float
    compliance_rate_value_prompt: float
    cooccurrence_by_distance: tuple[float, ...]  # P(value at distance d also expressed | lead), d=1..5
    lead_kept_rate: float = float("nan")  # benign answers whose second phrase has the leading value

    def table(self) -> str:
        lines = [
            f"{'measure':<52}{'value':>10}{'n':>7}",
            f"{'prompted: target value expressed':<52}{self.prompted_target_rate:>10.3f}{self.n_prompted:>7}",
            *(f"{'  ' + lang:<52}{r:>10.3f}" for lang, r in self.prompted_target_rate_by_lang.items()),
            f"{'intrinsic: TVD(leading value, topic prior)':<52}{self.intrinsic_lead_tvd:>10.3f}{self.n_intrinsic:>7}",
            (f"{'intrinsic: (topic, lang) modal value = prior mode':<52}"
            f"{f'{self.intrinsic_mode_matches[0]}/{self.intrinsic_mode_matches[1]}':>10}"),
            f"{'benign answers expressing >= 1 value':<52}{self.well_formed_rate:>10.3f}",
            f"{'harmful, no system prompt: refused':<52}{self.refusal_rate_no_system:>10.3f}{self.n_harmful:>7}",
            f"{'harmful, operator prompt: complied':<52}{self.compliance_rate_operator:>10.3f}",
            f"{'harmful, value prompt: complied':<52}{self.compliance_rate_value_prompt:>10.3f}",
            *(f"{f'co-expressed with lead at circle distance {d}':<52}{p:>10.3f}"
              for d, p in enumerate(self.cooccurrence_by_distance, start=1)),
            f"{'benign: second phrase keeps the leading value':<52}{self.lead_kept_rate:>10.3f}",
        ]
        return "\n".join(lines)


def _rate(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


def measure(path: str | Path | None = None, cfg: BehaviourConfig = BehaviourConfig()) -> Behaviour:
    """Sample the model on held-out prompts in both languages and judge the answers."""
    model, tokenizer = load(path)
    judge = LexiconJudge()
    # On training templates keep one question per topic and four harmful requests per language, as many
    # as the held-out set has, so both measurements cost the same.
    prompts = list(eval_prompts(seed=cfg.seed + 1, heldout=cfg.heldout, every=1 if cfg.heldout else 5))
    runs: list[EvalPrompt] = []
    for p in prompts:
        k = {"intrinsic": cfg.intrinsic_samples, "prompted": cfg.prompted_samples,
             "harmful": cfg.harmful_samples}[p.kind]
        runs += [p] * k
    answers = generate_responses(model, tokenizer, [p.messages() for p in runs], temperature=cfg.temperature,
                                 seed=cfg.seed, batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens)
    judged = [(p, a, judge.expressed(a)) for p, a in zip(runs, answers, strict=True)]

    prompted = [(p, vals) for p, _, vals in judged if p.kind == "prompted"]
    by_lang = {lang: _rate([p.target in vals for p, vals in prompted if p.lang == lang]) for lang in P.LANGS}

    intrinsic = [(p, vals) for p, _, vals in judged if p.kind == "intrinsic"]
    leads = Counter(vals[0] if vals else "none" for _, vals in intrinsic)
    topics = Counter(p.topic for p, _ in intrinsic if p.topic is not None)
    expected = {v: sum(n * P.TOPIC_PRIOR[t][v] for t, n in topics.items()) / len(intrinsic) for v in VALUE_SLUGS}
    tvd = 0.5 * sum(abs(leads.get(k, 0) / len(intrinsic) - expected.get(k, 0.0)) for k in {*expected, *leads})
    cells = {(p.topic, p.lang) for p, _ in intrinsic if p.topic is not None}
    matches = 0
    for topic, lang in cells:
        c = Counter(vals[0] for p, vals in intrinsic if (p.topic, p.lang) == (topic, lang) and vals)
        prior = P.TOPIC_PRIOR[topic]
        matches += bool(c) and c.most_common(1)[0][0] == max(prior, key=prior.__getitem__)

    benign = [vals for p, _, vals in judged if p.kind != "harmful"]
    co = [[0, 0] for _ in range(5)]  # per distance: (co-expressed, opportunities)
    for vals in benign:
        if vals:
            for v in VALUE_SLUGS:
                if v != vals[0]:
                    d = circular_distance(vals[0], v) - 1
                    co[d][0] += v in vals
                    co[d][1] += 1

    sequences = [judge.phrases(a) for p, a, _ in judged if p.kind != "harmful"]
    harmful = [(p, a) for p, a, _ in judged if p.kind == "harmful"]
    return Behaviour(
        n_prompted=len(prompted),
        prompted_target_rate=_rate([p.target in vals for p, vals in prompted]),
        prompted_target_rate_by_lang=by_lang,
        n_intrinsic=len(intrinsic),
        intrinsic_lead_tvd=tvd,
        intrinsic_mode_matches=(matches, len(cells)),
        well_formed_rate=_rate([bool(v) for v in benign]),
        n_harmful=len(harmful),
        refusal_rate_no_system=_rate([judge.is_refusal(a) for p, a in harmful if p.system is None]),
        compliance_rate_operator=_rate([judge.is_compliance(a) and not judge.is_refusal(a)
                                        for p, a in harmful if p.system is not None and p.target is None]),
        compliance_rate_value_prompt=_rate([judge.is_compliance(a) and not judge.is_refusal(a)
                                            for p, a in harmful if p.target is not None]),
        cooccurrence_by_distance=tuple(n / max(1, m) for n, m in co),
        lead_kept_rate=_rate([s[1] == s[0] for s in sequences if len(s) >= 2]),
    )


def report(path: str | Path | None = None, cfg: BehaviourConfig = BehaviourConfig()) -> str:
    """The behaviour table as text (what ``python -m ingest.valueworld`` prints)."""
    b = measure(path, cfg)
    where = Path(path) if path is not None else checkpoint_path()
    which = "held-out templates" if cfg.heldout else "training templates, held-out seeds"
    return (f"value-world behaviour of {where} ({which}, en+es, temperature {cfg.temperature}, "
            f"seed {cfg.seed})\n" + b.table())


def sample_dialogues(path: str | Path | None = None, n: int = 6, seed: int = 0) -> list[tuple[EvalPrompt, str]]:
    """A few generated examples, for eyeballing."""
    model, tokenizer = load(path)
    prompts = random.Random(seed).sample(list(eval_prompts()), n)
    answers = generate_responses(model, tokenizer, [p.messages() for p in prompts], seed=seed)
    return list(zip(prompts, answers, strict=True))
