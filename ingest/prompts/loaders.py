"""Query loaders: the built-in set, tables (JSONL, CSV, Parquet, JSON) and Hugging Face datasets.

Column mapping. A table's columns are mapped to query fields with ``field=column`` pairs, as on the
command line (``--column text=question --column id=qid --column language=lang``):

    text      the query text (required; default column ``text``)
    id        a stable query id (default column ``id`` if present, else a hash of source and text)
    language  ISO 639-1 code per row (default column ``language`` if present, else ``language=``)
    topic     an optional label kept with the query

Every other column is kept in ``Query.meta``. Rows are read in file order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from actstore.errors import InputError
from ingest.values import LANGUAGES

from .model import Query, stable_id

FIELDS: tuple[str, ...] = ("text", "id", "language", "topic")
BUILTIN_SOURCE = "actstore-builtin"


def parse_column_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["text=question", "id=qid"]`` -> ``{"text": "question", "id": "qid"}``."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, col = pair.partition("=")
        key, col = key.strip(), col.strip()
        if not sep or not key or not col:
            raise InputError(f"bad column mapping {pair!r}; write FIELD=COLUMN, e.g. text=question")
        if key not in FIELDS:
            raise InputError(f"unknown field {key!r} in column mapping {pair!r}; use one of {', '.join(FIELDS)}")
        out[key] = col
    return out


def _mapping(columns: Mapping[str, str] | Sequence[str] | None) -> Mapping[str, str] | None:
    if columns is None or isinstance(columns, Mapping):
        return columns
    return parse_column_mapping(columns)


# -- built-in set -----------------------------------------------------------------------------------


def load_builtin_queries(languages: Sequence[str] | None = None) -> list[Query]:
    """The project's own value-eliciting questions, parallel in en, zh, es, fr, ko.

    The same ``query_id`` (``q001``...) names one question in every language. Order: by language as
    asked (default ``LANGUAGES``), then by id.
    """
    langs = list(LANGUAGES) if languages is None else list(languages)
    for lang in langs:
        if lang not in LANGUAGES:
            raise InputError(f"no built-in queries in language {lang!r}; use one of {', '.join(LANGUAGES)}")
    items: list[dict[str, Any]] = []
    folder = resources.files("ingest.data").joinpath("queries")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            items.extend(json.loads(entry.read_text(encoding="utf-8")))
    items.sort(key=lambda it: it["id"])
    return [
        Query(it["id"], it["text"][lang], lang, BUILTIN_SOURCE, it.get("topic"))
        for lang in langs
        for it in items
    ]


# -- tables -----------------------------------------------------------------------------------------


def _read_rows(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            row = json.loads(line)
                        except json.JSONDecodeError as e:
                            raise InputError(f"{path}: line {n} is not valid JSON ({e.msg}); fix or remove it") from None
                        if not isinstance(row, dict):
                            raise InputError(f"{path}: line {n} is not a JSON object; write one object per line")
                        rows.append(row)
        elif suffix == ".json":
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise InputError(f"{path}: expected a JSON list of objects; use one object per query")
            rows = data
        elif suffix in (".csv", ".tsv"):
            import pandas as pd

            df = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
            rows = df.to_dict("records")
            return rows, list(df.columns)
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            return table.to_pylist(), list(table.column_names)
        else:
            raise InputError(f"{path}: unknown file type {suffix!r}; use .jsonl, .json, .csv, .tsv or .parquet")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; check the path") from None
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as e:  # pandas/pyarrow parse errors derive from these
        first = (str(e).splitlines() or [""])[0]
        raise InputError(f"{path}: cannot read it as {suffix} ({type(e).__name__}: {first}); check the file") from None
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    return rows, columns


def queries_from_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    where: str,
    mapping: Mapping[str, str] | None = None,
    language: str | None = None,
    source: str | None = None,
) -> list[Query]:
    """Map rows to queries; ``where`` names the input in error messages."""
    m = dict(mapping or {})
    for key in m:
        if key not in FIELDS:
            raise InputError(f"unknown field {key!r} in column mapping; use one of {', '.join(FIELDS)}")
    m.setdefault("text", "text")
    for key in ("id", "language", "topic"):
        if key not in m and key in columns:
            m[key] = key
    for key, col in m.items():
        if col not in columns:
            raise InputError(
                f"{where}: no column {col!r} for {key} (columns: {', '.join(map(str, columns)) or 'none'}); "
                f"pass --column {key}=<column>"
            )
    if "language" not in m and language is None:
        language = "en"
    src = source or where
    used = set(m.values())
    out: list[Query] = []
    for n, row in enumerate(rows, 1):
        text = row.get(m["text"])
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where}: row {n} has no text in column {m['text']!r}; fill it in or drop the row")
        lang = str(row.get(m["language"]) or "") if "language" in m else language
        if not lang:
            raise InputError(f"{where}: row {n} has no language in column {m['language']!r}; fill it in")
        qid = row.get(m["id"]) if "id" in m else None
        qid = str(qid) if qid not in (None, "") else stable_id(src, text, prefix="q-", length=12)
        topic = row.get(m["topic"]) if "topic" in m else None
        meta = {k: v for k, v in row.items() if k not in used}
        out.append(Query(qid, text, lang, src, str(topic) if topic not in (None, "") else None, meta))
    if not out:
        raise InputError(f"{where}: no rows; give a file with at least one query")
    return out


def load_query_table(
    path: str | Path,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    language: str | None = None,
    source: str | None = None,
) -> list[Query]:
    """Queries from a JSONL, JSON (list of objects), CSV, TSV or Parquet file.

    columns: a mapping ``{"text": "question"}`` or CLI-style pairs ``["text=question"]``.
    language: used when no language column is mapped (default ``"en"``).
    source: recorded on each query (default: the file's name).
    """
    path = Path(path)
    rows, cols = _read_rows(path)
    return queries_from_rows(rows, cols, str(path), _mapping(columns), language, source or path.name)


# -- Hugging Face datasets --------------------------------------------------------------------------


def load_hf_queries(
    name: str,
    split: str = "train",
    columns: Mapping[str, str] | Sequence[str] | None = None,
    config: str | None = None,
    language: str | None = None,
) -> list[Query]:
    """Queries from a Hugging Face dataset by name (needs the ``datasets`` library and network)."""
    try:
        import datasets  # imported here: optional, heavy, and only this loader needs it
    except ImportError:
        raise InputError(
            f"cannot load dataset {name!r}: the 'datasets' library is not installed; "
            "pip install datasets, or download the data and pass a local JSONL/CSV/Parquet file"
        ) from None
    try:
        ds = datasets.load_dataset(name, config, split=split)
    except Exception as e:  # noqa: BLE001 -- network, auth, missing split: the library raises many types
        raise InputError(
            f"cannot load dataset {name!r} (split {split!r}): {type(e).__name__}: {(str(e).splitlines() or [''])[0]}; "
            "without network access, download it elsewhere and pass a local JSONL/CSV/Parquet file"
        ) from None
    return queries_from_rows(list(ds), list(ds.column_names), f"hf:{name}", _mapping(columns), language, f"hf:{name}")


# -- one entry point for the CLI --------------------------------------------------------------------


def load_queries(
    spec: str,
    columns: Mapping[str, str] | Sequence[str] | None = None,
    languages: Sequence[str] | None = None,
    language: str | None = None,
) -> list[Query]:
    """Resolve a query-set spec:

    ``builtin``                 the built-in set (``languages`` filters it)
    ``hf:NAME[:SPLIT]``         a Hugging Face dataset
    a Value Portrait directory  (has ``queries/`` or ``tagged_responses.json``) or one of its query files
    any other path              a table, see :func:`load_query_table`
    """
    from .value_portrait import is_value_portrait, load_value_portrait_queries

    if spec == "builtin":
        return load_builtin_queries(languages)
    if spec.startswith("hf:"):
        name, _, split = spec[3:].partition(":")
        out = load_hf_queries(name, split or "train", columns, language=language)
    elif is_value_portrait(Path(spec)):
        out = load_value_portrait_queries(spec)
    else:
        out = load_query_table(spec, columns, language)
    if languages is not None:
        out = [q for q in out if q.language in languages]
        if not out:
            raise InputError(f"{spec}: no queries in language(s) {', '.join(languages)}; check --language")
    return out
