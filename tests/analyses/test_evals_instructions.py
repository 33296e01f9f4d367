"""Verifiable instructions: each checker, the built-in set, follow rates, bad instructions."""

from __future__ import annotations

import pytest

from actstore.errors import InputError
from analyses.evals._text import detect_language
from analyses.evals.instructions import (
    CHECKERS,
    Instruction,
    builtin_instructions,
    follow_rate,
    follow_rate_by_kind,
)


def make(kind: str, **params) -> Instruction:
    fields = "".join(f" {{{k}}}" for k in params)
    return Instruction(kind, f"Do it:{fields}", params)


@pytest.mark.parametrize(
    "instruction, good, bad",
    [
        (make("lowercase"), "all small letters here, 42.", "Not all small."),
        (make("lowercase"), "ça va très bien", "我爱你"),  # no cased letters: nothing was followed
        (make("include_word", word="river"), "We walked by the River.", "The riverside was calm."),
        (make("bullet_points", n=3), "Intro\n- one\n* two\n  • three\n", "- one\n- two\n1. three"),
        (make("bullet_points", n=2), "- a\n- b", "- a\n- b\n- c"),
        (make("max_words", n=5), "One two three four five.", "One two three four five six."),
        (make("max_words", n=5), "我爱你", ""),
        (
            make("end_with", phrase="Hope this helps."),
            "Answer.\nhope this helps.  \n",
            "Hope this helps. Bye.",
        ),
        (make("end_with", phrase="That is all."), "Done. **That is all.**", "That is all, folks."),
        (make("no_commas"), "No commas here. None at all.", "Well, here is one."),
        (make("no_commas"), "句子没有逗号。", "我，你"),
        (
            make("language", language="en"),
            "This is written in English, as asked.",
            "Esto está escrito en español.",
        ),
        (
            make("language", language="es"),
            "Esto está escrito en español y es muy claro.",
            "Ceci est en français.",
        ),
        (
            make("language", language="fr"),
            "Ceci est écrit en français et c'est très clair.",
            "This is English.",
        ),
        (make("language", language="zh"), "这是用中文写的回答。", "これは日本語の文章です。"),
        (make("language", language="ko"), "이것은 한국어로 쓴 답변입니다.", "This is English."),
    ],
)
def test_checkers_accept_followers_and_reject_the_rest(instruction: Instruction, good: str, bad: str) -> None:
    assert instruction.check(good)
    assert not instruction.check(bad)


def test_detect_language_gives_none_when_unsure() -> None:
    assert detect_language("") is None
    assert detect_language("12345 !!!") is None
    assert detect_language("Привет, как дела?") is None


def test_builtin_set_has_thirty_valid_distinct_instances_of_every_kind() -> None:
    items = builtin_instructions()
    assert len(items) == 30
    assert len({(i.key, i.text_template) for i in items}) == 30
    assert {i.id for i in items} == set(CHECKERS)
    for i in items:
        suffix = i.prompt_suffix()
        assert suffix.startswith("\n\n") and "{" not in suffix
    language_fr = next(i for i in items if i.id == "language" and i.params["language"] == "fr")
    assert "French" in language_fr.prompt_suffix()


def test_apply_appends_the_suffix_and_key_names_the_instance() -> None:
    ins = Instruction("bullet_points", "Use exactly {n} bullets.", {"n": 3})
    assert ins.apply("List fruits.  ") == "List fruits.\n\nUse exactly 3 bullets."
    assert ins.key == "bullet_points(n=3)"
    assert ins == Instruction("bullet_points", "Use exactly {n} bullets.", {"n": 3})
    assert len({ins, Instruction("bullet_points", "Use exactly {n} bullets.", {"n": 3})}) == 1
    with pytest.raises(TypeError):
        ins.params["n"] = 4  # type: ignore[index]


def test_follow_rate_pairs_instructions_with_responses() -> None:
    lower, commas = make("lowercase"), make("no_commas")
    responses = ["fine", "Not fine", "no commas", "a, b"]
    assert follow_rate([lower, lower, commas, commas], responses) == 0.5
    assert follow_rate_by_kind([lower, lower, commas, commas], responses) == {
        "lowercase": 0.5,
        "no_commas": 0.5,
    }
    with pytest.raises(InputError, match="one instruction per response"):
        follow_rate([lower], ["a", "b"])
    with pytest.raises(InputError, match="at least one"):
        follow_rate([], [])


@pytest.mark.parametrize(
    "args, message",
    [
        (("shout", "Shout.", {}), "unknown instruction kind 'shout'"),
        (("max_words", "At most {n} words.", {}), r"takes parameters \['n'\]"),
        (("max_words", "At most {n} words.", {"n": "ten"}), "must be int"),
        (("max_words", "At most {n} words.", {"n": 0}), "at least 1"),
        (("language", "Answer in {language_name}.", {"language": "de"}), "unknown language 'de'"),
        (("include_word", "Use {term}.", {"word": "x"}), "not parameters"),
    ],
)
def test_bad_instructions_fail_at_construction(args, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Instruction(*args)


def test_check_rejects_non_strings() -> None:
    with pytest.raises(InputError, match="string"):
        make("no_commas").check(None)  # type: ignore[arg-type]
