"""Judges: label each response, per value, as expressing it or not (None: the judge abstained).

How far a judge agrees with people is measured by ``actstore judge eval`` (:mod:`ingest.judge_eval`,
statistics in :mod:`.stats`); README, Judges, compares the judges offered here.
"""

from .agreement import Agreement, agreement
from .base import Judge, JudgeItem, Label, abstention_rate
from .embed import EmbeddingHead, EmbeddingJudge
from .hf import HFChatJudge
from .lexicon import LexiconJudge, valueworld_lexicon_judge
from .openai_compat import JudgeRequestError, OpenAIJudge
from .rubric import judge_messages, parse_score, parse_yes_no, read_verdict

__all__ = [
    "Agreement",
    "EmbeddingHead",
    "EmbeddingJudge",
    "HFChatJudge",
    "Judge",
    "JudgeItem",
    "JudgeRequestError",
    "Label",
    "LexiconJudge",
    "OpenAIJudge",
    "abstention_rate",
    "agreement",
    "judge_messages",
    "parse_score",
    "parse_yes_no",
    "read_verdict",
    "valueworld_lexicon_judge",
]
