"""Which model a store or a command is about, for choosing defaults, without importing torch.

The value world's defaults (its lexicon judge, its prompts, its steering judge) fit only the
project's own value-world model; :func:`is_valueworld_model` tells it from any other model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

#: The project's value-world model (``ingest/valueworld``), found without importing that package.
VALUEWORLD_CHECKPOINT = Path(__file__).resolve().parent / "valueworld" / "checkpoint"


def is_valueworld_model(name: str | os.PathLike[str] | None = None, info: Any = None) -> bool:
    """Is this the value-world model? ``name``: a model argument (the shipped checkpoint's directory);
    ``info``: a store's ``ModelInfo`` (its name, else its sizes equal the checkpoint's: a store made
    on another machine records another path). Value-world defaults (the lexicon judge, its prompts)
    apply only to it."""
    names = [os.fspath(n) for n in (name, getattr(info, "name", None)) if n]
    for n in names:
        try:
            if Path(n).expanduser().resolve() == VALUEWORLD_CHECKPOINT:
                return True
        except OSError:
            pass
    if info is None:
        return False
    try:
        cfg = json.loads((VALUEWORLD_CHECKPOINT / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (getattr(info, "family", None), info.n_layers, info.d_model, getattr(info, "d_mlp", None),
            getattr(info, "vocab_size", None)) == (cfg.get("model_type"), cfg.get("num_hidden_layers"),
                                                  cfg.get("hidden_size"), cfg.get("intermediate_size"),
                                                  cfg.get("vocab_size"))
