"""Adapters: every family's module paths resolve on a real (tiny) model, with the right shapes and
orientation."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from actstore.errors import ModelError
from ingest import adapters
from ingest.adapters import ADAPTERS, adapter_for
from ingest.models import model_shapes


def test_adapter_resolves_every_part_with_documented_shapes(family, make_tiny_model):
    model = make_tiny_model(family)
    shapes = model_shapes(model)
    assert adapter_for(model) is ADAPTERS[model.config.model_type]
    assert len(adapters.blocks(model)) == shapes.n_layers == 3
    for layer in range(shapes.n_layers):
        assert adapters.down_proj_weight(model, layer).shape == (shapes.d_model, shapes.d_mlp)
    assert adapters.unembed_weight(model).shape == (shapes.vocab_size, shapes.d_model)
    assert isinstance(adapters.final_norm(model), torch.nn.Module)


def test_down_proj_weight_column_i_is_neuron_i_output_direction(family, make_tiny_model):
    # Drive the down projection with a one-hot activation of neuron i: the change it writes into
    # the residual stream must be column i of down_proj_weight (Linear and GPT-2's Conv1D alike).
    model = make_tiny_model(family)
    proj = adapters.down_proj(model, 1)
    w = adapters.down_proj_weight(model, 1)
    d_mlp = w.shape[1]
    with torch.no_grad():
        base = proj(torch.zeros(1, d_mlp))
        for i in (0, d_mlp // 2, d_mlp - 1):
            onehot = torch.zeros(1, d_mlp)
            onehot[0, i] = 1.0
            torch.testing.assert_close((proj(onehot) - base)[0], w[:, i])


def test_gpt2_conv1d_weight_is_transposed_to_d_model_by_d_mlp(make_tiny_model):
    model = make_tiny_model("gpt2")
    raw = model.transformer.h[0].mlp.c_proj.weight
    assert raw.shape == (128, 32)  # Conv1D stores [in, out] = [d_mlp, d_model]
    w = adapters.down_proj_weight(model, 0)
    assert w.shape == (32, 128) and torch.equal(w, raw.t())


def test_final_norm_maps_last_block_output_to_hf_last_hidden_state(family, make_tiny_model):
    model = make_tiny_model(family)
    ids = torch.randint(0, 300, (1, 9))
    seen = {}
    hook = adapters.blocks(model)[-1].register_forward_hook(lambda m, a, out: seen.setdefault("x", out))
    try:
        with torch.no_grad():
            out = model(input_ids=ids, output_hidden_states=True)
            normed = adapters.final_norm(model)(seen["x"])
    finally:
        hook.remove()
    assert torch.equal(normed, out.hidden_states[-1])


def test_gemma3_multimodal_nests_text_decoder_under_language_model(make_tiny_model):
    model = make_tiny_model("gemma3")
    assert adapter_for(model).blocks == "model.language_model.layers"
    assert adapters.blocks(model) is model.model.language_model.layers
    assert adapters.final_norm(model) is model.model.language_model.norm


def test_unknown_family_error_names_supported_families_and_how_to_add(make_tiny_model):
    config = make_tiny_model("llama").config
    config.model_type = "falcon_mamba"
    with pytest.raises(ModelError, match="unsupported model family 'falcon_mamba'") as err:
        adapter_for(config)
    assert "llama" in str(err.value) and "gpt2" in str(err.value) and "ADAPTERS" in str(err.value)


def test_wrong_module_path_gives_model_error_not_attribute_error(make_tiny_model):
    model = make_tiny_model("llama")
    broken = dataclasses.replace(ADAPTERS["llama"], blocks="model.decoder.layers")
    with pytest.raises(ModelError, match="no module 'model.decoder.layers'"):
        broken.blocks_of(model)


def test_adapters_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ADAPTERS["llama"].blocks = "x"  # type: ignore[misc]


def test_layer_out_of_range_is_model_error(make_tiny_model):
    with pytest.raises(ModelError, match="layer 3 out of range; this model has layers 0-2"):
        adapters.down_proj(make_tiny_model("qwen2"), 3)
