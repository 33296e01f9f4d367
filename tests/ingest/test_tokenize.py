"""Tokenization with roles on a tiny locally trained tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from actstore.errors import InputError
from ingest.tokenize import (
    RESPONSE,
    ROLE_CODES,
    ROLES,
    SYSTEM,
    TEMPLATE,
    USER,
    render_prompt,
    tokenize_prompt,
    tokenize_record,
)

SYS = "You are a helpful assistant."
USR = "What should I do this weekend?"
ANS = "Something new and exciting!"
MSGS = [{"role": "system", "content": SYS}, {"role": "user", "content": USR}]


def _text(tok, rec, code):
    return tok.decode(rec.input_ids[rec.roles == code].tolist())


def test_roles_constant_and_codes():
    assert ROLES == ("system", "user", "template", "response")
    assert [ROLE_CODES[r] for r in ROLES] == [SYSTEM, USER, TEMPLATE, RESPONSE] == [0, 1, 2, 3]


def test_chat_template_record_roles_cover_exactly_each_part(chat_tokenizer):
    rec = tokenize_record(chat_tokenizer, MSGS, ANS)
    assert rec.input_ids.dtype == np.int32 and rec.roles.dtype == np.int8
    assert rec.input_ids.shape == rec.roles.shape
    assert _text(chat_tokenizer, rec, SYSTEM) == SYS
    assert _text(chat_tokenizer, rec, USER) == USR
    assert _text(chat_tokenizer, rec, RESPONSE) == ANS
    template = _text(chat_tokenizer, rec, TEMPLATE)
    assert template == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n"
    # Response tokens are exactly the tail from prompt_len; nothing is appended after them.
    assert (rec.roles[rec.prompt_len:] == RESPONSE).all() and (rec.roles[:rec.prompt_len] != RESPONSE).all()
    assert rec.text == render_prompt(chat_tokenizer, MSGS) + ANS


def test_prompt_ids_are_what_apply_chat_template_tokenizes(chat_tokenizer):
    rec = tokenize_record(chat_tokenizer, MSGS, ANS)
    ref = chat_tokenizer.apply_chat_template(MSGS, tokenize=True, add_generation_prompt=True)
    ref = ref["input_ids"] if hasattr(ref, "keys") else ref
    assert rec.input_ids[:rec.prompt_len].tolist() == list(ref)
    prompt = tokenize_prompt(chat_tokenizer, MSGS)
    assert prompt.prompt_len == rec.prompt_len == prompt.input_ids.shape[0] and prompt.response_len == 0


def test_content_that_repeats_template_words_is_found_in_its_own_turn(chat_tokenizer):
    msgs = [{"role": "system", "content": "user"}, {"role": "user", "content": "system assistant"}]
    rec = tokenize_record(chat_tokenizer, msgs, "user")
    assert _text(chat_tokenizer, rec, SYSTEM) == "user"
    assert _text(chat_tokenizer, rec, USER) == "system assistant"
    assert _text(chat_tokenizer, rec, RESPONSE) == "user"


def test_trimming_template_that_folds_system_into_user_turn(chat_tokenizer):
    # Gemma-style: no system turn, the system text is prepended to the first user turn, and
    # contents are trimmed.
    tok = chat_tokenizer.__class__(tokenizer_object=chat_tokenizer.backend_tokenizer,
                                   bos_token="<|endoftext|>", eos_token="<|im_end|>")
    tok.chat_template = (
        "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
        "{% set sys = messages[0]['content'] | trim + '\n\n' %}{% set rest = messages[1:] %}"
        "{% else %}{% set sys = '' %}{% set rest = messages %}{% endif %}"
        "{% for m in rest %}<|im_start|>user\n{% if loop.first %}{{ sys }}{% endif %}"
        "{{ m['content'] | trim }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n"
    )
    msgs = [{"role": "system", "content": "  Be brief. "}, {"role": "user", "content": " Hello there! "}]
    rec = tokenize_record(tok, msgs, "Fine.")
    assert rec.input_ids[0] == tok.bos_token_id and rec.roles[0] == TEMPLATE
    assert _text(tok, rec, SYSTEM) == "Be brief."
    assert _text(tok, rec, USER) == "Hello there!"
    assert _text(tok, rec, RESPONSE) == "Fine."


def test_no_chat_template_uses_plain_format_with_bos(plain_tokenizer):
    rec = tokenize_record(plain_tokenizer, MSGS, ANS)
    assert rec.text == f"<|endoftext|>System: {SYS}\n\nUser: {USR}\n\nAssistant:\n{ANS}"
    assert rec.input_ids[0] == plain_tokenizer.bos_token_id
    assert _text(plain_tokenizer, rec, SYSTEM) == SYS
    assert _text(plain_tokenizer, rec, USER) == USR
    assert _text(plain_tokenizer, rec, RESPONSE) == ANS
    user_only = tokenize_record(plain_tokenizer, [{"role": "user", "content": USR}], ANS)
    assert not (user_only.roles == SYSTEM).any()


def test_generated_response_ids_are_used_as_given_minus_trailing_end_of_turn(chat_tokenizer):
    gen = chat_tokenizer(ANS, add_special_tokens=False)["input_ids"]
    eot = chat_tokenizer.convert_tokens_to_ids("<|im_end|>")
    rec = tokenize_record(chat_tokenizer, MSGS, None, response_ids=gen + [eot, chat_tokenizer.pad_token_id])
    assert rec.input_ids[rec.prompt_len:].tolist() == gen
    assert rec.text.endswith(ANS)


def test_empty_response_has_no_response_tokens(chat_tokenizer):
    rec = tokenize_record(chat_tokenizer, MSGS, "")
    assert rec.response_len == 0 and not (rec.roles == RESPONSE).any()


@pytest.mark.parametrize("messages", [
    [],
    "hello",
    [{"role": "assistant", "content": "hi"}],
    [{"role": "user"}],
    [{"role": "user", "content": 3}],
])
def test_bad_messages_are_input_errors(chat_tokenizer, messages):
    with pytest.raises(InputError):
        tokenize_record(chat_tokenizer, messages, ANS)


def test_template_that_rejects_system_role_is_input_error(chat_tokenizer):
    tok = chat_tokenizer.__class__(tokenizer_object=chat_tokenizer.backend_tokenizer, eos_token="<|im_end|>")
    tok.chat_template = ("{% for m in messages %}{% if m['role'] == 'system' %}"
                         "{{ raise_exception('System role not supported') }}{% endif %}"
                         "{{ m['content'] }}{% endfor %}")
    with pytest.raises(InputError, match="System role not supported"):
        tokenize_record(tok, MSGS, ANS)


@pytest.mark.parametrize("side", ["left", "right"])
def test_collate_pads_one_side_and_keeps_prompt_lens(chat_tokenizer, side):
    from ingest.tokenize import collate

    recs = [tokenize_record(chat_tokenizer, MSGS, ANS), tokenize_record(chat_tokenizer, MSGS[1:], "Hi")]
    ids, mask, plens = collate(recs, pad_id=chat_tokenizer.pad_token_id, side=side)
    assert ids.shape == mask.shape == (2, recs[0].input_ids.shape[0]) and ids.dtype == np.int64
    assert plens.tolist() == [r.prompt_len for r in recs]
    width = ids.shape[1]
    for row, m, rec in zip(ids, mask, recs):
        n = rec.input_ids.shape[0]
        ones = np.ones(n, dtype=np.int64)
        zeros = np.zeros(width - n, dtype=np.int64)
        assert m.tolist() == (np.concatenate([zeros, ones]) if side == "left" else np.concatenate([ones, zeros])).tolist()
        assert row[m == 1].tolist() == rec.input_ids.tolist()
