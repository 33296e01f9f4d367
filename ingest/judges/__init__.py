"""Judges: label each response, per value, as expressing it or not."""

from .agreement import Agreement, agreement
from .base import Judge, JudgeItem, Label
from .hf import HFChatJudge
from .lexicon import LexiconJudge, valueworld_lexicon_judge
from .openai_compat import JudgeRequestError, OpenAIJudge
from .rubric import judge_messages, parse_score, parse_yes_no, read_verdict

__all__ = [
    "Agreement",
    "HFChatJudge",
    "Judge",
    "JudgeItem",
    "JudgeRequestError",
    "Label",
    "LexiconJudge",
    "OpenAIJudge",
    "agreement",
    "judge_messages",
    "parse_score",
    "parse_yes_no",
    "read_verdict",
    "valueworld_lexicon_judge",
]
