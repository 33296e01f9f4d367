"""The tiny-model builders of tests/ingest/conftest.py, for the steering tests.

That conftest is not importable as a package module, so it is loaded once, by path, here.
"""

import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "ingest" / "conftest.py"
_spec = importlib.util.spec_from_file_location("_steer_ingest_fixtures", _PATH)
FX = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(FX)
