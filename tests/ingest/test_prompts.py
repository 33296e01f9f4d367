"""Prompt data model, built-in sets and build_prompts: counts, determinism, stable ids, parallelism."""

from __future__ import annotations

from collections import Counter

import pytest

from actstore.errors import InputError
from ingest.prompts import Prompt, Query, Template, build_prompts, builtin_templates, load_builtin_queries
from ingest.prompts.templates import _resolve_korean
from ingest.values import LANGUAGES, VALUE_SLUGS


@pytest.fixture(scope="module")
def builtin() -> list[Query]:
    return load_builtin_queries()


def test_builtin_queries_are_parallel_across_languages(builtin: list[Query]) -> None:
    per_lang = Counter(q.language for q in builtin)
    assert set(per_lang) == set(LANGUAGES)
    assert all(n >= 200 for n in per_lang.values())
    ids = {lang: [q.query_id for q in builtin if q.language == lang] for lang in LANGUAGES}
    assert all(ids[lang] == ids["en"] for lang in LANGUAGES)  # same ids, same order
    assert len(set(ids["en"])) == len(ids["en"])
    # Translations differ from each other (no language left as an English copy).
    by_id = {(q.query_id, q.language): q.text for q in builtin}
    assert all(by_id[(i, "en")] != by_id[(i, lang)] for i in ids["en"] for lang in LANGUAGES if lang != "en")


def test_builtin_queries_filter_and_reject_unknown_language() -> None:
    ko = load_builtin_queries(["ko"])
    assert {q.language for q in ko} == {"ko"} and len(ko) >= 200
    with pytest.raises(InputError, match="'de'"):
        load_builtin_queries(["de"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_builtin_templates_per_value_and_language(language: str) -> None:
    seen: set[str] = set()
    for value in VALUE_SLUGS:
        ts = builtin_templates(value, language)
        assert len(ts) >= 20
        assert all(t.value == value and t.language == language for t in ts)
        assert len({t.text for t in ts}) == len(ts)  # no two templates alike
        assert "{" not in "".join(t.text for t in ts)  # every slot filled, Korean particles resolved
        seen.update(t.text for t in ts)
    assert len(seen) == sum(len(builtin_templates(v, language)) for v in VALUE_SLUGS)  # specific to a value


def test_template_ids_are_parallel_across_languages() -> None:
    for value in VALUE_SLUGS:
        ids = [t.template_id for t in builtin_templates(value, "en")]
        assert all([t.template_id for t in builtin_templates(value, lang)] == ids for lang in LANGUAGES)


def test_korean_particles_follow_the_last_syllable() -> None:
    assert _resolve_korean("자유{을/를} 지킨다") == "자유를 지킨다"
    assert _resolve_korean("안정{을/를} 지킨다") == "안정을 지킨다"
    assert _resolve_korean("서울{으로/로} 간다") == "서울로 간다"
    assert _resolve_korean("집{이/가} 있다") == "집이 있다"


def test_build_counts_and_structure(builtin: list[Query]) -> None:
    en = [q for q in builtin if q.language == "en"][:10]
    prompts = build_prompts(en, templates_per_value=3)
    assert len(prompts) == 10 * (1 + 10 * 3)
    intrinsic = [p for p in prompts if p.condition == "intrinsic"]
    assert len(intrinsic) == 10 and all(p.system is None and p.target_value is None for p in intrinsic)
    prompted = [p for p in prompts if p.condition == "prompted"]
    assert Counter(p.target_value for p in prompted) == {v: 30 for v in VALUE_SLUGS}
    for p in prompted:
        t = next(t for t in builtin_templates(p.target_value, "en") if t.template_id == p.template_id)
        assert p.system == t.text
    # Per (query, value) the drawn templates are distinct.
    groups = Counter((p.query_id, p.target_value, p.template_id) for p in prompted)
    assert max(groups.values()) == 1


def test_build_is_deterministic_and_seeded(builtin: list[Query]) -> None:
    en = [q for q in builtin if q.language == "en"][:5]
    a = build_prompts(en, templates_per_value=2, seed=7)
    b = build_prompts(en, templates_per_value=2, seed=7)
    c = build_prompts(en, templates_per_value=2, seed=8)
    assert a == b
    assert [p.template_id for p in a] != [p.template_id for p in c]


def test_prompt_ids_are_stable_values() -> None:
    # A golden id: if this changes, every existing store's prompt ids change; bump it on purpose only.
    q = Query("q001", "Should I take the promotion?", "en", "unit")
    t = Template("power/f0i0", "power", "en", "You value power.")
    assert Prompt.make(q, "intrinsic").prompt_id == Prompt.make(q, "intrinsic").prompt_id
    assert Prompt.make(q, "prompted", t).prompt_id != Prompt.make(q, "intrinsic").prompt_id
    assert len(Prompt.make(q, "intrinsic").prompt_id) == 16


def test_prompt_ids_do_not_depend_on_the_rest_of_the_set(builtin: list[Query]) -> None:
    en = [q for q in builtin if q.language == "en"]
    small = build_prompts(en[3:4], templates_per_value=2)
    big = build_prompts(en[:8], templates_per_value=2)
    assert {p.prompt_id for p in small} <= {p.prompt_id for p in big}


def test_parallel_languages_draw_the_same_templates(builtin: list[Query]) -> None:
    qs = [q for q in builtin if q.query_id in ("q001", "q002")]
    prompts = build_prompts(qs, templates_per_value=3, include_intrinsic=False)
    draw = {}
    for p in prompts:
        draw.setdefault(p.language, []).append((p.query_id, p.target_value, p.template_id))
    assert all(draw[lang] == draw["en"] for lang in LANGUAGES)
    assert len({p.prompt_id for p in prompts}) == len(prompts)


def test_messages_are_hf_chat_format(builtin: list[Query]) -> None:
    p_int, p_pr = build_prompts(builtin[:1], values=["Power"], templates_per_value=1)
    assert p_int.messages() == [{"role": "user", "content": builtin[0].text}]
    assert p_pr.messages()[0]["role"] == "system" and p_pr.messages()[1]["role"] == "user"
    assert p_pr.target_value == "power"


def test_prompt_row_round_trip(builtin: list[Query], tmp_path) -> None:
    prompts = build_prompts(builtin[:2] + builtin[-2:], templates_per_value=1)
    for p in prompts:
        assert Prompt.from_dict(p.to_dict()) == p
    Prompt.write_jsonl(prompts, tmp_path / "p.jsonl")
    assert Prompt.read_jsonl(tmp_path / "p.jsonl") == prompts
    (tmp_path / "bad.jsonl").write_text('{"prompt_id": 1}\n', encoding="utf-8")
    with pytest.raises(InputError, match="lacks field"):
        Prompt.read_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match="lacks field 'user'"):
        Prompt.from_dict({k: v for k, v in p.to_dict().items() if k != "user"})


def test_values_and_languages_filters(builtin: list[Query]) -> None:
    assert {p.target_value for p in build_prompts(builtin[:1], values="Power")} == {None, "power"}
    prompts = build_prompts(builtin, values=["self-direction", "Tradition"], languages=["zh"], templates_per_value=1)
    assert {p.language for p in prompts} == {"zh"}
    assert {p.target_value for p in prompts} - {None} == {"self_direction", "tradition"}


def test_custom_templates() -> None:
    q = Query("x1", "Hola", "es", "unit")
    ts = [Template(f"mine/{i}", "Power", "es", f"Poder {i}.") for i in range(3)]
    prompts = build_prompts([q], values=["power"], templates_per_value=3, templates=ts)
    assert sorted(p.system for p in prompts if p.system) == ["Poder 0.", "Poder 1.", "Poder 2."]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"values": ["kindness"]}, "unknown value 'kindness'"),
        ({"languages": ["de"]}, "language 'de'"),
        ({"templates_per_value": 26}, "templates_per_value<=25"),
        ({"templates_per_value": -1}, "templates_per_value=-1"),
        ({"values": []}, "values is empty"),
        ({"values": ["power", "Power"]}, "twice"),
        ({"include_intrinsic": False, "templates_per_value": 0}, "build nothing"),
    ],
)
def test_bad_arguments_give_one_clear_line(builtin: list[Query], kwargs: dict, needle: str) -> None:
    with pytest.raises(InputError, match=needle) as err:
        build_prompts(builtin[:3], **kwargs)
    assert "\n" not in str(err.value)


def test_empty_set_and_duplicates_and_language_without_templates() -> None:
    with pytest.raises(InputError, match="no queries"):
        build_prompts([])
    q = Query("a", "text", "en", "unit")
    with pytest.raises(InputError, match="appears twice"):
        build_prompts([q, q])
    with pytest.raises(InputError, match="no built-in system prompts in language 'de'"):
        build_prompts([Query("a", "Hallo", "de", "unit")], templates_per_value=1)
    # Intrinsic-only works for any language.
    assert len(build_prompts([Query("a", "Hallo", "de", "unit")], templates_per_value=0)) == 1


def test_query_and_prompt_validation() -> None:
    with pytest.raises(InputError, match="empty text"):
        Query("a", "  ", "en", "unit")
    with pytest.raises(InputError, match="condition"):
        Prompt("p", "q", "other", None, "en", None, None, "u", "s")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="intrinsic prompt has no system"):
        Prompt("p", "q", "intrinsic", None, "en", None, "sys", "u", "s")
