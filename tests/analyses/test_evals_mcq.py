"""Multiple choice: MMLU-layout loading, the built-in set, answer parsing, accuracy, pick_alpha."""

from __future__ import annotations

from pathlib import Path

import pytest

from actstore.errors import InputError
from analyses.evals.mcq import (
    Question,
    accuracy,
    build_prompt,
    builtin_questions,
    grade,
    load_mmlu,
    parse_choice,
    pick_alpha,
)

ROWS = 'What is 2+2?,3,4,5,6,B\n"Capital of Italy, the country?",Rome,Milan,Turin,Naples,A\n'


def test_loads_a_file_and_a_directory_of_subjects(tmp_path: Path) -> None:
    (tmp_path / "math_test.csv").write_text(ROWS, encoding="utf-8")
    (tmp_path / "geo_dev.csv").write_text(
        "Largest ocean?,Atlantic,Pacific,Indian,Arctic,B\n", encoding="utf-8"
    )
    one = load_mmlu(tmp_path / "math_test.csv")
    assert one[1] == Question(
        "Capital of Italy, the country?", ("Rome", "Milan", "Turin", "Naples"), "A", "math"
    )
    both = load_mmlu(tmp_path)
    assert [q.subject for q in both] == ["geo", "math", "math"]  # files in name order


def test_builtin_set_is_forty_valid_questions_in_the_same_layout() -> None:
    qs = builtin_questions()
    assert len(qs) == 40
    assert {q.answer for q in qs} == {"A", "B", "C", "D"}
    assert all(len(set(q.choices)) == 4 for q in qs)
    assert len({q.question for q in qs}) == 40
    # every question's correct option parses back from its own text
    assert accuracy(qs, [q.choices["ABCD".index(q.answer)] for q in qs]) == 1.0


def test_prompt_lists_lettered_options() -> None:
    q = builtin_questions()[0]
    prompt = build_prompt(q)
    for letter, choice in zip("ABCD", q.choices):
        assert f"{letter}. {choice}" in prompt
    assert prompt.endswith("Answer:") and "general knowledge" in prompt


Q = Question("Which number?", ("7", "17", "70", "eight"), "B")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B", "B"),
        (" B ", "B"),
        ("(B)", "B"),
        ("B)", "B"),
        ("B.", "B"),
        ("[D]", "D"),
        ("**C**", "C"),
        ("b", "B"),
        ("(c).", "C"),
        ("The answer is B.", "B"),
        ("Answer: (C)", "C"),
        ("I think the correct option is D because it is largest.", "D"),
        ("A cat has nothing to do with it; the answer is C", "C"),
        ("The correct choice would be A.", "A"),
        ("A. 7", "A"),
        ("B: 17", "B"),
        ("It is 17.", "B"),  # option text; "7" inside "17" is not a second match
        ("Eight", "D"),
        ("I'm confident the right pick is (A)", "A"),
    ],
)
def test_parse_choice_reads_answers(text: str, expected: str) -> None:
    assert parse_choice(text, Q) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "The answer is a bit unclear",
        "A cat",
        "Option B or option C",
        "70 or eight",
        "I don't know.",
    ],
)
def test_parse_choice_gives_none_when_there_is_no_single_answer(text: str) -> None:
    assert parse_choice(text, Q) is None


def test_option_text_is_only_used_with_the_question() -> None:
    assert parse_choice("Eight") is None
    with pytest.raises(InputError, match="string"):
        parse_choice(None)  # type: ignore[arg-type]


def test_accuracy_counts_unparsed_answers_as_wrong() -> None:
    qs = [Q, Q, Q, Q]
    assert grade(qs, ["B", "17", "A", "no idea"]) == [True, True, False, False]
    assert accuracy(qs, ["B", "17", "A", "no idea"]) == 0.5
    with pytest.raises(InputError, match="one response per question"):
        accuracy(qs, ["B"])
    with pytest.raises(InputError, match="at least one"):
        accuracy([], [])


def test_pick_alpha_takes_the_largest_alpha_within_the_drop() -> None:
    alphas, accs = [8, 0, 1, 2, 4], [0.77, 0.80, 0.79, 0.75, 0.70]
    assert pick_alpha(alphas, accs, baseline=0.80) == 8  # 0.80 - 0.77 <= 0.05
    assert pick_alpha(alphas, accs, baseline=0.80, contiguous=True) == 2  # stops at the failing 4
    assert pick_alpha(alphas, accs, baseline=0.80, max_drop=0.0) == 0
    assert pick_alpha([1, 2], [0.5, 0.4], baseline=0.8) is None
    assert pick_alpha([], [], baseline=0.8) is None
    with pytest.raises(InputError, match="one accuracy per alpha"):
        pick_alpha([1, 2], [0.5], baseline=0.8)
    with pytest.raises(InputError, match="max_drop"):
        pick_alpha([1], [0.5], baseline=0.8, max_drop=-0.1)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "question,A,B,C,D,answer\nWhat?,a,b,c,d,A\n",
            r":1: answer 'answer' is not a letter A-D; remove the header row",
        ),
        ("What?,a,b,c,d\n", r":1: expected 6 columns, got 5"),
        ("What?,a,b,c,d,A\nWhy?,a,b,c,d,E\n", r":2: answer 'E' is not a letter A-D; the last column must be"),
        ("\n\n", "holds no questions"),
    ],
)
def test_bad_files_give_one_line_naming_the_file_and_the_fix(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad_test.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as err:
        load_mmlu(path)
    text = str(err.value)
    assert "\n" not in text and ("bad_test.csv" in text or str(tmp_path) in text)
    assert "MMLU layout" in text


def test_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found: .*nope.csv; pass an MMLU-layout CSV"):
        load_mmlu(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="no .csv files"):
        load_mmlu(tmp_path)


def test_bad_question_values() -> None:
    with pytest.raises(InputError, match="A, B, C, D"):
        Question("q", ("a", "b", "c", "d"), "E")
    with pytest.raises(InputError, match="exactly 4"):
        Question("q", ("a", "b", "c"), "A")  # type: ignore[arg-type]
