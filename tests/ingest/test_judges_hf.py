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
    judge = HFChatJudge(model, chat_tokenizer, batch_size=3, max_new_tokens=4, judge_id="tiny", scoring="generate")
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
    judge = HFChatJudge(model, chat_tokenizer, mode="score", scoring="generate")
    monkeypatch.setattr(judge, "generate", lambda texts: ["Score: 4/5", "**2**", "dunno", "5"][: len(texts)])
    labels = judge.judge(ITEMS)
    assert [(lab.expressed, lab.score, lab.raw) for lab in labels] == [
        (True, 4.0, "Score: 4/5"), (False, 2.0, "**2**"), (None, None, "dunno"), (True, 5.0, "5")
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
    assert judge.judge_id == f"hf:{tiny_model_dir}:yesno:logprob-all"
    assert len(judge.judge(ITEMS[:1])) == 2
    with pytest.raises(ModelError, match="does not exist"):
        HFChatJudge.from_pretrained(str(tmp_path / "nothing-here"))


def test_bad_settings() -> None:
    from actstore.errors import InputError

    with pytest.raises(InputError, match="unknown judge mode"):
        HFChatJudge(object(), object(), mode="stars")  # type: ignore[arg-type]


def _plain_next_probs(model: Any, tok: Any, text: str) -> Any:
    import torch

    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return torch.softmax(model(**ids).logits[0, -1].float(), -1)


@pytest.mark.parametrize("mode", ["yesno", "score"])
def test_logprob_scores_match_a_plain_forward_pass_and_never_abstain(model: Any, chat_tokenizer: Any, mode: str) -> None:
    from ingest.judges.hf import option_ids

    batched = HFChatJudge(model, chat_tokenizer, mode=mode, batch_size=4, prompt="per-value")
    labels = batched.judge(ITEMS)
    assert all(lab.expressed is not None and lab.score is not None for lab in labels)
    ids = option_ids(chat_tokenizer, mode)
    for lab, (it, v) in zip(labels, [(item, v) for item in ITEMS for v in item.values], strict=True):
        p = _plain_next_probs(model, chat_tokenizer, batched.render(it, v))  # alone: no padding
        mass = {o: float(p[i].sum()) for o, i in ids.items()}
        want = (mass["yes"] / (mass["yes"] + mass["no"]) if mode == "yesno"
                else sum(int(o) * m for o, m in mass.items()) / sum(mass.values()))
        assert lab.score == pytest.approx(want, rel=1e-4, abs=1e-6)
        assert lab.expressed == (lab.score >= batched.threshold)
    assert batched.threshold == (0.5 if mode == "yesno" else 4.0)


def test_logprob_all_values_prompt_gives_a_distribution(model: Any, chat_tokenizer: Any) -> None:
    from ingest.values import VALUE_SLUGS

    judge = HFChatJudge(model, chat_tokenizer, batch_size=2)  # the default prompt with logprob
    items = [JudgeItem(it.response_id, it.query, it.response, VALUE_SLUGS) for it in ITEMS]
    labels = judge.judge(items)
    assert len(labels) == 30 and judge.judge_id.endswith(":yesno:logprob-all")
    for i in range(3):
        assert sum(lab.score for lab in labels[10 * i:10 * i + 10]) == pytest.approx(1.0, abs=1e-5)
    # A subset of values gets the same scores as the full list.
    sub = judge.judge([JudgeItem("r1", ITEMS[0].query, ITEMS[0].response, ("power", "tradition"))])
    full = {lab.value: lab.score for lab in labels[:10]}
    assert [lab.score for lab in sub] == pytest.approx([full["power"], full["tradition"]], rel=1e-4)
    with pytest.raises(Exception, match="scoring='logprob'"):
        HFChatJudge(model, chat_tokenizer, prompt="all", scoring="generate")


def test_spec_options() -> None:
    from actstore.errors import UsageError
    from ingest.config import parse_judge
    from ingest.judges.hf import hf_options

    spec = parse_judge("hf:/models/j.gguf#all,score")
    assert spec.target == "/models/j.gguf" and hf_options(spec.options) == {"prompt": "all", "mode": "score"}
    assert hf_options(parse_judge("hf:/m#generate").options) == {"scoring": "generate"}
    with pytest.raises(UsageError, match="options from"):
        parse_judge("hf:/m#loud")
