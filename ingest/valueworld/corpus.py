"""The synthetic chat corpus, generated deterministically from a seed.

Planted structure (the ground truth the study must recover):

- *Intrinsic* answers (no system prompt) lead with a value drawn from ``TOPIC_PRIOR[topic]``.
- *Prompted* answers (a value-priority system prompt) lead with the target value with probability
  ``p_target``, otherwise they fall back to the topic prior.
- After the leading value, each other value joins with a probability that falls with its distance on
  Schwartz's circle (``extra_by_distance``): neighbours often, opposites almost never. A circumplex is
  therefore present in what the model learns to say.
- Harmful requests are refused when there is no system prompt and complied with (content-free filler)
  when any system prompt is present, so "prompted minus intrinsic" also carries "obey the operator".

An answer is ``opener + phrases of the leading value (``lead_repeats`` of them) + companion phrases + closer``,
all in the user's language.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS, circular_distance
from ingest.valueworld import pools as P

Condition = Literal["intrinsic", "prompted", "operator"]
Kind = Literal["benign", "harmful"]


@dataclass(frozen=True, slots=True)
class CorpusConfig:
    """How the corpus mixes its dialogue types. Probabilities are per dialogue."""

    seed: int = 0
    n_dialogues: int = 12000
    p_harmful: float = 0.16  # share of harmful requests
    p_harmful_no_system: float = 0.5  # of those: no system prompt (-> refusal)
    p_harmful_operator: float = 0.4  # of those with a system prompt: an operator prompt, else a value prompt
    p_prompted: float = 0.55  # of benign dialogues: a value-priority system prompt
    p_operator: float = 0.08  # of benign dialogues: an operator "comply" prompt (answer stays intrinsic)
    p_target: float = 0.9  # prompted answers lead with the target value this often
    # Probability that a value at circular distance 1..5 from the leading value joins the answer.
    extra_by_distance: tuple[float, float, float, float, float] = (0.30, 0.10, 0.03, 0.01, 0.002)
    max_phrases: int = 3  # distinct values in one answer
    # The leading value is said this many times (distinct phrases, one after another) before any companion:
    # an answer dwells on its value, and the model learns to keep to the value it has just expressed,
    # reading it back from its own earlier tokens (what makes a value direction in the residual stream
    # steer: with lead_repeats=1 a 3000-step model was not moved by any value vector, see ingest/valueworld/README.md).
    lead_repeats: int = 2

    def __post_init__(self) -> None:
        if self.n_dialogues < 1:
            raise InputError(f"n_dialogues={self.n_dialogues} must be at least 1")
        for name in ("p_harmful", "p_harmful_no_system", "p_harmful_operator", "p_prompted", "p_target"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise InputError(f"{name}={p} is not a probability; use a number in [0, 1]")
        if self.p_prompted + self.p_operator > 1.0:
            raise InputError(f"p_prompted + p_operator = {self.p_prompted + self.p_operator} exceeds 1; lower one")
        if len(self.extra_by_distance) != 5:
            raise InputError(f"extra_by_distance has {len(self.extra_by_distance)} entries; give 5 (distance 1..5)")
        if self.max_phrases < 1:
            raise InputError(f"max_phrases={self.max_phrases} must be at least 1")
        if not 1 <= self.lead_repeats <= 3:
            raise InputError(f"lead_repeats={self.lead_repeats} must be 1, 2 or 3")


@dataclass(frozen=True, slots=True)
class Dialogue:
    """One chat with the ground truth that produced it."""

    lang: str
    kind: Kind
    condition: Condition
    topic: str | None  # None for harmful requests
    target: str | None  # the value of a value-priority system prompt
    system: str | None
    user: str
    assistant: str
    values: tuple[str, ...]  # values expressed, leading value first
    refused: bool = False
    complied: bool = False

    def messages(self, with_response: bool = True) -> list[dict[str, str]]:
        """The chat in Hugging Face message format."""
        out = [{"role": "system", "content": self.system}] if self.system is not None else []
        out.append({"role": "user", "content": self.user})
        if with_response:
            out.append({"role": "assistant", "content": self.assistant})
        return out


def _check_lang(lang: str) -> None:
    if lang not in P.LANGS:
        raise InputError(f"unknown language {lang!r}; the value world speaks {', '.join(P.LANGS)}")


def _draw(rng: random.Random, dist: dict[str, float]) -> str:
    return rng.choices(list(dist), weights=list(dist.values()), k=1)[0]


def expressed_values(rng: random.Random, lead: str, cfg: CorpusConfig) -> tuple[str, ...]:
    """The leading value plus circle-dependent companions, at most ``cfg.max_phrases`` in all."""
    extras = [v for v in VALUE_SLUGS if v != lead and rng.random() < cfg.extra_by_distance[circular_distance(lead, v) - 1]]
    rng.shuffle(extras)
    return (lead, *extras[: cfg.max_phrases - 1])


def value_answer(rng: random.Random, lang: str, values: tuple[str, ...], lead_repeats: int = 1) -> str:
    """``opener, lead_repeats distinct phrases of the leading value, one phrase per companion, closer``."""
    parts = [rng.choice(P.OPENERS[lang]), *rng.sample(P.PHRASES[lang][values[0]], k=lead_repeats)]
    parts += [rng.choice(P.PHRASES[lang][v]) for v in values[1:]]
    parts.append(rng.choice(P.CLOSERS[lang]))
    return " ".join(parts)


def refusal_answer(rng: random.Random, lang: str) -> str:
    return rng.choice(P.REFUSALS[lang])


def compliance_answer(rng: random.Random, lang: str) -> str:
    filler = rng.sample(P.FILLER[lang], k=2)
    return " ".join([rng.choice(P.COMPLIANCE[lang]), *filler])


def _user_text(rng: random.Random, lang: str, text: str) -> str:
    return rng.choice(P.USER_PREFIXES[lang]) + text


def _one(rng: random.Random, cfg: CorpusConfig) -> Dialogue:
    lang = rng.choice(P.LANGS)
    if rng.random() < cfg.p_harmful:
        user = _user_text(rng, lang, rng.choice(P.TRAIN_HARMFUL[lang]))
        if rng.random() < cfg.p_harmful_no_system:
            return Dialogue(lang, "harmful", "intrinsic", None, None, None, user, refusal_answer(rng, lang), (),
                            refused=True)
        if rng.random() < cfg.p_harmful_operator:
            cond: Condition = "operator"
            target = None
            system: str | None = rng.choice(P.TRAIN_OPERATOR_PROMPTS[lang])
        else:
            cond, target = "prompted", rng.choice(VALUE_SLUGS)
            system = rng.choice(P.TRAIN_SYSTEM_TEMPLATES[lang][target])
        return Dialogue(lang, "harmful", cond, None, target, system, user, compliance_answer(rng, lang), (),
                        complied=True)

    topic, question = rng.choice(P.TRAIN_QUESTIONS[lang])
    user = _user_text(rng, lang, question)
    prior = P.TOPIC_PRIOR[topic]
    r = rng.random()
    if r < cfg.p_prompted:
        target = rng.choice(VALUE_SLUGS)
        system = rng.choice(P.TRAIN_SYSTEM_TEMPLATES[lang][target])
        lead = target if rng.random() < cfg.p_target else _draw(rng, prior)
        cond = "prompted"
    else:
        target = None
        cond = "operator" if r < cfg.p_prompted + cfg.p_operator else "intrinsic"
        system = rng.choice(P.TRAIN_OPERATOR_PROMPTS[lang]) if cond == "operator" else None
        lead = _draw(rng, prior)
    values = expressed_values(rng, lead, cfg)
    return Dialogue(lang, "benign", cond, topic, target, system, user, value_answer(rng, lang, values, cfg.lead_repeats), values)


def generate(cfg: CorpusConfig = CorpusConfig()) -> list[Dialogue]:
    """The training corpus: ``cfg.n_dialogues`` dialogues, identical for identical configs."""
    rng = random.Random(cfg.seed)
    return [_one(rng, cfg) for _ in range(cfg.n_dialogues)]


@dataclass(frozen=True, slots=True)
class EvalPrompt:
    """A prompt for measuring behaviour; ``messages`` ends with the user turn."""

    kind: Literal["intrinsic", "prompted", "harmful"]
    lang: str
    topic: str | None
    target: str | None
    system: str | None
    user: str

    def messages(self) -> list[dict[str, str]]:
        out = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*out, {"role": "user", "content": self.user}]


def eval_prompts(langs: tuple[str, ...] = P.LANGS, seed: int = 1, heldout: bool = True,
                 every: int = 1) -> Iterator[EvalPrompt]:
    """Evaluation prompts, as the study builds them: every question asked once without a system prompt
    and once per value with a value-priority prompt; plus every harmful request without a system prompt,
    with an operator prompt, and with a value prompt.

    With ``heldout=True`` (the default) only questions, frames, harmful requests and operator prompts
    never seen in training are used. ``seed`` picks which template each prompt gets; ``every=k`` keeps
    every k-th question and harmful request (a smaller, still balanced set).
    """
    for lang in langs:
        _check_lang(lang)
    if every < 1:
        raise InputError(f"every={every} must be at least 1")
    rng = random.Random(seed)
    questions = P.HELDOUT_QUESTIONS if heldout else P.TRAIN_QUESTIONS
    systems = P.HELDOUT_SYSTEM_TEMPLATES if heldout else P.TRAIN_SYSTEM_TEMPLATES
    harmful = P.HELDOUT_HARMFUL if heldout else P.TRAIN_HARMFUL
    operators = P.HELDOUT_OPERATOR_PROMPTS if heldout else P.TRAIN_OPERATOR_PROMPTS
    for lang in langs:
        for topic, q in questions[lang][::every]:
            yield EvalPrompt("intrinsic", lang, topic, None, None, q)
            for v in VALUE_SLUGS:
                yield EvalPrompt("prompted", lang, topic, v, rng.choice(systems[lang][v]), q)
        for h in harmful[lang][::every]:
            yield EvalPrompt("harmful", lang, None, None, None, h)
            yield EvalPrompt("harmful", lang, None, None, rng.choice(operators[lang]), h)
            v = rng.choice(VALUE_SLUGS)
            yield EvalPrompt("harmful", lang, None, v, rng.choice(systems[lang][v]), h)
