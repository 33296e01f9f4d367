"""HFChatJudge on a tiny random model: its answers are noise, so test the mechanics around them:
batching with left padding, one raw output per (item, value), parsing, and no chat-template fallback."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.judges import HFChatJudge, JudgeItem

ITEMS = [
    JudgeItem("r1", "What should I do this weekend?", "Try something new and exciting.", ("stimulation", "security")),
    JudgeItem("r2", "Hello there!", "Caring for others is good.", ("benevolence",)),
    JudgeItem("r3", "How are you today?", "I am fine, thank you.", ("power",)),
]


@pytest.fixture(scope="module")
def model(make_tiny_model: Any) -> Any:
    return make_tiny_model("llama")


def test_labels_in_order_with_raw_output(model: Any, chat_tokenizer: Any) -> None:
    judge = HFChatJudge(model, chat_tokenizer, batch_size=3, max_new_tokens=4, judge_id="tiny")
    labels = judge.judge(ITEMS)
    assert [(lab.response_id, lab.value) for lab in labels] == [
        ("r1", "stimulation"), ("r1", "security"), ("r2", "benevolence"), ("r3", "power")
    ]
    assert all(lab.judge_id == "tiny" and isinstance(lab.raw, str) for lab in labels)
    # Whatever the noise says, the label agrees with parsing its own raw text.
    from ingest.judges import read_verdict

    assert all((lab.expressed, lab.score) == read_verdict(lab.raw, "yesno") for lab in labels)


def test_batching_with_left_padding_matches_one_at_a_time(model: Any, chat_tokenizer: Any) -> None:
    batched = HFChatJudge(model, chat_tokenizer, batch_size=4, max_new_tokens=5)
    single = HFChatJudge(model, chat_tokenizer, batch_size=1, max_new_tokens=5)
    side = chat_tokenizer.padding_side
    texts = [batched.render(it, v) for it in ITEMS for v in it.values]
    assert len({len(chat_tokenizer(t)["input_ids"]) for t in texts}) > 1  # padding really happens
    assert batched.generate(texts) == single.generate(texts)
    assert chat_tokenizer.padding_side == side  # the shared tokenizer is left as it was


def test_parsing_of_scripted_outputs(model: Any, chat_tokenizer: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    judge = HFChatJudge(model, chat_tokenizer, mode="score")
    monkeypatch.setattr(judge, "generate", lambda texts: ["Score: 4/5", "**2**", "dunno", "5"][: len(texts)])
    labels = judge.judge(ITEMS)
    assert [(lab.expressed, lab.score, lab.raw) for lab in labels] == [
        (True, 4.0, "Score: 4/5"), (False, 2.0, "**2**"), (False, None, "dunno"), (True, 5.0, "5")
    ]


def test_tokenizer_without_chat_template_or_pad(model: Any, plain_tokenizer: Any) -> None:
    tok = plain_tokenizer.__class__(tokenizer_object=plain_tokenizer.backend_tokenizer,
                                    bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    judge = HFChatJudge(model, tok, batch_size=2, max_new_tokens=2)
    assert tok.pad_token == tok.eos_token
    assert judge.render(ITEMS[0], "power").endswith("assistant:")
    assert len(judge.judge(ITEMS[:2])) == 3


def test_from_pretrained_local_dir_and_missing(tiny_model_dir: Any, tmp_path: Any) -> None:
    from actstore.errors import ModelError

    judge = HFChatJudge.from_pretrained(str(tiny_model_dir), dtype="float32", max_new_tokens=2)
    assert judge.judge_id == f"hf:{tiny_model_dir}:yesno"
    assert len(judge.judge(ITEMS[:1])) == 2
    with pytest.raises(ModelError, match="does not exist"):
        HFChatJudge.from_pretrained(str(tmp_path / "nothing-here"))


def test_bad_settings() -> None:
    from actstore.errors import InputError

    with pytest.raises(InputError, match="unknown judge mode"):
        HFChatJudge(object(), object(), mode="stars")  # type: ignore[arg-type]
