"""Where the parts of each model family live: one declarative adapter per ``config.model_type``.

An :class:`Adapter` names real module paths (``model.layers``, ``mlp.down_proj``, ``model.norm``,
``lm_head``) that :meth:`torch.nn.Module.get_submodule` resolves, so that hooks are registered on the
modules the model really runs and nothing is re-implemented. Every family we support is one entry in
:data:`ADAPTERS`; adding a family means adding one entry (see the error :func:`adapter_for` raises).

Orientation of weights: the neuron analyses want the down projection as ``W[d_model, d_mlp]``, so
that column ``i`` is the direction neuron ``i`` writes into the residual stream. ``nn.Linear`` stores
its weight as ``[out, in]`` = ``[d_model, d_mlp]`` already. GPT-2's ``Conv1D`` stores ``[in, out]`` =
``[d_mlp, d_model]`` (it computes ``x @ W + b``), so its adapter says ``down_proj_layout="in_out"``
and :meth:`Adapter.down_proj_weight` transposes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

import torch
from torch import nn

from actstore.errors import ModelError


@dataclass(frozen=True, slots=True)
class Adapter:
    """Module paths of one model family. Paths are dotted ``get_submodule`` paths.

    family: our name for the family (what ``ModelShapes.family`` reports).
    blocks: path from the top-level (``*ForCausalLM``) model to the ``ModuleList`` of blocks.
    mlp: path inside one block to its MLP.
    down_proj: path inside one block to the MLP's output projection; its *input* is the neuron
        activations (``mlp_act``, width d_mlp) and its weight column ``i`` is neuron ``i``'s output
        direction.
    final_norm: path from the top-level model to the norm applied after the last block.
    unembed: path from the top-level model to the unembedding (``lm_head``), weight ``[vocab, d_model]``.
    d_mlp_attr: attribute of the (text) config holding the MLP activation width. ``None`` in the
        config (GPT-2's ``n_inner``) means "ask the meta-device model" (see ``models.model_shapes``).
    text_config: attribute of the config that holds the language model's sizes, for multimodal
        wrappers (Gemma 3's ``text_config``); ``None`` when the config itself does.
    down_proj_layout: ``"out_in"`` for ``nn.Linear`` (``[d_model, d_mlp]``), ``"in_out"`` for
        GPT-2's ``Conv1D`` (``[d_mlp, d_model]``).
    """

    family: str
    blocks: str
    mlp: str
    down_proj: str
    final_norm: str
    unembed: str
    d_mlp_attr: str
    text_config: str | None = None
    down_proj_layout: Literal["out_in", "in_out"] = "out_in"

    # -- config side (no weights needed) ---------------------------------------------------

    def text_config_of(self, config: Any) -> Any:
        """The config that holds the language model's sizes."""
        return getattr(config, self.text_config) if self.text_config else config

    # -- module side ------------------------------------------------------------------------

    def blocks_of(self, model: nn.Module) -> nn.ModuleList:
        mods = _resolve(model, self.blocks, self)
        if not isinstance(mods, nn.ModuleList):
            raise ModelError(f"{self.blocks!r} of this {self.family} model is a {type(mods).__name__}, "
                             "not a ModuleList of blocks; fix the adapter entry in ingest/adapters.py")
        return mods

    def block(self, model: nn.Module, layer: int) -> nn.Module:
        mods = self.blocks_of(model)
        if not 0 <= layer < len(mods):
            raise ModelError(f"layer {layer} out of range; this model has layers 0-{len(mods) - 1}")
        return mods[layer]

    def mlp_of(self, model: nn.Module, layer: int) -> nn.Module:
        return _resolve(self.block(model, layer), self.mlp, self)

    def down_proj_of(self, model: nn.Module, layer: int) -> nn.Module:
        return _resolve(self.block(model, layer), self.down_proj, self)

    def down_proj_weight(self, model: nn.Module, layer: int) -> torch.Tensor:
        """``Tensor[d_model, d_mlp]`` in the model's dtype; column i = neuron i's output direction.

        A view of the parameter (no copy; for GPT-2 a transposed, non-contiguous view): call
        ``.contiguous()`` or ``.clone()`` before mutating or serialising it.
        """
        w = cast(torch.Tensor, self.down_proj_of(model, layer).weight).detach()
        return w.t() if self.down_proj_layout == "in_out" else w

    def final_norm_of(self, model: nn.Module) -> nn.Module:
        return _resolve(model, self.final_norm, self)

    def unembed_weight(self, model: nn.Module) -> torch.Tensor:
        """``Tensor[vocab, d_model]``, a detached view of the unembedding weight."""
        return cast(torch.Tensor, _resolve(model, self.unembed, self).weight).detach()


def _resolve(root: nn.Module, path: str, adapter: Adapter) -> nn.Module:
    try:
        return root.get_submodule(path)
    except AttributeError:
        raise ModelError(
            f"no module {path!r} in this {type(root).__name__} (family {adapter.family}); the adapter in "
            "ingest/adapters.py does not match this transformers version's module layout"
        ) from None


# Llama-style decoder: model.layers[i].mlp.{gate,up,down}_proj, model.norm, lm_head.
def _llama_like(family: str) -> Adapter:
    return Adapter(family=family, blocks="model.layers", mlp="mlp", down_proj="mlp.down_proj",
                   final_norm="model.norm", unembed="lm_head", d_mlp_attr="intermediate_size")


#: config.model_type -> adapter. Add a family by adding an entry here (and a tiny config to
#: tests/ingest/conftest.py so the parity tests cover it).
ADAPTERS: dict[str, Adapter] = {
    "llama": _llama_like("llama"),
    "mistral": _llama_like("mistral"),
    "qwen2": _llama_like("qwen2"),
    "qwen3": _llama_like("qwen3"),
    "gemma2": _llama_like("gemma2"),
    # Gemma 3 text-only checkpoints (gemma-3-1b, *ForCausalLM) use model_type "gemma3_text".
    "gemma3_text": _llama_like("gemma3"),
    # Multimodal Gemma 3 checkpoints (4b and up) load as Gemma3ForConditionalGeneration, which in
    # transformers 5 nests the text decoder at model.language_model; the sizes live in text_config.
    "gemma3": Adapter(family="gemma3", blocks="model.language_model.layers", mlp="mlp",
                      down_proj="mlp.down_proj", final_norm="model.language_model.norm",
                      unembed="lm_head", d_mlp_attr="intermediate_size", text_config="text_config"),
    # Phi-3 fuses gate and up into mlp.gate_up_proj; down_proj is a plain Linear as in Llama.
    "phi3": _llama_like("phi3"),
    # GPT-2: transformer.h[i].mlp.c_fc -> act -> c_proj (Conv1D, weight [d_mlp, d_model]).
    "gpt2": Adapter(family="gpt2", blocks="transformer.h", mlp="mlp", down_proj="mlp.c_proj",
                    final_norm="transformer.ln_f", unembed="lm_head", d_mlp_attr="n_inner",
                    down_proj_layout="in_out"),
}


def adapter_for(model_or_config: Any) -> Adapter:
    """The adapter for a model (anything with ``.config``) or a config, by ``config.model_type``."""
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    try:
        return ADAPTERS[model_type]  # type: ignore[index]
    except KeyError:
        raise ModelError(
            f"unsupported model family {model_type!r}; supported: {', '.join(sorted(ADAPTERS))}. "
            "To add one, add an Adapter entry for it to ADAPTERS in ingest/adapters.py"
        ) from None


# Convenience functions that pick the adapter from the model itself.

def blocks(model: nn.Module) -> nn.ModuleList:
    return adapter_for(model).blocks_of(model)


def down_proj(model: nn.Module, layer: int) -> nn.Module:
    return adapter_for(model).down_proj_of(model, layer)


def down_proj_weight(model: nn.Module, layer: int) -> torch.Tensor:
    """``Tensor[d_model, d_mlp]``: see :meth:`Adapter.down_proj_weight`."""
    return adapter_for(model).down_proj_weight(model, layer)


def unembed_weight(model: nn.Module) -> torch.Tensor:
    """``Tensor[vocab, d_model]``."""
    return adapter_for(model).unembed_weight(model)


def final_norm(model: nn.Module) -> nn.Module:
    return adapter_for(model).final_norm_of(model)
