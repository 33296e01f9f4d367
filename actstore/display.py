"""Tables as text for the command line: one look for every command (``sql``, ``analyze``, ``steer``, demo).

A missing value prints as ``NULL`` everywhere (DuckDB's word, and what a query tests with ``IS NULL``),
whether pandas holds it as ``None``, ``NaN`` or ``<NA>``. pandas is imported by the caller's frame,
not here, so importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

MISSING = "NULL"


def table_text(df: Any, max_rows: int | None = 60, float_format: str | None = None) -> str:
    """``df`` as aligned text without the index; ``(no rows)`` when empty; floats as ``float_format``
    (e.g. ``"{:.4g}"``)."""
    if not len(df):
        return "(no rows)"
    df = df.copy()
    for col in df.columns:  # na_rep covers float NaN only: None in object and <NA> in nullable columns stay
        if df[col].dtype.kind != "f" and df[col].isna().any():
            df[col] = df[col].astype(object).where(df[col].notna(), MISSING)
    fmt = float_format.format if float_format else None
    return df.to_string(index=False, max_rows=max_rows, na_rep=MISSING, float_format=fmt)
