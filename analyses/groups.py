"""SQL that sorts records (or token rows) into the groups a difference in means compares.

Every builder returns a query whose two columns are ``(row, gid)``, the form
``store.group_means(..., groups=query)`` takes, together with the list of group keys that ``gid``
indexes. The group id is an integer on purpose: a store with millions of records would otherwise
hand back millions of label strings, and an integer keeps the group index at 16 bytes a record.

The study's contrast (DESIGN, step 4) is *within a condition*:

- intrinsic: records whose prompt has condition ``'intrinsic'``, split by the judge's label for
  value s (so one intrinsic response counts once for each of the ten values);
  a judge's abstentions (``expressed`` NULL: its verdict could not be read) belong to neither group;
- prompted: records whose prompt has condition ``'prompted'`` **and** target value s, split by the
  label for s.

Value names in the catalog are compared in a normal form (lower case, ``-`` and spaces as ``_``)
so that ``"Self-Direction"`` in a label table matches the slug ``self_direction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actstore.errors import InputError
from analyses.vectors import CONDITIONS, EXP, UNEXP

#: A group: (language or None, value slug, condition, label). Language is None unless split by it.
Key = tuple[str | None, str, str, str]


def sql_str(text: str) -> str:
    """A SQL string literal (quotes doubled): values here come from options, never trusted."""
    return "'" + text.replace("'", "''") + "'"


def norm_sql(column: str) -> str:
    """SQL expression giving the slug form of a value-name column."""
    return f"replace(replace(lower(trim({column})), '-', '_'), ' ', '_')"


@dataclass(frozen=True, slots=True)
class Groups:
    """A ``(row, gid)`` query and what each gid means: ``keys[gid]``."""

    query: str
    keys: tuple[Key, ...]

    def label(self, gid: int) -> Key:
        return self.keys[gid]


def _keys_table(keys: Sequence[Key]) -> str:
    rows = ", ".join(
        f"({i}, {sql_str(lang) if lang is not None else 'NULL'}, {sql_str(v)}, {sql_str(c)}, {sql_str(lab)})"
        for i, (lang, v, c, lab) in enumerate(keys))
    return f"g(gid, language, value, condition, label) AS (VALUES {rows})"


def _filters(judge: str | None, language: str | None) -> str:
    out = ""
    if judge is not None:
        out += f" AND l.judge_id = {sql_str(judge)}"
    if language is not None:
        out += f" AND l.language = {sql_str(language)}"
    return out


def exp_unexp(values: Sequence[str], judge: str | None = None, language: str | None = None,
              languages: Sequence[str] | None = None, conditions: Sequence[str] = CONDITIONS) -> Groups:
    """The study's contrast: groups ``(lang, value, condition, exp|unexp)`` over record ids.

    ``languages`` given: one set of groups per language (for cross-lingual vectors); else the
    language of a record is ignored (or filtered to ``language``). ``conditions``: the conditions
    to make groups for (a store of imported responses has only ``intrinsic``).
    """
    langs: Sequence[str | None] = list(languages) if languages else [None]
    keys = [(lang, v, c, lab) for lang in langs for v in values for c in conditions for lab in (EXP, UNEXP)]
    lang_join = " AND g.language = l.language" if languages else ""
    query = f"""WITH {_keys_table(keys)},
l AS (SELECT record_id, {norm_sql('value')} AS value, condition, {norm_sql('target_value')} AS target,
             language, expressed, judge_id FROM record_labels)
SELECT l.record_id AS "row", g.gid
FROM l JOIN g ON g.value = l.value AND g.condition = l.condition
     AND g.label = CASE WHEN l.expressed THEN '{EXP}' ELSE '{UNEXP}' END{lang_join}
WHERE l.expressed IS NOT NULL
  AND (l.condition = 'intrinsic' OR (l.condition = 'prompted' AND l.target = l.value)){_filters(judge, language)}"""
    return Groups(query, tuple(keys))


def prompted_intrinsic(values: Sequence[str], judge: str | None = None, language: str | None = None) -> Groups:
    """Prompted minus intrinsic, both restricted to R_exp for value s (what the system prompt adds
    to a response that expresses the value anyway). Keys use label ``exp`` for both conditions."""
    return _subset(exp_unexp(values, judge, language), lambda k: k[3] == EXP)


def _subset(groups: Groups, keep) -> Groups:
    kept = [k for k in groups.keys if keep(k)]
    # Reuse the full query and drop unwanted gids: simpler than a second SQL template.
    idx = {k: i for i, k in enumerate(kept)}
    remap = " ".join(f"WHEN {groups.keys.index(k)} THEN {i}" for k, i in idx.items())
    query = (f'SELECT "row", CASE gid {remap} END AS gid FROM ({groups.query}) '
             f"WHERE gid IN ({', '.join(str(groups.keys.index(k)) for k in kept)})")
    return Groups(query, tuple(kept))


def custom(pos_query: str, neg_query: str) -> Groups:
    """Any two groups given as SQL; each query's first column is a record id (with a token query,
    :func:`on_tokens` then takes those records' selected token rows). Keys:
    ``(None, 'custom', 'sql', 'pos'|'neg')``."""
    for q in (pos_query, neg_query):
        if not q.strip():
            raise InputError("a --contrast sql: needs two queries, 'sql:POS_QUERY;NEG_QUERY'")
    keys: tuple[Key, ...] = ((None, "custom", "sql", "pos"), (None, "custom", "sql", "neg"))
    query = (f'SELECT p."row", 0 AS gid FROM ({pos_query}) AS p("row") '
             f'UNION ALL SELECT n."row", 1 AS gid FROM ({neg_query}) AS n("row")')
    return Groups(query, keys)


def on_tokens(groups: Groups, token_query: str) -> Groups:
    """Record groups -> token-row groups: each token row of ``token_query`` (first column = the
    global token row) takes the groups of its record. The per-token arrays are then averaged over
    exactly those rows."""
    query = (f'WITH sel AS (SELECT DISTINCT s."row" FROM ({token_query}) AS s("row")), '
             f'rg AS ({groups.query}) '
             f'SELECT sel."row", rg.gid FROM sel JOIN tokens t ON t."row" = sel."row" '
             f'JOIN rg ON rg."row" = t.record_id')
    return Groups(query, groups.keys)


def labelled_values(store, judge: str | None = None) -> list[str]:
    """Slugs of the values that have labels in the store (in the order of the ten values)."""
    from ingest.values import VALUE_SLUGS

    where = " WHERE expressed IS NOT NULL" + (f" AND judge_id = {sql_str(judge)}" if judge is not None else "")
    have = {r[0] for r in store.sql(f"SELECT DISTINCT {norm_sql('value')} FROM labels{where}").fetchall()}
    return [v for v in VALUE_SLUGS if v in have]


def languages(store) -> list[str]:
    """Languages of the labelled records, sorted (records without a language left out)."""
    rows = store.sql("SELECT DISTINCT language FROM record_labels WHERE language IS NOT NULL ORDER BY 1").fetchall()
    return [r[0] for r in rows]
