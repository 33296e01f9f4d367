"""Harmful-request prompt sets for jailbreak evaluations, and attack success rate.

Public sets are read by path in their own layouts:

- AdvBench (``harmful_behaviors.csv``): a header with a ``goal`` column (``target``, the affirmative
  opening the attack aims for, is allowed and ignored).
- HarmBench (``harmbench_behaviors_text_*.csv``): a header with a ``Behavior`` column, optionally
  ``FunctionalCategory``, ``SemanticCategory`` and ``ContextString``. A contextual behavior's prompt
  is its context, a separator line, then the behavior, so that the model sees the context it refers to.

Our own built-in set (``data/harmful_prompts.csv``, 30 prompts) holds only short, generic *requests*;
no harmful answer is stored anywhere in the project.

Attack success rate is the share of responses that do not refuse, by a refusal detector (the phrase
lists of :mod:`analyses.evals.refusal` by default, or a judge). Not refusing is a proxy for "harmful":
a judge that also checks the answer is on topic gives stricter numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from actstore.errors import InputError
from analyses.evals._data import existing_path, read_csv_dicts
from analyses.evals.refusal import is_refusal

_CONTEXT_SEPARATOR = "\n\n---\n\n"


@dataclass(frozen=True, slots=True)
class HarmfulPrompt:
    prompt: str
    category: str = ""
    source: str = ""  # "advbench", "harmbench", "builtin", or a file name


def _rows(path: str | Path, required: str, layout: str) -> tuple[Path, list[str], list[dict[str, str]]]:
    fix = f"pass a CSV in the {layout} layout"
    p = existing_path(path, f"{layout} file", fix)
    if p.is_dir():
        raise InputError(f"{p} is a directory; {fix}")
    header, rows = read_csv_dicts(p, fix)
    if required not in header:
        raise InputError(
            f"{p} has columns {header[:6]}, not {required!r}; {fix} (a header row naming {required!r})"
        )
    return p, header, rows


def load_advbench(path: str | Path) -> tuple[HarmfulPrompt, ...]:
    """Prompts from an AdvBench-layout CSV (``goal,target``)."""
    p, _, rows = _rows(path, "goal", "AdvBench (goal,target)")
    out = tuple(HarmfulPrompt(r["goal"].strip(), "", "advbench") for r in rows if r["goal"].strip())
    if not out:
        raise InputError(f"{p} has no non-empty 'goal' values; pass an AdvBench CSV with prompts")
    return out


def load_harmbench(
    path: str | Path, functional_categories: Iterable[str] | None = None
) -> tuple[HarmfulPrompt, ...]:
    """Prompts from a HarmBench-layout CSV; keep only the given ``FunctionalCategory`` values if set
    (e.g. ``["standard"]`` for behaviors without context)."""
    p, header, rows = _rows(path, "Behavior", "HarmBench (Behavior,...)")
    keep = None if functional_categories is None else {c.strip().lower() for c in functional_categories}
    if keep is not None and "FunctionalCategory" not in header:
        raise InputError(f"{p} has no 'FunctionalCategory' column to filter on; drop functional_categories")
    out = []
    for r in rows:
        behavior = r["Behavior"].strip()
        if not behavior:
            continue
        if keep is not None and r.get("FunctionalCategory", "").strip().lower() not in keep:
            continue
        context = r.get("ContextString", "").strip()
        prompt = f"{context}{_CONTEXT_SEPARATOR}{behavior}" if context else behavior
        category = r.get("SemanticCategory", "").strip() or r.get("FunctionalCategory", "").strip()
        out.append(HarmfulPrompt(prompt, category, "harmbench"))
    if not out:
        raise InputError(f"{p} has no behaviors left (empty file or filter); check the file and the filter")
    return tuple(out)


@cache
def builtin_harmful_prompts() -> tuple[HarmfulPrompt, ...]:
    """Our 30 generic harmful requests (prompts only)."""
    with resources.as_file(
        resources.files("analyses.evals").joinpath("data").joinpath("harmful_prompts.csv")
    ) as f:
        _, rows = read_csv_dicts(Path(f), "reinstall actstore")
    return tuple(HarmfulPrompt(r["prompt"], r["category"], "builtin") for r in rows)


def attack_success_rate(responses: Sequence[str], detector: Callable[[str], bool] = is_refusal) -> float:
    """Share of responses that the detector does not flag as refusals."""
    items = list(responses)
    if isinstance(responses, str) or not items:
        raise InputError("attack_success_rate needs a non-empty list of responses")
    return sum(not detector(r) for r in items) / len(items)
