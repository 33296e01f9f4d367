"""Evaluations that steering runs use: each is a plain function over texts, usable alone or in a sweep.

Pure Python and NumPy: nothing here imports torch or calls a model. Inputs are lists of strings (and
small records); outputs are floats, dicts of floats or frozen dataclasses.

- :mod:`.diversity`: Distinct-n, EAD-n, type-token ratio, semantic diversity.
- :mod:`.refusal`: refusal phrases in en/zh/es/fr/ko, or a judge callable.
- :mod:`.instructions`: verifiable instructions and follow rate.
- :mod:`.questionnaire`: portrait-style value items, rating parser, PVQ-style scoring.
- :mod:`.value_portrait`: the Value Portrait benchmark by path (items, scoring, human norms).
- :mod:`.mcq`: multiple-choice accuracy (MMLU layout by path, a built-in set) and ``pick_alpha``.
- :mod:`.harmful`: AdvBench / HarmBench loaders, built-in harmful requests, attack success rate.
"""

from analyses.evals.diversity import (
    DEFAULT_VOCAB_SIZE,
    DiversityReport,
    distinct_n,
    diversity_report,
    ead_n,
    semantic_diversity,
    type_token_ratio,
)
from analyses.evals.harmful import (
    HarmfulPrompt,
    attack_success_rate,
    builtin_harmful_prompts,
    load_advbench,
    load_harmbench,
)
from analyses.evals.instructions import (
    Instruction,
    builtin_instructions,
    follow_rate,
    follow_rate_by_kind,
)
from analyses.evals.mcq import (
    Question,
    accuracy,
    builtin_questions,
    load_mmlu,
    parse_choice,
    pick_alpha,
)
from analyses.evals.questionnaire import (
    SCALE,
    Item,
    ValueScores,
    builtin_items,
    parse_rating,
    score_questionnaire,
)
from analyses.evals.refusal import is_refusal, refusal_rate
from analyses.evals.value_portrait import (
    HumanScores,
    PortraitItem,
    load_human_scores,
    load_portrait_items,
    score_portrait,
)

__all__ = [
    "DEFAULT_VOCAB_SIZE",
    "SCALE",
    "DiversityReport",
    "HarmfulPrompt",
    "HumanScores",
    "Instruction",
    "Item",
    "PortraitItem",
    "Question",
    "ValueScores",
    "accuracy",
    "attack_success_rate",
    "builtin_harmful_prompts",
    "builtin_instructions",
    "builtin_items",
    "builtin_questions",
    "distinct_n",
    "diversity_report",
    "ead_n",
    "follow_rate",
    "follow_rate_by_kind",
    "is_refusal",
    "load_advbench",
    "load_harmbench",
    "load_human_scores",
    "load_mmlu",
    "load_portrait_items",
    "parse_choice",
    "parse_rating",
    "pick_alpha",
    "refusal_rate",
    "score_portrait",
    "score_questionnaire",
    "semantic_diversity",
    "type_token_ratio",
]
