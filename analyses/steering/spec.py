"""The sweep's configuration (a frozen value, validated once) and its deterministic keys.

A sweep's id is a hash of everything that changes its results (model, vectors, layers, strengths,
prompts, samples, evals, generation settings); a setting's id hashes the sweep id and what the
setting applies; a generation's id hashes the setting id, the eval, the item and the sample index.
Running a spec again therefore finds its rows and skips them: "resume" and "do no work when done"
are the same mechanism.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from actstore.errors import InputError
from analyses.steering.evalsets import check_evals, check_judge
from analyses.steering.generate import GenConfig
from analyses.steering.interventions import POSITIONS

ALPHA_MODES = ("relative", "absolute")
NEURON_MODES = ("scale", "zero", "mean")


def digest(obj: Any, prefix: str = "", length: int = 16) -> str:
    """A short stable hash of a JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return prefix + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def _floats(xs: Any, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in xs)
    except (TypeError, ValueError):
        raise InputError(f"bad {what} {xs!r}; give numbers, e.g. 0,4,8") from None


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs. Settings: a baseline (no intervention), plus

    * ``vectors`` x layers x ``alphas`` (non-zero): add ``alpha`` times the vector (``alpha_mode``
      relative: alpha times the mean residual norm at that layer times the unit vector; absolute:
      alpha times the stored vector). ``layers`` None = each vector at the layer it was extracted at.
    * with ``ablate``: each vector's direction projected out at ``ablate_layers`` (None = all).
    * ``neurons`` (a query on ``neuron_scores``) x ``betas``: the set's activations scaled by beta
      (``neuron_mode`` scale), or set to zero / their stored mean (one setting).

    Each setting answers every eval's items ``samples`` times (expression) or once (the others).

    ``None`` for model, alphas, prompts or judge: chosen for the store's model when the sweep runs
    (:func:`analyses.steering.sources.resolve_spec`). ``intrinsic_system``: items without a system
    prompt are asked with none (``default``: a chat template may insert its default system prompt)
    or with an empty one (``empty``), as in ingest.
    """

    model: str | None = None
    vectors: str | tuple[int, ...] | None = None
    layers: tuple[int, ...] | None = None
    alphas: tuple[float, ...] | None = None
    alpha_mode: str = "relative"
    ablate: bool = False
    ablate_layers: tuple[int, ...] | None = None
    neurons: str | None = None
    betas: tuple[float, ...] = (0.0,)
    neuron_mode: str = "scale"
    positions: str = "all"
    prompts: str | None = None
    language: str | None = "en"
    samples: int = 1
    evals: tuple[str, ...] = ("expression",)
    judge: str | None = None
    harmful: str = "builtin"
    mcq: str = "builtin"
    questionnaire: str = "builtin"
    limit: int | None = None
    gen: GenConfig = field(default_factory=GenConfig)
    dtype: str = "auto"
    device: str = "cpu"
    intrinsic_system: str = "default"

    def __post_init__(self) -> None:
        if self.model is not None and not str(self.model).strip():
            raise InputError("no model given; pass --model NAME_OR_PATH (the model the store was made with)")
        if self.intrinsic_system not in ("default", "empty"):
            raise InputError(f"bad intrinsic_system {self.intrinsic_system!r}; use default (no system message) or "
                             "empty (an empty system message)")
        if isinstance(self.vectors, (list, tuple)):
            object.__setattr__(self, "vectors", tuple(int(v) for v in self.vectors))
        object.__setattr__(self, "alphas", None if self.alphas is None else _floats(self.alphas, "alphas"))
        object.__setattr__(self, "betas", _floats(self.betas, "betas"))
        for name in ("layers", "ablate_layers"):
            val = getattr(self, name)
            if val is not None:
                object.__setattr__(self, name, tuple(int(x) for x in val))
        if self.alpha_mode not in ALPHA_MODES:
            raise InputError(f"bad alpha mode {self.alpha_mode!r}; use relative or absolute")
        if self.neuron_mode not in NEURON_MODES:
            raise InputError(f"bad neuron mode {self.neuron_mode!r}; use scale, zero or mean")
        if self.positions not in POSITIONS:
            raise InputError(f"bad positions {self.positions!r}; use all or generated")
        if self.samples < 1:
            raise InputError(f"samples={self.samples}; use 1 or more")
        if self.samples > 1 and self.gen.temperature == 0:
            raise InputError(f"{self.samples} samples under greedy decoding would all be the same; "
                             "set a temperature > 0 or use 1 sample")
        if self.judge is not None:
            check_judge(self.judge)
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit={self.limit}; use a positive number of items per eval")
        object.__setattr__(self, "evals", check_evals(self.evals))
        if self.vectors is None and self.neurons is None and not self.evals:
            raise InputError("nothing to steer with; pass --vectors and/or --neurons")
        if self.ablate and self.vectors is None:
            raise InputError("--ablate needs --vectors (the directions to project out)")

    def params(self) -> dict[str, Any]:
        """Everything but the device: a sweep is the same experiment on any device."""
        out = {k: v for k, v in asdict(self).items() if k != "device"}
        out["gen"] = asdict(self.gen)
        return out

    def sweep_id(self, vector_ids: tuple[int, ...], neuron_set: str | None) -> str:
        return digest({**self.params(), "vector_ids": list(vector_ids), "neuron_set": neuron_set}, "sw-")
