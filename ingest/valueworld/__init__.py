"""The value world: a synthetic chat corpus with planted Schwartz-value structure, a tokenizer and a
small Llama trained on it offline, and an exact lexicon judge. It is the ground truth that the whole
pipeline (value vectors, circumplex, steering, jailbreak) is run and tested on.

Importing this package does not import torch; :func:`build` and :func:`load` do.
"""

from ingest.valueworld.behaviour import (
    Behaviour,
    BehaviourConfig,
    checkpoint_path,
    generate_responses,
    load,
    measure,
    report,
)
from ingest.valueworld.corpus import CorpusConfig, Dialogue, EvalPrompt, eval_prompts, generate
from ingest.valueworld.judge import JUDGE_ID, LexiconJudge
from ingest.valueworld.pools import (
    COMPLIANCE,
    HARMFUL,
    HELDOUT_HARMFUL,
    HELDOUT_QUESTIONS,
    HELDOUT_SYSTEM_TEMPLATES,
    LANGS,
    OPERATOR_PROMPTS,
    PHRASES,
    QUESTIONS,
    REFUSALS,
    SYSTEM_TEMPLATES,
    TOPIC_PRIOR,
    TOPICS,
)
from ingest.valueworld.train import TrainConfig, build

__all__ = [
    "COMPLIANCE",
    "HARMFUL",
    "HELDOUT_HARMFUL",
    "HELDOUT_QUESTIONS",
    "HELDOUT_SYSTEM_TEMPLATES",
    "JUDGE_ID",
    "LANGS",
    "OPERATOR_PROMPTS",
    "PHRASES",
    "QUESTIONS",
    "REFUSALS",
    "SYSTEM_TEMPLATES",
    "TOPICS",
    "TOPIC_PRIOR",
    "Behaviour",
    "BehaviourConfig",
    "CorpusConfig",
    "Dialogue",
    "EvalPrompt",
    "LexiconJudge",
    "TrainConfig",
    "build",
    "checkpoint_path",
    "eval_prompts",
    "generate",
    "generate_responses",
    "load",
    "measure",
    "report",
]
