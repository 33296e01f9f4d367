"""Models -> store: prompts, generation, judging, activation capture, writing.

Library twins of ``actstore ingest ...``, each taking one :class:`ingest.config.IngestConfig`:
``ingest.run(config)`` (the whole pipeline) and, per stage, ``ingest.pipeline.generate``,
``.label``, ``.capture`` and ``.import_`` (``ingest.generate`` and ``ingest.capture`` are the
sampling and hook modules, so the stage functions live in ``ingest.pipeline``). Loaded lazily:
``import ingest`` does not import torch.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "run":
        from ingest.pipeline import run

        return run
    if name == "IngestConfig":
        from ingest.config import IngestConfig

        return IngestConfig
    raise AttributeError(f"module 'ingest' has no attribute {name!r}")
