"""The evals package as a whole: import hygiene, packaged data, and parsers that never crash."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from analyses import evals
from analyses.evals._text import tokenize
from analyses.evals.mcq import parse_choice
from analyses.evals.questionnaire import parse_rating
from analyses.evals.refusal import is_refusal


def test_importing_the_evals_loads_no_deep_learning_stack() -> None:
    code = "import sys, analyses.evals; print(any(m in sys.modules for m in ('torch', 'transformers')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_exported_name_exists() -> None:
    for name in evals.__all__:
        assert hasattr(evals, name), name


def test_builtin_sets_load_from_package_data() -> None:
    assert len(evals.builtin_items()) >= 30
    assert len(evals.builtin_instructions()) == 30
    assert len(evals.builtin_questions()) == 40
    assert len(evals.builtin_harmful_prompts()) == 30


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parsers_return_a_valid_value_or_none_for_any_text(text: str) -> None:
    assert parse_rating(text) in {None, 1, 2, 3, 4, 5, 6}
    assert parse_choice(text) in {None, "A", "B", "C", "D"}
    assert isinstance(is_refusal(text), bool)
    assert all(tokenize(text))  # no empty tokens


def test_submodules_are_not_shadowed_by_exported_names() -> None:
    import importlib
    import types

    for name in ("diversity", "refusal", "instructions", "questionnaire", "value_portrait", "mcq", "harmful"):
        assert isinstance(getattr(evals, name), types.ModuleType), name
        assert importlib.import_module(f"analyses.evals.{name}") is getattr(evals, name)
