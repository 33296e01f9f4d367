"""Loading models and reading shapes, offline."""

from __future__ import annotations

import os
import time

import pytest

torch = pytest.importorskip("torch")

from actstore.errors import ModelError, UsageError
from ingest.models import ModelShapes, dtype_name, load_model, model_shapes


def test_load_model_from_local_dir_in_asked_dtype(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and not model.training
    assert tok.padding_side == "left" and tok.pad_token == "<|pad|>"


def test_load_model_auto_keeps_checkpoint_dtype(tiny_model_dir):
    model, _ = load_model(str(tiny_model_dir), dtype="auto", device="cpu")
    assert model.dtype == torch.float32


def test_tokenizer_without_pad_token_gets_eos_as_pad(tmp_path, plain_tokenizer, make_tiny_model):
    make_tiny_model("gpt2").save_pretrained(tmp_path)
    plain_tokenizer.save_pretrained(tmp_path)
    model, tok = load_model(tmp_path)
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert model.generation_config.pad_token_id == tok.pad_token_id


def test_model_shapes_from_dir_match_loaded_model(tiny_model_dir):
    assert model_shapes(tiny_model_dir) == ModelShapes(family="llama", n_layers=3, d_model=32, d_mlp=48,
                                                       vocab_size=320, dtype="float32")


def test_model_shapes_reads_gpt2_default_mlp_width_from_meta_device(make_tiny_model):
    config = make_tiny_model("gpt2").config
    assert config.n_inner is None
    assert model_shapes(config).d_mlp == 4 * 32


def test_model_shapes_of_multimodal_gemma3_use_text_config(make_tiny_model):
    shapes = model_shapes(make_tiny_model("gemma3").config)
    assert (shapes.family, shapes.n_layers, shapes.d_model, shapes.d_mlp) == ("gemma3", 3, 32, 48)


def test_hub_name_offline_fails_fast_with_one_line_asking_for_local_path(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # monkeypatch restores the environment afterwards
    start = time.monotonic()
    with pytest.raises(ModelError) as err:
        load_model("acme-nonexistent/tiny-model-xyz")
    assert time.monotonic() - start < 10
    msg = str(err.value)
    assert "'acme-nonexistent/tiny-model-xyz'" in msg and "local path" in msg and "\n" not in msg


def test_forced_offline_sets_hf_hub_offline(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with pytest.raises(ModelError, match="local path"):
        model_shapes("acme-nonexistent/tiny-model-xyz", offline=True)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_missing_directory_is_model_error():
    with pytest.raises(ModelError, match="does not exist"):
        load_model("./no/such/model/dir")


def test_bad_dtype_and_device_are_usage_errors(tiny_model_dir):
    with pytest.raises(UsageError, match="bad dtype 'fp8'"):
        load_model(tiny_model_dir, dtype="fp8")
    with pytest.raises(UsageError, match="bad device"):
        load_model(tiny_model_dir, device="toaster")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA GPU"):
            load_model(tiny_model_dir, device="cuda")


def test_dtype_name():
    assert dtype_name(torch.bfloat16) == "bfloat16"
    assert dtype_name("torch.float16") == "float16"
    assert dtype_name(None) == "float32"


def test_unreachable_hub_is_detected_and_switches_to_offline(monkeypatch):
    from ingest import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(models, "_hub_reachable", lambda: False)
    start = time.monotonic()
    with pytest.raises(ModelError, match="hub is offline; pass a local path"):
        load_model("acme-nonexistent/tiny-model-xyz")
    assert time.monotonic() - start < 10 and os.environ["HF_HUB_OFFLINE"] == "1"
