"""Tokenize a (messages, response) pair and label every token with a role.

Layout of a record: ``input_ids = prompt_ids + response_ids``.

* The **prompt** is the chat template rendered with ``add_generation_prompt=True`` (so it ends with
  the assistant header) and tokenized on its own with ``add_special_tokens=False`` (the template
  writes its own BOS and turn markers, as ``apply_chat_template(tokenize=True)`` does). These are
  exactly the ids generation feeds the model: use :func:`tokenize_prompt` there.
* The **response** is tokenized on its own (or taken as given, ``response_ids``) and appended, so a
  token never straddles the prompt/response boundary and ``prompt_len`` is exact.
* **End of turn is not part of the record.** We never append an end-of-turn/EOS token, and we drop
  trailing special tokens (EOS, ``<|im_end|>``, ...) from given ``response_ids``: the response mean
  should average content, and a response cut at ``max_new_tokens`` (no EOS) must look the same as one
  that stopped.

Roles (:data:`ROLES`, stored as ``int8`` codes into it):

* ``response``: every token from ``prompt_len`` on.
* ``system`` / ``user``: prompt tokens whose character span (fast-tokenizer offsets over the
  rendered prompt) overlaps the content of a system / user message; a token overlapping both goes to
  the one it covers more of.
* ``template``: every other prompt token: BOS, turn markers, role headers, separators, and any text
  the template adds (dates, tool preambles).

**Default system prompts.** Many chat templates write a system prompt of their own when the messages
have none (SmolLM2: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"; Qwen2.5:
"You are Qwen, created by Alibaba Cloud. You are a helpful assistant."). :func:`default_system_text`
finds it by rendering the template with and without a system message; when a prompt has no system
message, those characters are tagged ``system`` (the model reads them as one), and
:func:`effective_system` says what system text the model saw.

Tokenizers without a chat template (GPT-2 style) use :data:`PLAIN_FORMAT`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from actstore.errors import InputError, ModelError

#: Role names; a record's ``roles`` array holds indexes into this tuple.
ROLES: tuple[str, ...] = ("system", "user", "template", "response")
SYSTEM, USER, TEMPLATE, RESPONSE = range(4)
ROLE_CODES: dict[str, int] = {name: code for code, name in enumerate(ROLES)}

#: The prompt format used when a tokenizer has no chat template. Each message becomes
#: ``"System: {content}\n\n"`` or ``"User: {content}\n\n"``; the prompt starts with the tokenizer's
#: BOS token text (if it has one; GPT-2 models behave better with it) and ends with ``"Assistant:\n"``.
PLAIN_FORMAT = "{bos}System: {system}\n\nUser: {user}\n\nAssistant:\n"
_PLAIN_HEADERS = {"system": "System: ", "user": "User: "}
_PLAIN_ASSISTANT = "Assistant:\n"

# Placeholders rendered in place of message contents, to find where the template puts each
# content; private-use characters with no whitespace, so a template's `trim` leaves them intact.
_SENTINEL = "\ue000{}\ue001"


@dataclass(frozen=True, slots=True, eq=False)
class TokenizedRecord:
    """One record's tokens.

    input_ids: ``int32[T]`` prompt ids then response ids.
    roles: ``int8[T]`` codes into :data:`ROLES`.
    prompt_len: tokens ``[0, prompt_len)`` are the prompt, ``[prompt_len, T)`` the response.
    text: the rendered prompt followed by the response text.
    """

    input_ids: np.ndarray
    roles: np.ndarray
    prompt_len: int
    text: str

    @property
    def response_len(self) -> int:
        return int(self.input_ids.shape[0]) - self.prompt_len


def check_messages(messages: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """Validate ``[{"role": "system"|"user", "content": str}, ...]`` -> ``[(role, content)]``."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
        raise InputError(f"messages must be a non-empty list of {{'role', 'content'}} dicts, got {messages!r:.80}")
    out = []
    for m in messages:
        role, content = (m.get("role"), m.get("content")) if isinstance(m, Mapping) else (None, None)
        if role not in ("system", "user") or not isinstance(content, str):
            raise InputError(f"bad message {m!r:.80}; each message needs role 'system' or 'user' "
                             "and a string content (the response is passed separately)")
        out.append((role, content))
    return out


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


_DEFAULTS: dict[tuple[Any, ...], tuple[int, str] | None] = {}


def _template_key(tokenizer: Any) -> tuple[Any, ...]:
    return (str(getattr(tokenizer, "chat_template", "")), getattr(tokenizer, "bos_token", None),
            getattr(tokenizer, "eos_token", None))


def _default_system(tokenizer: Any) -> tuple[int, str] | None:
    """(character offset, text) of the system prompt the template writes when the messages have none.

    Rendered once per template: the chat with a user sentinel alone (``R0``) and with a system
    sentinel before it (``R1 = a + S + b``). If ``R0 = a + X + b`` for a non-empty ``X``, then ``X``
    is the default system text and sits at offset ``len(a)`` (the prefix before any user content
    does not depend on it). Templates that reject a system message, or render the two chats with
    different structure, have no default by this test.
    """
    if not has_chat_template(tokenizer):
        return None
    key = _template_key(tokenizer)
    if key in _DEFAULTS:
        return _DEFAULTS[key]
    found: tuple[int, str] | None = None
    user, system = _SENTINEL.format(0), _SENTINEL.format(1)
    try:
        r0 = _apply_template(tokenizer, [("user", user)])
        r1 = _apply_template(tokenizer, [("system", system), ("user", user)])
    except (InputError, ModelError):
        r0 = r1 = ""
    if r1.count(system) == 1:
        a, b = r1.split(system)
        if len(r0) > len(a) + len(b) and r0.startswith(a) and r0.endswith(b):
            text = r0[len(a):len(r0) - len(b)]
            if text.strip() and user not in text:
                found = (len(a), text)
    _DEFAULTS[key] = found
    return found


def default_system_text(tokenizer: Any) -> str | None:
    """The system prompt the chat template inserts when the messages have none (None: it inserts
    none, or the tokenizer has no chat template)."""
    found = _default_system(tokenizer)
    return found[1] if found is not None else None


def effective_system(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str | None:
    """The system text the model sees for ``messages``: the system message's content if there is one
    (``""`` for an explicit empty one), else the template's default, else None."""
    for role, content in check_messages(messages):
        if role == "system":
            return content
    return default_system_text(tokenizer)


_WARNED: set[tuple[Any, ...]] = set()


def warn_default_system(tokenizer: Any, prompts_without_system: int, what: str = "intrinsic prompts",
                        *, quiet: bool = False) -> bool:
    """Say once per template and process, on stderr, that prompts without a system message get the
    template's default system prompt. Returns whether the template has one."""
    text = default_system_text(tokenizer)
    if text is None or prompts_without_system <= 0:
        return text is not None
    key = _template_key(tokenizer)
    if key not in _WARNED and not quiet:
        _WARNED.add(key)
        import sys

        short = text if len(text) <= 90 else text[:87] + "..."
        print(f"warning: this model's chat template inserts a default system prompt when none is given "
              f"({short!r}); {prompts_without_system} {what} get it (recorded as prompts.effective_system, "
              "its tokens tagged system); pass --intrinsic-system empty to send an empty system message instead",
              file=sys.stderr, flush=True)
    return True


def render_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> str:
    """The prompt text, ending where the assistant's answer starts."""
    return _render(tokenizer, check_messages(messages))[0]


def tokenize_prompt(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> TokenizedRecord:
    """The prompt alone (``prompt_len == T``): the ids to feed generation."""
    return tokenize_record(tokenizer, messages, "")


def tokenize_record(tokenizer: Any, messages: Sequence[Mapping[str, str]], response: str | None,
                    *, response_ids: Sequence[int] | np.ndarray | None = None) -> TokenizedRecord:
    """Tokenize ``messages`` (system and user turns) plus the assistant's ``response``.

    response_ids: the ids the model generated, if kept; they are used as they are (minus trailing
        special tokens) instead of re-tokenizing ``response``, which may then be ``None``.
    """
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(f"{type(tokenizer).__name__} is not a fast tokenizer; roles need its character "
                         "offsets; load it with AutoTokenizer.from_pretrained(..., use_fast=True)")
    msgs = check_messages(messages)
    prompt, spans = _render(tokenizer, msgs)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    prompt_ids = np.asarray(enc["input_ids"], dtype=np.int64)
    prompt_roles = _roles_from_spans(np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2),
                                     spans, len(prompt))
    if prompt_ids.size and (prompt_ids.min() < 0 or prompt_ids.max() > np.iinfo(np.int32).max):
        raise InputError("token ids out of the int32 range")

    return with_response(tokenizer, TokenizedRecord(prompt_ids.astype(np.int32), prompt_roles,
                                                    int(prompt_ids.shape[0]), prompt),
                         response, response_ids=response_ids)


def with_response(tokenizer: Any, prompt: TokenizedRecord, response: str | None,
                  *, response_ids: Sequence[int] | np.ndarray | None = None) -> TokenizedRecord:
    """``prompt`` (from :func:`tokenize_prompt`) followed by the response, as :func:`tokenize_record`
    would build it. Lets an ingest tokenize each prompt once for its many samples."""
    if prompt.response_len:
        raise InputError("with_response needs a prompt-only record (from tokenize_prompt)")
    if response_ids is not None:
        resp = _strip_trailing_specials(tokenizer, np.asarray(response_ids, dtype=np.int64).reshape(-1))
        if response is None:
            response = tokenizer.decode(resp.tolist(), skip_special_tokens=False)
    elif response is None:
        raise InputError("give the response text or its response_ids")
    else:
        resp = np.asarray(tokenizer(response, add_special_tokens=False)["input_ids"], dtype=np.int64)

    if resp.size and (resp.min() < 0 or resp.max() > np.iinfo(np.int32).max):
        raise InputError("token ids out of the int32 range")
    ids = np.concatenate([prompt.input_ids.astype(np.int32), resp.astype(np.int32)])
    roles = np.concatenate([prompt.roles, np.full(resp.shape[0], RESPONSE, dtype=np.int8)])
    return TokenizedRecord(input_ids=ids, roles=roles, prompt_len=prompt.prompt_len, text=prompt.text + response)


def collate(records: Sequence[TokenizedRecord], pad_id: int,
            side: str = "left") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad records into a batch for ``Capturer.capture``.

    Returns ``input_ids: int64[B, T]``, ``attention_mask: int64[B, T]`` (1 on real tokens) and
    ``prompt_lens: int64[B]``; ``side`` is where the padding goes ("left" or "right").
    """
    if side not in ("left", "right"):
        raise InputError(f"bad padding side {side!r}; use left or right")
    if not records:
        raise InputError("no records to collate")
    width = max(r.input_ids.shape[0] for r in records)
    ids = np.full((len(records), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(records), width), dtype=np.int64)
    for i, r in enumerate(records):  # one slice assignment per record, not per token
        n = r.input_ids.shape[0]
        cols = slice(width - n, width) if side == "left" else slice(0, n)
        ids[i, cols] = r.input_ids
        mask[i, cols] = 1
    return ids, mask, np.array([r.prompt_len for r in records], dtype=np.int64)


# -- rendering --------------------------------------------------------------------------------

Span = tuple[int, int, int]  # [start, end) in characters, role code


def _render(tokenizer: Any, msgs: list[tuple[str, str]]) -> tuple[str, list[Span]]:
    if not has_chat_template(tokenizer):
        return _render_plain(tokenizer, msgs)
    real = _apply_template(tokenizer, msgs)
    sentinels = [_SENTINEL.format(i) for i in range(len(msgs))]
    ghost = _apply_template(tokenizer, [(role, s) for (role, _), s in zip(msgs, sentinels)])
    spans = _locate_contents(real, ghost, msgs, sentinels)
    default = _default_system(tokenizer) if all(role != "system" for role, _ in msgs) else None
    if default is not None:  # the template's own system prompt: the model reads it as one
        at, text = default
        if real.startswith(text, at) or (at := real.find(text)) >= 0:
            spans.insert(0, (at, at + len(text), SYSTEM))
    return real, spans


def _apply_template(tokenizer: Any, msgs: list[tuple[str, str]]) -> str:
    from jinja2 import TemplateError

    try:
        return tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in msgs],
                                             tokenize=False, add_generation_prompt=True)
    except (TemplateError, ValueError) as err:  # e.g. Gemma 2: "System role not supported"
        raise InputError(f"the chat template rejects these messages ({str(err).strip()[:120]}); "
                         "drop or merge the system message for this model") from None


def _locate_contents(real: str, ghost: str, msgs: list[tuple[str, str]], sentinels: list[str]) -> list[Span]:
    """Character spans of each message's content in ``real``.

    ``ghost`` is the same template rendered with sentinels for contents, so it tells where each
    content starts even when the content also occurs in the template text (a user writing "user").
    A template may trim contents; then the trimmed content is what we look for. If the two renders
    disagree in structure, fall back to a left-to-right search.
    """
    spans: list[Span] = []
    shift, cursor, gpos = 0, 0, 0
    for (role, content), sentinel in zip(msgs, sentinels):
        at = ghost.find(sentinel, gpos)
        if at < 0:  # the template dropped this message's content: nothing of it is in the prompt
            continue
        gpos = at + len(sentinel)
        found = None
        for text in (content, content.strip()):
            if real.startswith(text, at + shift):  # an empty content matches at once
                found = (at + shift, text)
                break
        if found is None:
            text = content.strip()
            pos = real.find(text, cursor) if text else cursor
            if pos < 0:
                raise ModelError(f"the chat template changes the {role} message's text, so its tokens cannot "
                                 "be labelled; use a template that copies message contents verbatim")
            found = (pos, text)
        start, text = found
        if text:
            spans.append((start, start + len(text), ROLE_CODES[role]))
        shift = start + len(text) - gpos
        cursor = start + len(text)
    return spans


def _render_plain(tokenizer: Any, msgs: list[tuple[str, str]]) -> tuple[str, list[Span]]:
    parts = [getattr(tokenizer, "bos_token", None) or ""]
    spans: list[Span] = []
    pos = len(parts[0])
    for role, content in msgs:
        header = _PLAIN_HEADERS[role]
        parts += [header, content, "\n\n"]
        start = pos + len(header)
        if content:
            spans.append((start, start + len(content), ROLE_CODES[role]))
        pos = start + len(content) + 2
    parts.append(_PLAIN_ASSISTANT)
    return "".join(parts), spans


# -- roles ------------------------------------------------------------------------------------

def _roles_from_spans(offsets: np.ndarray, spans: list[Span], n_chars: int) -> np.ndarray:
    """``offsets: int64[T, 2]`` character spans of tokens -> ``int8[T]`` role codes.

    Vectorised with per-role prefix sums of a character mask: a token covers
    ``cum[end] - cum[start]`` characters of a role.
    """
    roles = np.full(offsets.shape[0], TEMPLATE, dtype=np.int8)
    if not spans or offsets.shape[0] == 0:
        return roles
    start, end = np.clip(offsets[:, 0], 0, n_chars), np.clip(offsets[:, 1], 0, n_chars)
    best = np.zeros(offsets.shape[0], dtype=np.int64)
    for code in (SYSTEM, USER):
        mask = np.zeros(n_chars + 1, dtype=np.int64)
        for s, e, c in spans:
            if c == code:
                mask[s + 1:e + 1] = 1
        cum = np.cumsum(mask)
        covered = cum[end] - cum[start]
        take = covered > best
        roles[take] = code
        best = np.maximum(best, covered)
    return roles


def _strip_trailing_specials(tokenizer: Any, ids: np.ndarray) -> np.ndarray:
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    n = ids.shape[0]
    while n and int(ids[n - 1]) in special:
        n -= 1
    return ids[:n]
