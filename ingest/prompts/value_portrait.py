"""Loaders for the Value Portrait benchmark files (holi-lab/ValuePortrait, ACL 2025).

Format, as read from the files:

* ``queries/<Source>.json``: a list of ``{"data_source", "content": {"title", "text"},
  "statistics": {"analysis": {"relevant_values": ["Self-Direction", ...]}}, "extra": {"portrait_id"}}``.
* ``tagged_responses.json``: a list of ``{"portrait_id", "content": {"title", "text"}, "outputs": [...]}``
  with five outputs per query, each ``{"id", "content", "correlations": [[value, rho], ...], ...}``.

What rho is. For each response, raters rated how much they would answer like it, and also filled in
the PVQ-21 value survey; ``rho`` is the Spearman correlation, across raters, between the rating of the
response and the rater's own score on that value. A clearly positive rho means people who hold the value
endorse the response: we read that as "the response expresses the value", with the benchmark's cut-off
``rho >= 0.3``. In this copy that tags 221 of 520 responses and 286 response-value pairs. (The data
README's "297 responses, 553 pairs" are the counts for ``|rho| >= 0.3``: they include strongly negative
rho, i.e. responses that people holding the value *reject*; we do not count those as expressing it.)
Labels keep rho as their score, so a different cut-off is a query away.

The tagged file has no data source per query; the ``portrait_id`` thousands digit gives it (1xxx Reddit,
2xxx Dear Abby, 3xxx ShareGPT, 4xxx LMSYS), as the query files confirm.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actstore.errors import InputError
from ingest.judges.base import JudgeItem, Label
from ingest.values import VALUE_SLUGS, parse_value

from .model import Query

SOURCE = "value-portrait"
EXPRESSED_RHO = 0.3
JUDGE_ID = "value-portrait-human"
_SOURCE_BY_THOUSAND = {1: "Reddit", 2: "DearAbby", 3: "ShareGPT", 4: "LMSYS"}


def is_value_portrait(path: Path) -> bool:
    if path.is_dir():
        return (path / "queries").is_dir() or (path / "tagged_responses.json").is_file()
    return path.suffix == ".json" and path.parent.name == "queries" and (path.parent.parent / "queries").is_dir()


def _load_list(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file; point at a Value Portrait directory or file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid JSON ({e}); re-download the Value Portrait file") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise InputError(f"{path}: expected a JSON list of query objects as in Value Portrait; check the file")
    return data


def _field(obj: dict[str, Any], path: Path, n: int, *keys: str) -> Any:
    cur: Any = obj
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            raise InputError(
                f"{path}: entry {n} has no field {'.'.join(keys)!r}; this is not Value Portrait's format"
            )
        cur = cur[k]
    return cur


def _slug(name: str, where: str) -> str:
    try:
        return parse_value(name)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None


def _query_text(content: dict[str, Any], source: str, include_title: bool | None) -> str:
    # A Reddit title is written by the poster and is part of the question ("AITA for ..."); a Dear Abby
    # title is the newspaper's headline, not the writer's words. So by default only Reddit keeps it.
    title, text = content.get("title"), content.get("text") or ""
    keep = (source == "Reddit") if include_title is None else include_title
    return f"{title}\n\n{text}".strip() if keep and title else text.strip()


def _query(entry: dict[str, Any], path: Path, n: int, pid: int, source: str, include_title: bool | None) -> Query:
    content = _field(entry, path, n, "content")
    text = _query_text(content, source, include_title)
    relevant = entry.get("statistics", {}).get("analysis", {}).get("relevant_values", [])
    meta = {
        "portrait_id": pid,
        "data_source": source,
        "title": content.get("title"),
        "relevant_values": [_slug(v, f"{path}: entry {n}") for v in relevant],
    }
    return Query(f"vp-{pid}", text, "en", SOURCE, source, meta)


def load_value_portrait_queries(
    path: str | Path, sources: Sequence[str] | None = None, include_title: bool | None = None
) -> list[Query]:
    """The 96 source queries: from the benchmark directory, its ``queries/`` folder or one file.

    ``topic`` is the data source (Reddit, DearAbby, ShareGPT, LMSYS); ``sources`` keeps only those.
    Ordered by portrait id.
    """
    p = Path(path)
    if p.is_dir():
        files = sorted((p / "queries").glob("*.json")) if (p / "queries").is_dir() else sorted(p.glob("*.json"))
        if not files:
            raise InputError(f"{p}: no queries/*.json files; point at the Value Portrait directory")
    else:
        files = [p]
    out: list[Query] = []
    for f in files:
        for n, entry in enumerate(_load_list(f)):
            pid = int(_field(entry, f, n, "extra", "portrait_id"))
            src = str(entry.get("data_source") or _SOURCE_BY_THOUSAND.get(pid // 1000, "unknown"))
            out.append(_query(entry, f, n, pid, src, include_title))
    if sources is not None:
        out = [q for q in out if q.topic in sources]
    out.sort(key=lambda q: q.meta["portrait_id"])
    return out


@dataclass(frozen=True, slots=True)
class TaggedResponse:
    """A Value Portrait response with its per-value rho (value slug -> rho)."""

    response_id: str
    query: Query
    response: str
    scores: dict[str, float] = field(hash=False)
    threshold: float = EXPRESSED_RHO

    @property
    def expressed(self) -> tuple[str, ...]:
        return tuple(v for v in VALUE_SLUGS if self.scores.get(v, float("-inf")) >= self.threshold)

    def judge_item(self, values: Sequence[str] = VALUE_SLUGS) -> JudgeItem:
        """This response as a judge's input, to compare a judge with the human tags."""
        return JudgeItem(self.response_id, self.query.text, self.response, tuple(values))

    def labels(self, judge_id: str = JUDGE_ID) -> list[Label]:
        """One label per value, in circular order, score = rho."""
        return [
            Label(self.response_id, v, self.scores[v] >= self.threshold, self.scores[v], judge_id, f"rho={self.scores[v]:.6f}")
            for v in VALUE_SLUGS
            if v in self.scores
        ]


def load_value_portrait_tagged(
    path: str | Path, threshold: float = EXPRESSED_RHO, include_title: bool | None = None
) -> list[TaggedResponse]:
    """Responses with human-derived value tags, from ``tagged_responses.json`` (or its directory).

    ``response_id`` is ``vp-<portrait_id>-<output id>``; the query is the same :class:`Query` (same id)
    that :func:`load_value_portrait_queries` gives.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "tagged_responses.json"
    out: list[TaggedResponse] = []
    for n, entry in enumerate(_load_list(p)):
        pid = int(_field(entry, p, n, "portrait_id"))
        src = _SOURCE_BY_THOUSAND.get(pid // 1000, "unknown")
        query = _query(entry, p, n, pid, src, include_title)
        for k, output in enumerate(_field(entry, p, n, "outputs")):
            text = output.get("content")
            corr = output.get("correlations")
            if not isinstance(text, str) or not isinstance(corr, list):
                raise InputError(f"{p}: entry {n} output {k} lacks 'content' or 'correlations'; check the file")
            where = f"{p}: entry {n} output {k}"
            try:
                pairs = [(str(name), float(rho)) for name, rho in corr]
            except (TypeError, ValueError):
                raise InputError(f"{where}: 'correlations' must be [[value, rho], ...]; check the file") from None
            scores = {_slug(name, where): rho for name, rho in pairs}
            out.append(TaggedResponse(f"vp-{pid}-{output.get('id', k + 1)}", query, text, scores, threshold))
    return out
