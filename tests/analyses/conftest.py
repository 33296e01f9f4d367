"""Fixtures for the analyses tests: planted-truth data, built once per session (it is seeded)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Make `import planted` work whatever pytest's import mode (importlib mode adds nothing to sys.path).
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import planted

#: The Value Portrait survey data, read by path (never copied into the repo).
VALUE_PORTRAIT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "value-portrait"


@pytest.fixture(scope="session")
def planted_vecs() -> planted.PlantedVectors:
    return planted.planted_vectors()


@pytest.fixture(scope="session")
def value_portrait() -> Path:
    path = VALUE_PORTRAIT / "human_pvq21_scores.json"
    if not path.is_file():
        pytest.skip(f"Value Portrait survey data not found at {path} (shared data is not in this checkout)")
    return path
