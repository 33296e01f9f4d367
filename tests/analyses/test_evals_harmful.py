"""Harmful-request sets: AdvBench and HarmBench layouts by path, the built-in set, attack success rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from actstore.errors import InputError
from analyses.evals.harmful import (
    HarmfulPrompt,
    attack_success_rate,
    builtin_harmful_prompts,
    load_advbench,
    load_harmbench,
)
from analyses.evals.refusal import is_refusal


def test_advbench_layout(tmp_path: Path) -> None:
    path = tmp_path / "harmful_behaviors.csv"
    path.write_text(
        'goal,target\n"Do a bad thing, quickly",Sure here is\nAnother bad thing,Sure\n,\n', encoding="utf-8"
    )
    prompts = load_advbench(path)
    assert prompts == (
        HarmfulPrompt("Do a bad thing, quickly", "", "advbench"),
        HarmfulPrompt("Another bad thing", "", "advbench"),
    )


def test_advbench_with_a_bom_and_only_a_goal_column(tmp_path: Path) -> None:
    path = tmp_path / "goals.csv"
    path.write_text("\ufeffgoal\nOne\n", encoding="utf-8")
    assert [p.prompt for p in load_advbench(path)] == ["One"]


def test_harmbench_layout_with_categories_context_and_filter(tmp_path: Path) -> None:
    path = tmp_path / "harmbench_behaviors_text_all.csv"
    path.write_text(
        "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\n"
        "Do a bad thing,standard,cybercrime_intrusion,,,b1\n"
        "Summarise how to misuse this,contextual,misinformation_disinformation,"
        "context,Some article text,b2\n",
        encoding="utf-8",
    )
    prompts = load_harmbench(path)
    assert prompts[0] == HarmfulPrompt("Do a bad thing", "cybercrime_intrusion", "harmbench")
    assert prompts[1].prompt == "Some article text\n\n---\n\nSummarise how to misuse this"
    assert [p.prompt for p in load_harmbench(path, functional_categories=["Standard"])] == ["Do a bad thing"]


def test_harmbench_minimal_layout(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("Behavior\nDo a bad thing\n", encoding="utf-8")
    assert load_harmbench(path) == (HarmfulPrompt("Do a bad thing", "", "harmbench"),)
    with pytest.raises(InputError, match="no 'FunctionalCategory' column"):
        load_harmbench(path, functional_categories=["standard"])


@pytest.mark.parametrize(
    "loader, content, message",
    [
        (
            load_advbench,
            "prompt,target\nx,y\n",
            r"has columns \['prompt', 'target'\], not 'goal'; pass a CSV in the AdvBench",
        ),
        (
            load_harmbench,
            "goal,target\nx,y\n",
            r"has columns \['goal', 'target'\], not 'Behavior'; pass a CSV in the HarmBench",
        ),
        (load_advbench, "", "is empty"),
        (load_advbench, "goal,target\n", "no non-empty 'goal'"),
        (load_harmbench, "Behavior,FunctionalCategory\n", "no behaviors left"),
    ],
)
def test_wrong_layouts_give_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, loader, content, message
) -> None:
    path = tmp_path / "set.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        loader(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"AdvBench \(goal,target\) file not found: .*missing.csv"):
        load_advbench(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="is a directory"):
        load_harmbench(tmp_path)


def test_builtin_prompts_are_thirty_requests_with_categories() -> None:
    prompts = builtin_harmful_prompts()
    assert len(prompts) == 30 and len({p.prompt for p in prompts}) == 30
    assert all(p.category and p.source == "builtin" for p in prompts)
    # requests only: no stored answer text, nothing that reads like a completion
    assert all(len(p.prompt) < 120 and not p.prompt.lower().startswith("sure") for p in prompts)


def test_attack_success_rate_is_the_share_not_refused() -> None:
    responses = [
        "I'm sorry, but I can't help with that.",
        "Sure, here is how.",
        "抱歉，我不能提供。",
        "Okay.",
    ]
    assert attack_success_rate(responses) == 0.5
    assert attack_success_rate(responses, detector=lambda t: False) == 1.0
    assert attack_success_rate(responses, detector=lambda t: is_refusal(t, "en")) == 0.75
    with pytest.raises(InputError, match="non-empty list"):
        attack_success_rate([])
    with pytest.raises(InputError, match="non-empty list"):
        attack_success_rate("I'm sorry")  # type: ignore[arg-type]
