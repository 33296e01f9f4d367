"""Turn queries into the intrinsic and prompted prompt set of the study.

For every query: one intrinsic prompt (no system prompt) and, per target value, ``templates_per_value``
prompted variants whose system prompts are drawn without replacement from that value's templates.
The draw is seeded by (seed, query_id, value) and *not* by language, so translations of a query get
the translations of the same templates; and it does not depend on which other queries are in the set,
so adding queries never changes the prompts already built.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS, parse_value

from .model import Prompt, Query, Template, stable_id
from .templates import builtin_templates, template_languages


def _rng(seed: int, query_id: str, value: str) -> random.Random:
    return random.Random(int(stable_id(seed, query_id, value), 16))


def _template_pool(
    values: Sequence[str], languages: Iterable[str], templates: Sequence[Template] | None
) -> dict[tuple[str, str], list[Template]]:
    pool: dict[tuple[str, str], list[Template]] = defaultdict(list)
    if templates is None:
        for lang in languages:
            if lang not in template_languages():
                raise InputError(
                    f"no built-in system prompts in language {lang!r}; use one of "
                    f"{', '.join(template_languages())} or pass templates=..."
                )
            for v in values:
                pool[(v, lang)] = list(builtin_templates(v, lang))
    else:
        for t in templates:
            pool[(parse_value(t.value), t.language)].append(t)
    return pool


def build_prompts(
    queries: Sequence[Query],
    values: Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    templates_per_value: int = 1,
    seed: int = 0,
    include_intrinsic: bool = True,
    templates: Sequence[Template] | None = None,
    intrinsic_system: str = "default",
) -> list[Prompt]:
    """Build the prompt set. Order: queries as given; per query intrinsic first, then values in
    the order given, then templates in draw order.

    values: value names in any spelling ``parse_value`` accepts; default all ten.
    languages: keep only queries in these languages (default: every language present).
    templates: your own system prompts; default the built-in ones.
    intrinsic_system: ``default`` (intrinsic prompts have no system message) or ``empty`` (an empty one).
    Raises :class:`InputError` on an empty set, an unknown value or language, or too few templates.
    """
    # A bare string would be iterated letter by letter; treat it as a one-item list.
    if isinstance(values, str):
        values = [values]
    if isinstance(languages, str):
        languages = [languages]
    if not queries:
        raise InputError("no queries to build prompts from; load a query set first (e.g. load_builtin_queries())")
    slugs = list(VALUE_SLUGS) if values is None else [parse_value(v) for v in values]
    if values is not None and not slugs:
        raise InputError("values is empty; pass at least one value name or None for all ten")
    if len(set(slugs)) != len(slugs):
        raise InputError(f"values lists a value twice: {slugs}; list each once")
    if templates_per_value < 0:
        raise InputError(f"templates_per_value={templates_per_value}; use 0 or more")
    present = sorted({q.language for q in queries})
    if languages is not None:
        langs = list(languages)
        missing = [lang for lang in langs if lang not in present]
        if missing:
            raise InputError(
                f"language {missing[0]!r} has no queries in this set; use one of {', '.join(present)}"
            )
        queries = [q for q in queries if q.language in langs]
    else:
        langs = present
    if not include_intrinsic and templates_per_value == 0:
        raise InputError("include_intrinsic=False and templates_per_value=0 build nothing; raise templates_per_value")

    pool = _template_pool(slugs, langs, templates) if templates_per_value else {}
    if templates_per_value:
        for v in slugs:
            for lang in langs:
                n = len(pool.get((v, lang), ()))
                if n < templates_per_value:
                    raise InputError(
                        f"templates_per_value={templates_per_value} but only {n} templates for {v} in {lang!r}; "
                        f"use templates_per_value<={n}"
                    )

    prompts: list[Prompt] = []
    seen: set[tuple[str, str]] = set()
    for q in queries:
        if (q.query_id, q.language) in seen:
            raise InputError(f"query id {q.query_id!r} appears twice in language {q.language!r}; make ids unique")
        seen.add((q.query_id, q.language))
        if include_intrinsic:
            prompts.append(Prompt.make(q, "intrinsic", intrinsic_system=intrinsic_system))
        for v in slugs:
            if not templates_per_value:
                break
            candidates = pool[(v, q.language)]
            # Draw positions, not templates: parallel template lists give parallel draws.
            for idx in _rng(seed, q.query_id, v).sample(range(len(candidates)), templates_per_value):
                prompts.append(Prompt.make(q, "prompted", candidates[idx]))
    return prompts
