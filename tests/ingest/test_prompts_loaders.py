"""Query loaders: tables with a column mapping, Hugging Face by name, Value Portrait files by path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from actstore.errors import InputError
from ingest.prompts import (
    build_prompts,
    load_hf_queries,
    load_queries,
    load_query_table,
    load_value_portrait_queries,
    load_value_portrait_tagged,
    parse_column_mapping,
)
from ingest.values import VALUE_SLUGS

# CI checks out ../shared next to the repo; the data is read in place, never copied into the repo.
VP = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "value-portrait"
needs_vp = pytest.mark.skipif(not VP.is_dir(), reason=f"Value Portrait data not found at {VP}")

ROWS = [
    {"qid": "a1", "question": "Should I move abroad?", "lang": "en", "cat": "career"},
    {"qid": "a2", "question": "¿Debería mudarme?", "lang": "es", "cat": "career"},
]


def _write(tmp_path: Path, kind: str, rows: list[dict] = ROWS) -> Path:
    import pandas as pd

    path = tmp_path / f"q.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    elif kind == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    elif kind == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif kind == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    return path


def test_parse_column_mapping() -> None:
    assert parse_column_mapping(["text=question", "id = qid"]) == {"text": "question", "id": "qid"}
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_column_mapping(["question"])
    with pytest.raises(InputError, match="unknown field 'body'"):
        parse_column_mapping(["body=question"])


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "parquet"])
def test_table_with_column_mapping(tmp_path: Path, kind: str) -> None:
    path = _write(tmp_path, kind)
    qs = load_query_table(path, ["text=question", "id=qid", "language=lang", "topic=cat"])
    assert [(q.query_id, q.language, q.topic) for q in qs] == [("a1", "en", "career"), ("a2", "es", "career")]
    assert qs[1].text == "¿Debería mudarme?" and qs[0].source == path.name
    assert qs[0].meta == {}  # every column was mapped


def test_table_defaults_and_meta(tmp_path: Path) -> None:
    path = _write(tmp_path, "jsonl", [{"text": "Plain question?", "extra": 3}])
    (q,) = load_query_table(path)
    assert q.language == "en" and q.query_id.startswith("q-") and q.meta == {"extra": 3}
    (again,) = load_query_table(path)
    assert again.query_id == q.query_id  # hashed id is stable
    (fr,) = load_query_table(path, language="fr")
    assert fr.language == "fr"


def test_missing_column_names_file_column_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "csv")
    with pytest.raises(InputError) as err:
        load_query_table(path)
    msg = str(err.value)
    assert str(path) in msg and "'text'" in msg and "--column text=" in msg and "question" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("content", "suffix", "needle"),
    [
        ('{"text": "ok"}\n{not json\n', "jsonl", "line 2 is not valid JSON"),
        ('["a", "b"]\n', "jsonl", "line 1 is not a JSON object"),
        ('{"text": 1', "json", "not valid JSON"),
        ('{"text": "x"}', "json", "list of objects"),
        ("text\n\n", "csv", "no rows"),
        ("hello", "txt", "unknown file type"),
        ("not parquet at all", "parquet", "cannot read it"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, suffix: str, needle: str) -> None:
    path = tmp_path / f"bad.{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=needle) as err:
        load_query_table(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_empty_text_row_and_missing_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "jsonl", [{"text": "fine"}, {"text": "  "}])
    with pytest.raises(InputError, match="row 2 has no text"):
        load_query_table(path)
    with pytest.raises(InputError, match="no such file"):
        load_query_table(tmp_path / "absent.jsonl")


def test_hf_loader_without_library_says_pass_a_local_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails as if not installed
    with pytest.raises(InputError, match="local JSONL/CSV/Parquet"):
        load_hf_queries("someone/questions")


def test_hf_loader_offline_says_pass_a_local_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    fake = types.ModuleType("datasets")

    def load_dataset(*a: object, **k: object) -> None:
        raise ConnectionError("Couldn't reach the Hub")

    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    with pytest.raises(InputError, match="ConnectionError.*local JSONL/CSV/Parquet"):
        load_hf_queries("someone/questions", columns=["text=prompt"])


def test_hf_loader_maps_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    class FakeDS(list):
        column_names = ("prompt", "idx")

    fake = types.ModuleType("datasets")
    fake.load_dataset = lambda name, config, split: FakeDS([{"prompt": "Hi?", "idx": 4}])  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    (q,) = load_queries("hf:someone/questions:test", columns=["text=prompt", "id=idx"])
    assert (q.query_id, q.text, q.source) == ("4", "Hi?", "hf:someone/questions")


def test_load_queries_dispatch(tmp_path: Path) -> None:
    assert len(load_queries("builtin", languages=["fr"])) >= 200
    path = _write(tmp_path, "jsonl")
    qs = load_queries(str(path), columns=["text=question", "language=lang"], languages=["es"])
    assert [q.language for q in qs] == ["es"]


@needs_vp
def test_value_portrait_queries() -> None:
    qs = load_value_portrait_queries(VP)
    assert len(qs) == 96 and len({q.query_id for q in qs}) == 96
    assert {q.topic for q in qs} == {"Reddit", "DearAbby", "ShareGPT", "LMSYS"}
    assert all(q.language == "en" and q.source == "value-portrait" for q in qs)
    assert all(set(q.meta["relevant_values"]) <= set(VALUE_SLUGS) for q in qs)
    reddit = next(q for q in qs if q.topic == "Reddit")
    abby = next(q for q in qs if q.topic == "DearAbby")
    assert reddit.text.startswith(reddit.meta["title"])  # the poster's own title is kept
    assert not abby.text.startswith(abby.meta["title"])  # the columnist's headline is not
    assert len(load_value_portrait_queries(VP / "queries" / "LMSYS.json")) == 24
    assert len(load_value_portrait_queries(VP, sources=["Reddit"])) == 24
    assert len(load_queries(str(VP))) == 96
    assert len(build_prompts(qs, templates_per_value=1)) == 96 * 11


@needs_vp
def test_value_portrait_tagged_responses() -> None:
    tagged = load_value_portrait_tagged(VP)
    assert len(tagged) == 520 and len({t.response_id for t in tagged}) == 520
    assert all(set(t.scores) == set(VALUE_SLUGS) for t in tagged)
    # rho >= 0.3 means expressed: 221 responses, 286 response-value pairs in this copy.
    assert sum(1 for t in tagged if t.expressed) == 221
    assert sum(len(t.expressed) for t in tagged) == 286
    labels = [lab for t in tagged for lab in t.labels()]
    assert len(labels) == 5200 and sum(lab.expressed for lab in labels) == 286
    assert all(lab.expressed == (lab.score >= 0.3) for lab in labels)
    # The tagged file's queries are the same queries (same ids) as the query files'.
    ids = {q.query_id for q in load_value_portrait_queries(VP)}
    assert ids <= {t.query.query_id for t in tagged}
    # A judge can be scored against the human tags: the tags agree with themselves.
    from ingest.judges import LexiconJudge, agreement

    items = [t.judge_item(["power", "benevolence"]) for t in tagged[:50]]
    assert items[0].query == tagged[0].query.text and items[0].values == ("power", "benevolence")
    lex = LexiconJudge({"power": ["power", "control"], "benevolence": ["kind", "friend"]}).judge(items)
    assert agreement(labels, labels).kappa == 1.0
    assert agreement(lex, labels).n == 100
    stricter = load_value_portrait_tagged(VP / "tagged_responses.json", threshold=0.5)
    assert sum(len(t.expressed) for t in stricter) < 286


def test_value_portrait_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "tagged_responses.json"
    bad.write_text(json.dumps([{"content": {"text": "x"}, "outputs": []}]), encoding="utf-8")
    with pytest.raises(InputError, match="no field 'portrait_id'"):
        load_value_portrait_tagged(bad)
    bad.write_text(json.dumps([{"portrait_id": 1001, "content": {"text": "x"},
                                "outputs": [{"id": 1, "content": "r", "correlations": [["Kindness", 0.4]]}]}]))
    with pytest.raises(InputError, match="unknown value 'Kindness'"):
        load_value_portrait_tagged(tmp_path)
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_value_portrait_tagged(bad)
