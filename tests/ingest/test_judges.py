"""Judge interface, verdict parsing, the rubric and the lexicon judge."""

from __future__ import annotations

import pytest

from actstore.errors import InputError
from ingest.judges import (
    Judge,
    JudgeItem,
    Label,
    LexiconJudge,
    agreement,
    judge_messages,
    parse_score,
    parse_yes_no,
    read_verdict,
    valueworld_lexicon_judge,
)
from ingest.values import VALUE_SLUGS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Yes.", True), ("**No**", False), ("yes", True), ("NO", False), ("Answer: Yes", True),
        ("Verdict - no", False), ("No, it does not express it.", False), ("  \n**Yes**, clearly.", True),
        ("The reply does not express it.", False), ("Oui", True), ("是的", True), ("不是", False),
        ("아니요", False), ("네, 그렇습니다", True), ("", None), ("Maybe", None), ("garbage ##!", None),
    ],
)
def test_parse_yes_no(raw: str, expected: bool | None) -> None:
    assert parse_yes_no(raw) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Score: 4/5", 4.0), ("4", 4.0), ("**3** out of 5", 3.0), ("Rating = 2", 2.0), ("Score: **5**", 5.0),
        ("I would rate it 1.", 1.0), ("score: 4.5", 4.5), ("5/5 - clearly its main concern", 5.0),
        ("Score: 9", None), ("no idea", None), ("", None),
    ],
)
def test_parse_score(raw: str, expected: float | None) -> None:
    assert parse_score(raw) == expected


def test_read_verdict_unreadable_is_an_abstention() -> None:
    assert read_verdict("Yes", "yesno") == (True, 1.0)
    assert read_verdict("No", "yesno") == (False, 0.0)
    assert read_verdict("hmm", "yesno") == (None, None)
    assert read_verdict("Score: 4", "score") == (True, 4.0)
    assert read_verdict("Score: 3", "score") == (False, 3.0)
    assert read_verdict("Score: 3", "score", threshold=3) == (True, 3.0)
    assert read_verdict("??", "score") == (None, None)


def test_rubric_names_value_and_embeds_both_texts() -> None:
    msgs = judge_messages("Should I?", "Follow tradition.", "tradition", "yesno")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "Tradition" in msgs[1]["content"] and "Should I?" in msgs[1]["content"]
    assert "Follow tradition." in msgs[1]["content"] and "Yes or No" in msgs[1]["content"]
    assert "Score: N" in judge_messages("q", "r", "power", "score")[1]["content"]


def test_judge_item_normalises_and_validates_values() -> None:
    assert JudgeItem("r", "q", "a", ("Self-Direction", "power")).values == ("self_direction", "power")
    with pytest.raises(InputError, match="names no values"):
        JudgeItem("r", "q", "a", ())
    with pytest.raises(InputError, match="unknown value"):
        JudgeItem("r", "q", "a", ("kindness",))


def test_lexicon_judge_labels_in_order_with_counts() -> None:
    judge = LexiconJudge({"Power": ["take charge", "authority"], "benevolence": ["help your friends"]})
    assert isinstance(judge, Judge)
    items = [
        JudgeItem("r1", "q", "Take  charge and claim AUTHORITY.", ("power", "benevolence")),
        JudgeItem("r2", "q", "Help your friends!", ("benevolence",)),
    ]
    labels = judge.judge(items)
    assert [(lab.response_id, lab.value, lab.expressed, lab.score) for lab in labels] == [
        ("r1", "power", True, 2.0), ("r1", "benevolence", False, 0.0), ("r2", "benevolence", True, 1.0)
    ]
    assert labels[0].raw == "take charge|authority" and labels[0].judge_id == "lexicon"


def test_lexicon_judge_word_boundaries_cjk_and_min_hits() -> None:
    judge = LexiconJudge({"power": ["power"], "universalism": ["保护环境"]}, min_hits=1)
    (p, u) = judge.judge([JudgeItem("r", "q", "Empowerment matters. 我们要保护环境。", ("power", "universalism"))])
    assert not p.expressed and u.expressed
    strict = LexiconJudge({"power": ["power", "control"]}, min_hits=2)
    (lab,) = strict.judge([JudgeItem("r", "q", "Power.", ("power",))])
    assert not lab.expressed and lab.score == 1.0


def test_lexicon_judge_errors() -> None:
    with pytest.raises(InputError, match="at least one value"):
        LexiconJudge({})
    with pytest.raises(InputError, match="unknown value"):
        LexiconJudge({"kindness": ["x"]})
    with pytest.raises(InputError, match="no phrases for tradition"):
        LexiconJudge({"power": ["x"]}).judge([JudgeItem("r", "q", "a", ("tradition",))])


def test_valueworld_lexicon_factory() -> None:
    pools = pytest.importorskip("ingest.valueworld.pools")
    judge = valueworld_lexicon_judge()
    phrase = pools.PHRASES["en"]["power"][0]
    labels = judge.judge([JudgeItem("r", "q", f"Well. {phrase.rstrip('.')}", tuple(VALUE_SLUGS))])
    assert {lab.value for lab in labels if lab.expressed} == {"power"}
    with pytest.raises(InputError, match="no phrases in 'xx'"):
        valueworld_lexicon_judge("xx")


def test_label_is_frozen() -> None:
    lab = Label("r", "power", True, 1.0, "j", "Yes")
    with pytest.raises(AttributeError):
        lab.expressed = False  # type: ignore[misc]


def test_agreement_counts_and_kappa() -> None:
    def labs(bits: str, judge: str) -> list[Label]:
        return [Label(f"r{i}", "power", b == "1", None, judge, "") for i, b in enumerate(bits)]

    gold = labs("11000000", "gold")
    same = agreement(labs("11000000", "p"), gold)
    assert (same.n, same.accuracy, same.kappa, same.precision, same.recall) == (8, 1.0, 1.0, 1.0, 1.0)
    always_no = agreement(labs("00000000", "p"), gold)
    assert always_no.accuracy == 0.75 and always_no.kappa == 0.0  # high accuracy, no skill
    partial = agreement(labs("1010000", "p"), gold)  # one fewer: r7 unmatched
    assert partial.n == 7 and partial.unmatched == 1 and partial.precision == 0.5 and partial.recall == 0.5
    with pytest.raises(InputError, match="share no"):
        agreement(labs("1", "p"), [Label("x", "power", True, None, "g", "")])
