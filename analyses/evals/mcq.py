"""Multiple-choice accuracy: the capability cost of steering.

Files in the MMLU layout are read by path: CSV rows ``question, A, B, C, D, answer letter``, no header;
a directory is read as one such file per subject (``<subject>_test.csv``, ``<subject>_dev.csv`` ...;
the subject is the file name without the split suffix). Our own built-in set,
``data/general_knowledge_test.csv`` (40 easy questions), is in the same layout.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from actstore.errors import InputError
from analyses.evals._data import existing_path, read_csv_rows

LETTERS = ("A", "B", "C", "D")
_SPLITS = ("_test", "_dev", "_val", "_validation", "_train", "_auxiliary_train")
_FIX = "use the MMLU layout: rows of question,A,B,C,D,answer letter with no header"


@dataclass(frozen=True, slots=True)
class Question:
    question: str
    choices: tuple[str, str, str, str]
    answer: str  # "A".."D"
    subject: str = ""

    def __post_init__(self) -> None:
        if self.answer not in LETTERS:
            raise InputError(f"answer must be one of A, B, C, D, got {self.answer!r}")
        if len(self.choices) != 4:
            raise InputError(f"a question needs exactly 4 choices, got {len(self.choices)}")


def _subject(path: Path) -> str:
    stem = path.stem
    for suffix in _SPLITS:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _read_file(path: Path, subject: str | None = None) -> list[Question]:
    out = []
    for line, row in enumerate(read_csv_rows(path, _FIX), start=1):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 6:
            raise InputError(f"{path}:{line}: expected 6 columns, got {len(row)}; {_FIX}")
        answer = row[5].strip().upper()
        if answer not in LETTERS:
            hint = "remove the header row" if line == 1 else "the last column must be A, B, C or D"
            raise InputError(f"{path}:{line}: answer {row[5]!r} is not a letter A-D; {hint} ({_FIX})")
        q, a, b, c, d = (cell.strip() for cell in row[:5])
        out.append(Question(q, (a, b, c, d), answer, subject if subject is not None else _subject(path)))
    return out


def load_mmlu(path: str | Path) -> tuple[Question, ...]:
    """Questions from one MMLU-layout CSV file, or from every ``*.csv`` in a directory (sorted by name)."""
    p = existing_path(path, "multiple-choice file", "pass an MMLU-layout CSV file or a directory of them")
    files = sorted(p.glob("*.csv")) if p.is_dir() else [p]
    if not files:
        raise InputError(f"no .csv files in {p}; pass an MMLU-layout CSV file or a directory of them")
    questions = [q for f in files for q in _read_file(f)]
    if not questions:
        raise InputError(f"{p} holds no questions; {_FIX}")
    return tuple(questions)


@cache
def builtin_questions() -> tuple[Question, ...]:
    """Our 40 easy general-knowledge questions."""
    with resources.as_file(
        resources.files("analyses.evals").joinpath("data").joinpath("general_knowledge_test.csv")
    ) as f:
        return tuple(_read_file(Path(f)))


def build_prompt(question: Question) -> str:
    """The user message: the question, lettered options, and a request for the letter alone."""
    options = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, question.choices))
    about = f" about {question.subject.replace('_', ' ')}" if question.subject else ""
    return (
        f"The following is a multiple-choice question{about}. "
        "Reply with the letter of the correct option only.\n\n"
        f"{question.question}\n{options}\nAnswer:"
    )


# "The answer is B", "Answer: (B)", "correct option is B", "I choose B", "option B"
# Cue words in any case, the letter upper-case only: "the answer is a bit unclear" names no option.
_CUE = re.compile(
    r"(?i:\b(?:answer|option|choice|choose|chose|pick|select)\b(?:\s+(?:is|would be|will be))?)"
    r"\s*[:\-]?\s*[\(\[]?([ABCD])\b(?![a-z'])"
)
# The answer opens the reply: "B", "B.", "(B)", "B)", "B: Paris" -- but not the article in "A cat ...".
_LEADING = re.compile(r"^[\(\[]?([ABCD])(?:[\)\].:,]|\s*$|\s+(?![a-z]))")
_ALONE = re.compile(r"^[\(\[]?([abcd])[\)\]]?\.?$")  # a bare lower-case letter is still an answer
_BRACKETED = re.compile(r"[\(\[]([ABCD])[\)\]]")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"\s+", " ", re.sub(r"[*_`#]", "", text)).strip()


def parse_choice(text: str, question: Question | None = None) -> str | None:
    """The chosen letter A-D in a free-text answer, or None when there is none or it is ambiguous.

    Tried in order: a cue ("The answer is B", "Answer: (B)", "option B"); a letter opening the reply
    ("B", "(B)", "B. Paris") or a lone lower-case "b"; a single bracketed letter anywhere; and, when
    ``question`` is given, the text of exactly one option (the longest match wins when one option's
    text contains another's).
    """
    if not isinstance(text, str):
        raise InputError(f"parse_choice expects the model's answer as a string, got {type(text).__name__}")
    t = _norm(text)
    if not t:
        return None
    found = set(_CUE.findall(t))
    if len(found) == 1:
        return found.pop()
    if len(found) > 1:
        return None
    m = _LEADING.match(t)
    if m:
        return m.group(1)
    m = _ALONE.match(t)
    if m:
        return m.group(1).upper()
    found = set(_BRACKETED.findall(t))
    if len(found) == 1:
        return found.pop()
    if question is not None:
        low = t.casefold()
        hits = [
            (len(c), letter)
            for letter, c in zip(LETTERS, question.choices)
            if c and re.search(rf"(?<!\w){re.escape(c.casefold())}(?!\w)", low)
        ]
        if hits:
            hits.sort(reverse=True)
            longest = [letter for n, letter in hits if n == hits[0][0]]
            # A shorter hit inside the longest one ("7" inside "17") is not a second answer.
            others = [
                letter
                for n, letter in hits[len(longest) :]
                if question.choices[LETTERS.index(letter)].casefold()
                not in question.choices[LETTERS.index(longest[0])].casefold()
            ]
            if len(longest) == 1 and not others:
                return longest[0]
    return None


def grade(questions: Sequence[Question], responses: Sequence[str]) -> list[bool]:
    """Per question, whether the response picks the right letter (unparseable answers are wrong)."""
    qs, rs = list(questions), list(responses)
    if len(qs) != len(rs):
        raise InputError(f"got {len(qs)} questions and {len(rs)} responses; pass one response per question")
    return [parse_choice(r, q) == q.answer for q, r in zip(qs, rs)]


def accuracy(questions: Sequence[Question], responses: Sequence[str]) -> float:
    """Share of questions answered correctly."""
    marks = grade(questions, responses)
    if not marks:
        raise InputError("accuracy needs at least one question")
    return sum(marks) / len(marks)


def pick_alpha(
    alphas: Sequence[float],
    accuracies: Sequence[float],
    baseline: float,
    max_drop: float = 0.05,
    *,
    contiguous: bool = False,
) -> float | None:
    """The largest steering strength whose accuracy drop from ``baseline`` is at most ``max_drop``.

    Drops are absolute (accuracy points on a 0-1 scale): ``baseline - accuracy <= max_drop``. Alphas
    are compared by value, so pass magnitudes when steering negatively. With ``contiguous=True`` the
    scan goes up from the smallest alpha and stops at the first one over the bound, so a noisy good
    score at a large alpha past a failing one is not picked. None when no alpha qualifies.
    """
    a, acc = [float(x) for x in alphas], [float(x) for x in accuracies]
    if len(a) != len(acc):
        raise InputError(f"got {len(a)} alphas and {len(acc)} accuracies; pass one accuracy per alpha")
    if max_drop < 0:
        raise InputError(f"max_drop must be >= 0, got {max_drop}")
    best = None
    for alpha, score in sorted(zip(a, acc)):
        if baseline - score <= max_drop + 1e-12:  # tolerance: 0.80 - 0.75 is not exactly 0.05 in floats
            best = alpha
        elif contiguous:
            break
    return best
