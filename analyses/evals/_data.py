"""Reading the built-in package data and user files, with one-line errors that name the file and the fix."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

from actstore.errors import InputError


def package_text(name: str) -> str:
    """The text of a file shipped in ``analyses/evals/data/``."""
    return resources.files("analyses.evals").joinpath("data").joinpath(name).read_text(encoding="utf-8")


def package_json(name: str) -> Any:
    return json.loads(package_text(name))


def existing_path(path: str | Path, what: str, fix: str) -> Path:
    """``path`` as a Path, or InputError if it is not there (``fix`` says what to pass instead)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError(f"{what} not found: {p}; {fix}")
    return p


def read_json(path: Path, fix: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read {path} as JSON ({err}); {fix}") from None


def read_csv_rows(path: Path, fix: str) -> list[list[str]]:
    """All rows of a CSV file (BOM tolerated); InputError if it cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read {path} as CSV ({err}); {fix}") from None


def read_csv_dicts(path: Path, fix: str) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as dicts) of a CSV file with a header row."""
    rows = read_csv_rows(path, fix)
    if not rows:
        raise InputError(f"{path} is empty; {fix}")
    header = [h.strip() for h in rows[0]]
    out = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are common at the end of hand-edited files
        out.append({h: (row[i] if i < len(row) else "") for i, h in enumerate(header)})
    return header, out
