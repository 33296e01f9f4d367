"""Loading a Hugging Face causal LM and reading its shapes before the weights load.

Offline: no machine here reaches a model hub. A name that is not a local directory is looked up in
the local Hugging Face cache only (``local_files_only=True``) when the hub is unreachable or offline
mode is asked for, so a miss fails at once with one line instead of after tens of seconds of HTTP
retries. ``HF_HUB_OFFLINE=1`` is also exported for libraries imported later (huggingface_hub reads
it once, at import, so the ``local_files_only`` flag is what takes effect in this process).
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from actstore.errors import ModelError, UsageError
from ingest.adapters import adapter_for

#: dtype names accepted by :func:`load_model` ("auto" keeps the checkpoint's dtype).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def dtype_name(dtype: torch.dtype | str | None) -> str:
    """``torch.bfloat16`` or ``"torch.bfloat16"`` -> ``"bfloat16"``; ``None`` -> ``"float32"``
    (what transformers loads when a config names no dtype)."""
    if dtype is None:
        return "float32"
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True, slots=True)
class ModelShapes:
    """Sizes of a model, known before its weights load. ``dtype`` is the checkpoint's dtype."""

    family: str
    n_layers: int
    d_model: int
    d_mlp: int
    vocab_size: int
    dtype: str


def _is_local(name_or_path: str | os.PathLike[str]) -> bool:
    return Path(name_or_path).expanduser().is_dir()


def _looks_like_path(name: str) -> bool:
    # A hub id is "org/name" or "name"; these prefixes can only be meant as a directory.
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout_s: float = 2.0) -> bool:
    """Can we open a TCP connection to the hub endpoint within ``timeout_s``?

    The DNS lookup has no timeout of its own, so the probe runs in a daemon thread we stop
    waiting for. Cached: one probe per process.
    """
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    ok: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout_s)
    return bool(ok)


def _env_offline() -> bool:
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on")
               for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _resolve_source(name_or_path: str | os.PathLike[str], offline: bool | None) -> tuple[str, bool]:
    """-> (string for from_pretrained, local_files_only)."""
    name = os.fspath(name_or_path)
    if _is_local(name):
        return str(Path(name).expanduser()), True
    if _looks_like_path(name):
        raise ModelError(f"model directory {name!r} does not exist; pass a directory holding config.json "
                         "and the weights")
    if offline is None:
        offline = _env_offline() or not _hub_reachable()
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    return name, offline


def _offline_error(name: str) -> ModelError:
    return ModelError(f"model {name!r} is not a local directory and is not in the local Hugging Face cache, "
                      "and the hub is offline; pass a local path (a directory with config.json and weights)")


def load_config(name_or_path: str | os.PathLike[str], *, trust_remote_code: bool = False,
                offline: bool | None = None) -> Any:
    """The model's ``PretrainedConfig``, with the same offline rules as :func:`load_model`."""
    from transformers import AutoConfig

    source, local_only = _resolve_source(name_or_path, offline)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code,
                                          local_files_only=local_only)
    except (OSError, ValueError) as err:
        if local_only and not _is_local(source):
            raise _offline_error(source) from None
        raise ModelError(f"cannot read the config of {source!r}: {_first_line(err)}") from None


def model_shapes(model_or_config: Any, *, trust_remote_code: bool = False,
                 offline: bool | None = None) -> ModelShapes:
    """Sizes from a name/path, a config or a loaded model, without loading weights.

    Everything comes from the config, except an MLP width the config leaves ``None`` (GPT-2's
    ``n_inner``), which is read off a model instantiated on the meta device (no memory, no weights).
    """
    if isinstance(model_or_config, (str, os.PathLike)):
        config = load_config(model_or_config, trust_remote_code=trust_remote_code, offline=offline)
    else:
        config = getattr(model_or_config, "config", model_or_config)
    adapter = adapter_for(config)
    text = adapter.text_config_of(config)
    d_mlp = getattr(text, adapter.d_mlp_attr, None)
    if d_mlp is None:
        from transformers import AutoModelForCausalLM

        with torch.device("meta"):
            meta = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        d_mlp = adapter.down_proj_weight(meta, 0).shape[1]
    dtype = getattr(text, "dtype", None) or getattr(config, "dtype", None)
    return ModelShapes(family=adapter.family, n_layers=int(text.num_hidden_layers), d_model=int(text.hidden_size),
                       d_mlp=int(d_mlp), vocab_size=int(text.vocab_size), dtype=dtype_name(dtype))


def _check_device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"bad device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} asked for but torch sees no CUDA GPU; use --device cpu")
    return dev


def load_model(name_or_path: str | os.PathLike[str], dtype: str = "auto", device: str = "cpu",
               trust_remote_code: bool = False, *, offline: bool | None = None) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for inference, via ``AutoModelForCausalLM/AutoTokenizer``.

    dtype: "auto" (the checkpoint's own), "float32", "bfloat16" or "float16".
    device: a torch device string ("cpu", "cuda", "cuda:1", "mps").
    offline: ``None`` detects (env ``HF_HUB_OFFLINE``/``TRANSFORMERS_OFFLINE`` or an unreachable
        hub); ``True`` forces cache-only lookup of hub names.

    The model is in eval mode. The tokenizer gets a pad token if it has none (its EOS, else BOS,
    else UNK: an existing token, so the embedding matrix keeps its size; pad positions are masked
    anyway) and ``padding_side="left"``, which batched generation needs.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    # transformers' own "Loading weights" bars would interleave with our progress lines; ours say
    # what is loading ("loading MODEL ...") and the stages report their own progress
    hf_logging.disable_progress_bar()
    if dtype != "auto" and dtype not in DTYPES:
        raise UsageError(f"bad dtype {dtype!r}; use auto, {', '.join(DTYPES)}")
    dev = _check_device(device)
    source, local_only = _resolve_source(name_or_path, offline)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code,
                                                  local_files_only=local_only)
        # With accelerate, weights stream straight onto the device; without it (transformers then
        # refuses device_map) they load on the CPU and move once.
        placement = {"device_map": str(dev)} if dev.type != "cpu" and _has_accelerate() else {}
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype if dtype == "auto" else DTYPES[dtype], trust_remote_code=trust_remote_code,
            local_files_only=local_only, **placement)
    except (OSError, ValueError) as err:
        if local_only and not _is_local(source):
            raise _offline_error(source) from None
        raise ModelError(f"cannot load model {source!r}: {_first_line(err)}") from None
    if not placement and dev.type != "cpu":
        model.to(dev)  # type: ignore[arg-type]  # transformers' stub for .to is too narrow
    model.eval()
    _prepare_tokenizer(tokenizer)
    gen = getattr(model, "generation_config", None)
    if gen is not None and gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _has_accelerate() -> bool:
    import importlib.util

    return importlib.util.find_spec("accelerate") is not None


def _prepare_tokenizer(tokenizer: Any) -> None:
    if tokenizer.pad_token is None:
        for candidate in (tokenizer.eos_token, tokenizer.bos_token, tokenizer.unk_token):
            if candidate is not None:
                tokenizer.pad_token = candidate
                break
        else:
            raise ModelError("the tokenizer has no pad, eos, bos or unk token to pad batches with; "
                             "set tokenizer.pad_token to an existing token before ingest")
    tokenizer.padding_side = "left"


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
