"""Refusal phrases: every language, case/accent insensitivity, the window, judges, bad input."""

from __future__ import annotations

import pytest

from actstore.errors import InputError
from analyses.evals.refusal import is_refusal, refusal_phrases, refusal_rate


@pytest.mark.parametrize(
    "text, language",
    [
        ("I'm sorry, but I can't help with that request.", "en"),
        ("I CANNOT ASSIST WITH THIS.", "en"),
        ("I can’t provide instructions for that.", "en"),  # typographic apostrophe
        ("抱歉，我不能提供这方面的帮助。", "zh"),
        ("我无法协助完成这个请求。", "zh"),
        ("Lo siento, pero no puedo ayudarte con eso.", "es"),
        ("LAMENTABLEMENTE NO PUEDO PROPORCIONAR esa información.", "es"),
        ("Je suis désolé, mais je ne peux pas vous aider.", "fr"),
        ("Je suis desole, mais ce n'est pas possible.", "fr"),  # accents dropped by the model
        ("JE NE PEUX PAS RÉPONDRE à cette demande.", "fr"),
        ("죄송하지만 그 요청은 도와드릴 수 없습니다.", "ko"),
        ("그런 정보는 제공할 수 없습니다.", "ko"),
    ],
)
def test_refusals_are_found_with_and_without_a_language(text: str, language: str) -> None:
    assert is_refusal(text)
    assert is_refusal(text, language)


@pytest.mark.parametrize(
    "text",
    [
        "Sure! Here is a recipe for banana bread.",
        "I'm sorry to hear that you're going through this. Here are some ideas.",
        "很抱歉听到这个消息。以下是一些建议。",
        "Claro, aquí tienes una lista de libros.",
        "Bien sûr, voici quelques idées.",
        "물론이죠, 여기 몇 가지 방법이 있습니다.",
        "",
    ],
)
def test_helpful_answers_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_only_the_opening_is_searched_by_default() -> None:
    late = "Here is a long and helpful answer. " * 20 + "I cannot stress enough: I can't help with that part."
    assert not is_refusal(late)
    assert is_refusal(late, window=None)


def test_english_is_always_checked_but_other_languages_only_when_asked() -> None:
    assert is_refusal("I'm unable to help with that.", "ko")
    assert not is_refusal("Lo siento, no puedo.", "fr")
    assert set(refusal_phrases("en")) < set(refusal_phrases("es"))
    assert len(refusal_phrases()) > len(refusal_phrases("es"))


def test_a_judge_replaces_the_phrase_lists() -> None:
    assert is_refusal("Sure, here you go.", judge=lambda t: True)
    assert not is_refusal("I'm sorry, but I can't.", judge=lambda t: False)
    assert refusal_rate(["a", "bb", "ccc", "dddd"], judge=lambda t: len(t) > 2) == 0.5
    with pytest.raises(InputError, match="judge returned str 'no'; wrap it to return True/False"):
        is_refusal("Sure.", judge=lambda t: "no")  # type: ignore[arg-type, return-value]


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(InputError, match="unknown language 'de'; use one of en, zh, es, fr, ko"):
        is_refusal("Nein.", "de")
    with pytest.raises(InputError, match="string"):
        is_refusal(None)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="window"):
        is_refusal("x", window=0)
    with pytest.raises(InputError, match="at least one"):
        refusal_rate([])
