"""The value world's own questions and system prompts as ordinary prompt-set pieces.

The project's trained model only knows its corpus, so the demo and the value-world tests ask it
the corpus' questions with the corpus' value-priority system prompts: this module turns those
pools into :class:`Query` and :class:`Template` objects for :func:`build_prompts`, so they go
through the same pipeline as any other prompt set.
"""

from __future__ import annotations

from ingest.prompts.model import Query, Template

SOURCE = "valueworld"


def valueworld_queries(languages: tuple[str, ...] | None = None, heldout_only: bool = False) -> list[Query]:
    """Every value-world question (or only those held out from training), parallel across languages:
    the same ``query_id`` names the same question in English and Spanish."""
    from ingest.valueworld import pools as P

    langs = languages or P.LANGS
    src = P.HELDOUT_QUESTIONS if heldout_only else P.QUESTIONS
    out = []
    for lang in langs:
        if lang not in P.LANGS:
            from actstore.errors import InputError

            raise InputError(f"the value world has no language {lang!r}; use one of {', '.join(P.LANGS)}")
        for i, (topic, text) in enumerate(src[lang]):
            out.append(Query(query_id=f"vw-{topic}-{i:02d}", text=text, language=lang, source=SOURCE, topic=topic))
    return out


def valueworld_templates(heldout_only: bool = False) -> list[Template]:
    """The value-priority system prompts of the value world, ids parallel across languages."""
    from ingest.valueworld import pools as P

    src = P.HELDOUT_SYSTEM_TEMPLATES if heldout_only else P.SYSTEM_TEMPLATES
    return [Template(template_id=f"{value}/vw{i:02d}", value=value, language=lang, text=text)
            for lang in P.LANGS for value, texts in src[lang].items() for i, text in enumerate(texts)]
