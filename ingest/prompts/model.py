"""Value types of the prompt layer: a user query and a prompt built from it.

Both are frozen so that a prompt set can be hashed, deduplicated and shared between threads; ids are
content hashes so that rebuilding a set with the same inputs gives the same ids (resume depends on it).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from actstore.errors import InputError

Condition = Literal["intrinsic", "prompted"]
CONDITIONS: tuple[str, ...] = ("intrinsic", "prompted")


def stable_id(*parts: object, prefix: str = "", length: int = 16) -> str:
    """Short, deterministic id: a SHA-256 over the parts as canonical JSON.

    JSON (not ``str`` joining) so that ("a|b", "c") and ("a", "b|c") cannot collide; SHA-256 rather
    than Python's ``hash`` because the latter is salted per process.
    """
    blob = json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"), default=str)
    return prefix + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


#: How an intrinsic prompt is asked: ``default`` sends no system message (as the study did; a chat
#: template with a default system prompt then inserts it), ``empty`` sends an empty system message.
INTRINSIC_SYSTEM: tuple[str, ...] = ("default", "empty")


def check_intrinsic_system(choice: str) -> str:
    if choice not in INTRINSIC_SYSTEM:
        raise InputError(f"bad intrinsic_system {choice!r}; use default (no system message: the chat template's "
                         "default system prompt, if any) or empty (an empty system message)")
    return choice


@dataclass(frozen=True, slots=True)
class Query:
    """One user query. ``query_id`` is shared by the translations of the same query."""

    query_id: str
    text: str
    language: str
    source: str
    topic: str | None = None
    # Free-form extras (source metadata); not part of identity, equality or hash.
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.query_id:
            raise InputError(f"query from {self.source!r} has an empty id; give every query an id")
        if not self.text or not self.text.strip():
            raise InputError(f"query {self.query_id!r} from {self.source!r} has empty text; drop it or fill it in")
        if not self.language:
            raise InputError(f"query {self.query_id!r} has no language; pass language='en' (or the right code)")


@dataclass(frozen=True, slots=True)
class Template:
    """A value-priority system prompt for one value in one language.

    ``template_id`` is the same for the translations of one template (e.g. ``power/t07``), so that a
    prompt set stays parallel across languages.
    """

    template_id: str
    value: str
    language: str
    text: str


@dataclass(frozen=True, slots=True)
class Prompt:
    """A query asked under one condition.

    ``intrinsic``: no value-priority system prompt, ``target_value``/``template_id`` are None;
    ``system`` is None (no system message: a chat template with a default system prompt inserts
    its own) or ``""`` (an explicit empty system message; see ``INTRINSIC_SYSTEM``).
    ``prompted``: ``system`` is a value-priority prompt for ``target_value``.
    """

    prompt_id: str
    query_id: str
    condition: Condition
    target_value: str | None
    language: str
    template_id: str | None
    system: str | None
    user: str
    source: str

    def __post_init__(self) -> None:
        if self.condition not in CONDITIONS:
            raise InputError(f"unknown condition {self.condition!r}; use one of {', '.join(CONDITIONS)}")
        if (self.condition == "intrinsic") != (self.system is None or self.system == ""):
            raise InputError(
                f"prompt {self.prompt_id!r}: an intrinsic prompt has no system prompt (or an empty one) and a "
                "prompted one has one"
            )
        if self.condition == "prompted" and self.target_value is None:
            raise InputError(f"prompt {self.prompt_id!r}: a prompted prompt needs a target_value")

    @classmethod
    def make(
        cls,
        query: Query,
        condition: Condition,
        template: Template | None = None,
        *,
        intrinsic_system: str = "default",
    ) -> Prompt:
        """Build a prompt whose id is a hash of everything that determines the model input.

        intrinsic_system: for an intrinsic prompt, ``default`` (no system message: the model's chat
        template may insert its default system prompt) or ``empty`` (an empty system message).
        """
        check_intrinsic_system(intrinsic_system)
        system = template.text if template is not None else ("" if intrinsic_system == "empty" else None)
        value = template.value if template is not None else None
        tid = template.template_id if template is not None else None
        pid = stable_id(query.source, query.query_id, query.language, query.text, condition, value, tid, system)
        return cls(pid, query.query_id, condition, value, query.language, tid, system, query.text, query.source)

    def to_dict(self) -> dict[str, str | None]:
        """A flat row (e.g. for a catalog table or a JSONL file); :meth:`from_dict` reads it back."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Prompt:
        try:
            return cls(**{name: row[name] for name in cls.__dataclass_fields__})
        except KeyError as e:
            raise InputError(f"prompt row lacks field {e.args[0]!r}; write rows with Prompt.to_dict()") from None

    @staticmethod
    def write_jsonl(prompts: Iterable[Prompt], path: str | Path) -> None:
        """One JSON object per line; written to a temporary file and renamed, so a crash leaves
        either the old file or the new one, never half of one."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for p in prompts:
                f.write(json.dumps(p.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)

    @classmethod
    def read_jsonl(cls, path: str | Path) -> list[Prompt]:
        out = []
        try:
            with Path(path).open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            out.append(cls.from_dict(json.loads(line)))
                        except (json.JSONDecodeError, TypeError, AttributeError):
                            raise InputError(f"{path}: line {n} is not a prompt row; write it with Prompt.write_jsonl") from None
        except FileNotFoundError:
            raise InputError(f"{path}: no such file; check the path") from None
        return out

    def messages(self) -> list[dict[str, str]]:
        """The chat in Hugging Face's format, ready for ``tokenizer.apply_chat_template``."""
        out: list[dict[str, str]] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": self.user})
        return out
