"""Interventions on a loaded Hugging Face model: composable, removed cleanly, correct under padding.

Each intervention is a frozen value that says *what* to change; :class:`Steering` (a context manager)
installs the hooks for a list of them on the modules the adapter names, and removes every hook on
exit, so the model afterwards computes exactly what it computed before::

    with Steering(model, [AddVector(layer=6, vector=v, alpha=4.0),
                          ScaleNeurons(layer=8, neurons=(12, 99), beta=0.0)]):
        out = model.generate(...)

Where each one acts (``resid_post`` and ``mlp_act`` as in ``actstore.site``):

* :class:`AddVector`: ``resid_post[l] += alpha * vector`` (a forward hook on block ``l``).
* :class:`Ablate`: ``resid_post[l] -= (resid_post[l] . r) r`` with ``r`` the unit direction, at each
  chosen block's output, and (``inputs=True``) also at the input of the first chosen block, so that a
  direction present in the embeddings is gone before any chosen block reads it.
* :class:`ScaleNeurons` / :class:`FixNeurons`: the down projection's input columns (``mlp_act``) are
  multiplied by ``beta``, or set to given values (zero, or their stored means): a forward pre-hook on
  the module ``adapter.down_proj`` names.

Positions: ``"all"`` acts on every token (the study's setting); ``"generated"`` only on tokens the
model generates, i.e. padded positions at or after the prompt's width. A forward pre-hook on the
top-level model reads the KV cache's length before every call, so each forward knows the absolute
positions it holds (the prompt pass, then one token per step). Left padding puts every prompt's last
token at the same column, so "after the prompt" is one suffix for the whole batch.

Hooks modify the hidden state in place and return ``None`` when autograd is off (generation runs under
``no_grad``); with autograd on they build a new tensor and return it in the module's own output
structure, which is torch's contract for forward hooks that change the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np
import torch
from torch import nn

from actstore.errors import InputError, ModelError
from ingest.adapters import Adapter, adapter_for

Positions = Literal["all", "generated"]
POSITIONS: tuple[str, ...] = ("all", "generated")


def _check_positions(p: str) -> None:
    if p not in POSITIONS:
        raise InputError(f"bad positions {p!r}; use all (every token) or generated (generated tokens only)")


def _as_vector(v: Any, what: str) -> np.ndarray:
    arr = np.asarray(v.detach().cpu().float().numpy() if isinstance(v, torch.Tensor) else v, dtype=np.float32)
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise InputError(f"{what} must be a finite 1-D vector, got shape {arr.shape}")
    return arr


def _check_layer(layer: int) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer < 0:
        raise InputError(f"bad layer {layer!r}; layers are integers >= 0")
    return int(layer)


@dataclass(frozen=True, eq=False)
class AddVector:
    """Add ``alpha * vector`` to the residual stream after block ``layer``."""

    layer: int
    vector: np.ndarray  # [d_model] float32
    alpha: float = 1.0
    positions: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", _check_layer(self.layer))
        object.__setattr__(self, "vector", _as_vector(self.vector, "the steering vector"))
        object.__setattr__(self, "alpha", float(self.alpha))
        _check_positions(self.positions)


@dataclass(frozen=True, eq=False)
class Ablate:
    """Project ``direction`` out of the residual stream after each block in ``layers``."""

    layers: tuple[int, ...]
    direction: np.ndarray  # [d_model]; normalised here
    positions: str = "all"
    inputs: bool = True  # also project it out of the first chosen block's input

    def __post_init__(self) -> None:
        layers = tuple(sorted({_check_layer(x) for x in self.layers}))
        if not layers:
            raise InputError("ablation needs at least one layer")
        d = _as_vector(self.direction, "the ablated direction")
        n = float(np.linalg.norm(d))
        if n == 0.0:
            raise InputError("cannot ablate a zero direction; pick a vector with a non-zero norm")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "direction", (d / n).astype(np.float32))
        _check_positions(self.positions)


@dataclass(frozen=True, eq=False)
class ScaleNeurons:
    """Multiply MLP neurons ``neurons`` of ``layer`` (down-projection input columns) by ``beta``."""

    layer: int
    neurons: tuple[int, ...]
    beta: float
    positions: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", _check_layer(self.layer))
        object.__setattr__(self, "neurons", _check_neurons(self.neurons))
        object.__setattr__(self, "beta", float(self.beta))
        _check_positions(self.positions)


@dataclass(frozen=True, eq=False)
class FixNeurons:
    """Set MLP neurons ``neurons`` of ``layer`` to ``values`` (zeros, or e.g. their stored means)."""

    layer: int
    neurons: tuple[int, ...]
    values: np.ndarray  # [len(neurons)] float32
    positions: str = "all"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layer", _check_layer(self.layer))
        object.__setattr__(self, "neurons", _check_neurons(self.neurons))
        vals = np.asarray(self.values, dtype=np.float32).reshape(-1)
        if vals.shape[0] != len(self.neurons):
            raise InputError(f"{len(self.neurons)} neurons but {vals.shape[0]} values; give one value per neuron")
        object.__setattr__(self, "values", vals)
        _check_positions(self.positions)


def _check_neurons(neurons: Sequence[int]) -> tuple[int, ...]:
    out = tuple(int(n) for n in neurons)
    if not out:
        raise InputError("a neuron intervention needs at least one neuron")
    if min(out) < 0:
        raise InputError(f"bad neuron index {min(out)}; neuron indexes are >= 0")
    return out


Intervention = AddVector | Ablate | ScaleNeurons | FixNeurons


@dataclass
class _Gate:
    """Which positions of the current forward pass are 'generated' (shared by every hook)."""

    prompt_width: int | None = None
    offset: int = 0  # KV-cache length before the current forward: the absolute position of column 0

    def start(self, positions: str, seq: int) -> int | None:
        """First column of the current hidden state to act on; None = act on none of it."""
        if positions == "all":
            return 0
        if self.prompt_width is None:
            # Not told the prompt's width: treat cached decoding steps as the generated tokens.
            return 0 if self.offset > 0 else None
        first = self.prompt_width - self.offset
        return max(first, 0) if first < seq else None


def _hidden(output: Any) -> torch.Tensor:
    # transformers 5 blocks return a tensor; remote-code and older blocks a tuple (hidden, ...).
    return output[0] if isinstance(output, tuple) else output


def _with_hidden(output: Any, h: torch.Tensor) -> Any:
    return (h, *output[1:]) if isinstance(output, tuple) else h


@dataclass
class Steering:
    """Installs ``interventions`` on ``model`` for the duration of a ``with`` block.

    ``prompt_width``: the padded prompt width of the batch about to run, needed by interventions
    with ``positions="generated"`` (:func:`analyses.steering.generate.generate` sets it).
    """

    model: nn.Module
    interventions: Sequence[Intervention]
    adapter: Adapter | None = None
    _handles: list[Any] = field(default_factory=list, init=False, repr=False)
    _gate: _Gate = field(default_factory=_Gate, init=False, repr=False)

    def __post_init__(self) -> None:
        self.adapter = self.adapter if self.adapter is not None else adapter_for(self.model)
        self.interventions = list(self.interventions)
        n_blocks = len(self.adapter.blocks_of(self.model))
        d_model = self.adapter.unembed_weight(self.model).shape[1]
        for iv in self.interventions:
            if not isinstance(iv, (AddVector, Ablate, ScaleNeurons, FixNeurons)):
                raise InputError(f"not an intervention: {iv!r}; use AddVector, Ablate, ScaleNeurons or FixNeurons")
            layers = iv.layers if isinstance(iv, Ablate) else (iv.layer,)
            if max(layers) >= n_blocks:
                raise InputError(f"layer {max(layers)} out of range; this model has layers 0-{n_blocks - 1}")
            vec = iv.vector if isinstance(iv, AddVector) else iv.direction if isinstance(iv, Ablate) else None
            if vec is not None and vec.shape[0] != d_model:
                raise InputError(f"vector of width {vec.shape[0]} does not fit this model (d_model {d_model}); "
                                 "use a vector extracted from the same model")
            if isinstance(iv, (ScaleNeurons, FixNeurons)):
                d_mlp = self.adapter.down_proj_weight(self.model, iv.layer).shape[1]
                if max(iv.neurons) >= d_mlp:
                    raise InputError(f"neuron {max(iv.neurons)} out of range at layer {iv.layer}; "
                                     f"this model has {d_mlp} neurons per layer")

    @property
    def prompt_width(self) -> int | None:
        return self._gate.prompt_width

    @prompt_width.setter
    def prompt_width(self, width: int | None) -> None:
        self._gate.prompt_width = width

    # -- install / remove ----------------------------------------------------------------------

    def __enter__(self) -> Self:
        if self._handles:
            raise ModelError("this Steering is already installed; leave its with-block before re-entering")
        try:
            self._install()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _install(self) -> None:
        assert self.adapter is not None
        if any(iv.positions == "generated" for iv in self.interventions):
            self._handles.append(self.model.register_forward_pre_hook(self._track_offset, with_kwargs=True))
        for iv in self.interventions:
            if isinstance(iv, AddVector):
                block = self.adapter.block(self.model, iv.layer)
                self._handles.append(block.register_forward_hook(self._add_hook(iv)))
            elif isinstance(iv, Ablate):
                if iv.inputs:
                    first = self.adapter.block(self.model, iv.layers[0])
                    self._handles.append(first.register_forward_pre_hook(self._ablate_input_hook(iv),
                                                                         with_kwargs=True))
                for layer in iv.layers:
                    block = self.adapter.block(self.model, layer)
                    self._handles.append(block.register_forward_hook(self._ablate_hook(iv)))
            else:
                mod = self.adapter.down_proj_of(self.model, iv.layer)
                self._handles.append(mod.register_forward_pre_hook(self._neuron_hook(iv)))

    # -- hooks ---------------------------------------------------------------------------------

    def _track_offset(self, module: nn.Module, args: Any, kwargs: dict[str, Any]) -> None:
        # transformers 5 passes the KV cache as ``cache``; 4.x and remote code as ``past_key_values``.
        cache = kwargs.get("cache", kwargs.get("past_key_values"))
        length = 0
        if cache is not None and hasattr(cache, "get_seq_length"):
            length = int(cache.get_seq_length())
        self._gate.offset = length

    def _add_hook(self, iv: AddVector) -> Any:
        cached: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}

        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            h = _hidden(output)
            start = self._gate.start(iv.positions, h.shape[1])
            if start is None:
                return None
            key = (h.device, h.dtype)
            if key not in cached:  # alpha * v once per device/dtype, in float32 then cast
                cached[key] = torch.from_numpy(iv.alpha * iv.vector).to(h.device, h.dtype)
            delta = cached[key]
            if torch.is_grad_enabled() and h.requires_grad:
                new = torch.cat([h[:, :start], h[:, start:] + delta], dim=1)
                return _with_hidden(output, new)
            h[:, start:] += delta
            return None
        return hook

    def _project_out(self, h: torch.Tensor, r: torch.Tensor, start: int) -> torch.Tensor | None:
        part = h[:, start:]
        x = part.float()
        x = x - (x @ r)[..., None] * r  # float32: bf16 would leave a visible remainder along r
        if torch.is_grad_enabled() and h.requires_grad:
            return torch.cat([h[:, :start], x.to(h.dtype)], dim=1)
        part.copy_(x.to(h.dtype))
        return None

    def _ablate_hook(self, iv: Ablate) -> Any:
        r_cpu = torch.from_numpy(iv.direction)

        def hook(module: nn.Module, args: Any, output: Any) -> Any:
            h = _hidden(output)
            start = self._gate.start(iv.positions, h.shape[1])
            if start is None:
                return None
            new = self._project_out(h, r_cpu.to(h.device), start)
            return None if new is None else _with_hidden(output, new)
        return hook

    def _ablate_input_hook(self, iv: Ablate) -> Any:
        r_cpu = torch.from_numpy(iv.direction)

        def hook(module: nn.Module, args: Any, kwargs: dict[str, Any]) -> Any:
            in_args = bool(args)
            h = args[0] if in_args else kwargs.get("hidden_states")
            if not isinstance(h, torch.Tensor):
                raise ModelError(f"block {iv.layers[0]} was called without a hidden-state tensor; "
                                 "ablate with inputs=False for this model")
            start = self._gate.start(iv.positions, h.shape[1])
            if start is None:
                return None
            new = self._project_out(h, r_cpu.to(h.device), start)
            if new is None:
                return None
            if in_args:
                return (new, *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}
        return hook

    def _neuron_hook(self, iv: ScaleNeurons | FixNeurons) -> Any:
        idx_cpu = torch.tensor(iv.neurons, dtype=torch.long)
        vals_cpu = torch.from_numpy(iv.values) if isinstance(iv, FixNeurons) else None
        beta = iv.beta if isinstance(iv, ScaleNeurons) else 1.0

        def hook(module: nn.Module, args: Any) -> Any:
            x = args[0]
            start = self._gate.start(iv.positions, x.shape[1])
            if start is None:
                return None
            idx = idx_cpu.to(x.device)
            part = x[:, start:]
            if vals_cpu is None:
                new_cols = part.index_select(-1, idx) * beta
            else:
                new_cols = vals_cpu.to(x.device, x.dtype).expand(*part.shape[:-1], len(iv.neurons))
            if torch.is_grad_enabled() and x.requires_grad:
                y = x.clone()
                y[:, start:, idx] = new_cols
                return (y, *args[1:])
            part[..., idx] = new_cols.to(x.dtype)
            return None
        return hook
