"""Interventions on tiny random models: exact effects, clean removal, batched == one by one."""

from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from actstore.errors import InputError
from analyses.steering.generate import GenConfig, chat, generate
from analyses.steering.interventions import (
    Ablate,
    AddVector,
    FixNeurons,
    ScaleNeurons,
    Steering,
)
from ingest.adapters import adapter_for


from ingest_fixtures import FX  # noqa: E402 - tests/analyses is on sys.path (conftest)
FAMILIES = ("llama", "qwen2", "gemma2", "gpt2", "phi3")


@pytest.fixture(scope="module")
def tok():
    from transformers import PreTrainedTokenizerFast

    t = PreTrainedTokenizerFast(tokenizer_object=FX._train_bpe(), bos_token="<|endoftext|>",
                                eos_token="<|im_end|>", pad_token="<|pad|>")
    t.chat_template = FX.CHATML
    t.padding_side = "left"
    return t


def _ids(tok, texts):
    enc = tok(texts, return_tensors="pt", padding=True)
    return enc["input_ids"], enc["attention_mask"]


def _block_outputs(model, ids, mask):
    """resid_post of every block, read by hooks registered after any steering hooks."""
    blocks = adapter_for(model).blocks_of(model)
    got: dict[int, torch.Tensor] = {}
    hs = [b.register_forward_hook(lambda m, a, o, i=i: got.__setitem__(i, (o[0] if isinstance(o, tuple) else o).clone()))
          for i, b in enumerate(blocks)]
    try:
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits.clone()
    finally:
        for h in hs:
            h.remove()
    return got, logits


@pytest.mark.parametrize("family", FAMILIES)
def test_adding_alpha_v_changes_the_block_output_by_exactly_alpha_v(family, tok):
    model = FX.build_tiny_model(family)
    ids, mask = _ids(tok, ["Hello there! How are you today?"])
    before, _ = _block_outputs(model, ids, mask)
    v = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    with Steering(model, [AddVector(layer=1, vector=v, alpha=2.5)]):
        after, _ = _block_outputs(model, ids, mask)
    diff = (after[1] - before[1]).numpy()
    np.testing.assert_allclose(diff, np.broadcast_to(2.5 * v, diff.shape), atol=2e-5)
    assert torch.equal(after[0], before[0])  # earlier blocks untouched


@pytest.mark.parametrize("family", FAMILIES)
def test_model_outputs_after_a_steered_run_equal_those_before(family, tok):
    model = FX.build_tiny_model(family)
    ids, mask = _ids(tok, ["Security and tradition matter.", "Hello!"])
    _, before = _block_outputs(model, ids, mask)
    v = np.ones(32, np.float32)
    ivs = [AddVector(0, v, 3.0), Ablate((1, 2), v), ScaleNeurons(1, (0, 3, 5), 0.0),
           FixNeurons(2, (1, 2), np.array([1.0, -1.0]))]
    with Steering(model, ivs):
        _, during = _block_outputs(model, ids, mask)
    _, after = _block_outputs(model, ids, mask)
    assert not torch.equal(during, before)
    assert torch.equal(after, before)
    assert all(not b._forward_hooks and not b._forward_pre_hooks for b in adapter_for(model).blocks_of(model))


@pytest.mark.parametrize("family", ("llama", "gpt2"))
def test_ablation_leaves_no_component_along_the_direction(family, tok):
    model = FX.build_tiny_model(family)
    ids, mask = _ids(tok, ["Caring for others and respecting nature are good values."])
    r = np.random.default_rng(1).standard_normal(32).astype(np.float32)
    before, _ = _block_outputs(model, ids, mask)
    with Steering(model, [Ablate((0, 1, 2), r)]):
        after, _ = _block_outputs(model, ids, mask)
    rh = torch.from_numpy(r / np.linalg.norm(r))
    for layer in range(3):
        assert float((before[layer] @ rh).abs().max()) > 1e-2
        assert float((after[layer] @ rh).abs().max()) < 1e-5


def test_neuron_hooks_change_what_the_down_projection_sees(tok):
    model = FX.build_tiny_model("llama")
    ad = adapter_for(model)
    ids, mask = _ids(tok, ["Hello there!"])
    mod = ad.down_proj_of(model, 1)
    seen = []

    def run(ivs):
        with Steering(model, ivs):
            h = mod.register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()))  # after ours
            try:
                _block_outputs(model, ids, mask)
            finally:
                h.remove()
        return seen[-1]

    plain = run([])
    scaled = run([ScaleNeurons(1, (2, 4), 3.0)])
    fixed = run([FixNeurons(1, (2, 4), np.array([0.5, 0.0]))])
    torch.testing.assert_close(scaled[..., [2, 4]], 3.0 * plain[..., [2, 4]])
    torch.testing.assert_close(scaled[..., [0, 1, 3]], plain[..., [0, 1, 3]])
    assert torch.all(fixed[..., 2] == 0.5) and torch.all(fixed[..., 4] == 0.0)


@pytest.mark.parametrize("family", ("llama", "qwen2", "gpt2"))
@pytest.mark.parametrize("positions", ("all", "generated"))
def test_batched_left_padded_greedy_generation_equals_one_by_one_under_steering(family, positions, tok):
    model = FX.build_tiny_model(family)
    chats = [chat("Hello there! How are you?"), chat("What should I do?", "Answer briefly."),
             chat("Security and tradition matter.")]  # GPT-2 here has 64 positions
    rng = np.random.default_rng(2)
    ivs = [AddVector(1, rng.standard_normal(32).astype(np.float32), 4.0, positions),
           ScaleNeurons(2, (1, 7), 0.0, positions)]
    cfg = GenConfig(max_new_tokens=12, batch_size=8)
    batched = generate(model, tok, chats, cfg, ivs)
    single = [generate(model, tok, [c], GenConfig(max_new_tokens=12, batch_size=1), ivs)[0] for c in chats]
    assert batched == single
    plain = generate(model, tok, chats, cfg)
    assert batched != plain  # the steering did something


def test_generated_positions_leave_the_prompt_pass_alone(tok):
    model = FX.build_tiny_model("llama")
    ids, mask = _ids(tok, ["Hello there! How are you today?"])
    v = np.ones(32, np.float32)
    before, _ = _block_outputs(model, ids, mask)
    st = Steering(model, [AddVector(1, v, 5.0, "generated")])
    st.prompt_width = ids.shape[1]
    with st:
        after, _ = _block_outputs(model, ids, mask)
    assert torch.equal(after[1], before[1])


def test_bad_interventions_get_one_line_errors():
    model = FX.build_tiny_model("llama")
    with pytest.raises(InputError, match="out of range"):
        Steering(model, [AddVector(7, np.ones(32), 1.0)])
    with pytest.raises(InputError, match="d_model 32"):
        Steering(model, [AddVector(0, np.ones(5), 1.0)])
    with pytest.raises(InputError, match="zero direction"):
        Ablate((0,), np.zeros(32))
    with pytest.raises(InputError, match="positions"):
        AddVector(0, np.ones(32), 1.0, "prompt")
    with pytest.raises(InputError, match="neuron 99 out of range"):
        Steering(model, [ScaleNeurons(0, (99,), 0.0)])
