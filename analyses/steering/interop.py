"""Vectors in and out of the store, in the formats steering users run.

What is written (layer numbers are 0-based block indexes everywhere: the vector is added to the
output of block ``l``, which is what the store calls ``resid_post.l``):

* ``gguf`` - a control-vector GGUF as llama.cpp (``--control-vector``) and repeng
  (``ControlVector.import_gguf``) read it: ``general.architecture = "controlvector"``,
  ``controlvector.model_hint`` (the model family, e.g. ``llama``), ``controlvector.layer_count``, and
  one float32 tensor ``direction.<l>`` of length d_model per layer. llama.cpp adds ``direction.<l>``
  to the output of its layer ``l`` and never steers layer 0 (it has no ``direction.0`` slot), so a
  vector at layer 0 is refused for ``gguf`` and allowed only with ``--format repeng`` (repeng keys
  its ``directions`` dict by the same block index and does hook layer 0).
* ``steering-vectors`` - a ``torch.save`` file of ``{"layer_activations": {l: Tensor[d]},
  "layer_type": "decoder_block"}``: ``SteeringVector(**torch.load(path))`` rebuilds the
  ``steering_vectors`` library's object, whose decoder-block hooks add to the same block outputs.
* ``npy`` - one vector as ``float32[d]``, or several as ``float32[n, d]`` in the order given.

Vectors are written as stored (times ``scale``): those libraries multiply by their own strength.

Import reads any of these back (plus a ``.pt`` holding a bare tensor or a ``{layer: tensor}`` dict)
into ``vectors`` rows (component ``imported``), so vectors made elsewhere steer, and are compared
with SQL, like extracted ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.store import Store
from analyses.recording import Recorder, record
from analyses.steering.sources import StoredVector

FORMATS = ("gguf", "repeng", "steering-vectors", "npy")


def _directions(vectors: Sequence[StoredVector], scale: float) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for v in vectors:
        if v.layer in out:
            raise InputError(f"two vectors at layer {v.layer} (ids {[x.vector_id for x in vectors if x.layer == v.layer]}); "
                             "a control vector holds one direction per layer: export them separately")
        out[v.layer] = (np.asarray(v.vec, dtype=np.float32) * np.float32(scale)).astype(np.float32)
    return dict(sorted(out.items()))


def export_vectors(vectors: Sequence[StoredVector], path: str | Path, fmt: str, *, model_hint: str = "",
                   scale: float = 1.0) -> Path:
    """Write ``vectors`` to ``path`` in ``fmt`` (see the module docstring). Returns the path."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if not vectors:
        raise InputError("no vectors to export")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "npy":
        arr = np.stack([np.asarray(v.vec, np.float32) * np.float32(scale) for v in vectors])
        np.save(path, arr[0] if len(vectors) == 1 else arr)
        return path
    dirs = _directions(vectors, scale)
    if fmt == "steering-vectors":
        import torch

        torch.save({"layer_activations": {int(k): torch.from_numpy(v.copy()) for k, v in dirs.items()},
                    "layer_type": "decoder_block"}, path)
        return path
    if fmt == "gguf" and 0 in dirs:
        raise InputError("llama.cpp cannot steer layer 0 (control vectors start at direction.1); "
                         "export a vector of another layer, or use --format repeng")
    _write_gguf(path, dirs, model_hint)
    return path


def _gguf():
    try:
        import gguf
    except ImportError:
        raise InputError("GGUF files need the gguf package: pip install 'actstore[interop]'") from None
    return gguf


def _write_gguf(path: Path, dirs: dict[int, np.ndarray], model_hint: str) -> None:
    gguf = _gguf()
    tmp = path.with_name(path.name + ".tmp")
    w = gguf.GGUFWriter(str(tmp), "controlvector")
    w.add_string("controlvector.model_hint", model_hint)
    w.add_int32("controlvector.layer_count", len(dirs))
    for layer, vec in dirs.items():
        w.add_tensor(f"direction.{layer}", vec)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    tmp.replace(path)  # a reader never sees a half-written file


@dataclass(frozen=True, eq=False)
class ForeignVectors:
    """Vectors read from a file: ``{layer: float32[d]}`` and where they came from."""

    directions: dict[int, np.ndarray]
    fmt: str
    model_hint: str | None = None


def read_vectors(path: str | Path, layer: int | None = None) -> ForeignVectors:
    """Read a GGUF control vector, a ``.pt`` (steering-vectors dict, ``{layer: tensor}`` or a tensor)
    or a ``.npy``. A bare ``[d]`` vector needs ``layer``; a ``[L, d]`` array is read as layers 0..L-1."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"vector file not found: {p}; pass a .gguf, .pt or .npy file")
    suffix = p.suffix.lower()
    if suffix == ".gguf":
        gguf = _gguf()
        try:
            reader = gguf.GGUFReader(str(p))
        except Exception as err:  # noqa: BLE001  the gguf reader raises ValueError, struct.error, IndexError...
            raise InputError(f"cannot read {p} as GGUF ({err})") from None
        arch = reader.get_field("general.architecture")
        if arch is None or bytes(arch.parts[-1]).decode("utf-8", "replace") != "controlvector":
            raise InputError(f"{p} is not a control-vector GGUF (general.architecture is not 'controlvector')")
        hint = reader.get_field("controlvector.model_hint")
        dirs = {}
        for t in reader.tensors:
            if t.name.startswith("direction."):
                try:
                    dirs[int(t.name.split(".", 1)[1])] = np.asarray(t.data, dtype=np.float32).reshape(-1).copy()
                except ValueError:
                    raise InputError(f"{p}: bad tensor name {t.name!r}; expected direction.<layer>") from None
        if not dirs:
            raise InputError(f"{p} holds no direction.<layer> tensors")
        return ForeignVectors(dict(sorted(dirs.items())), "gguf",
                              bytes(hint.parts[-1]).decode("utf-8", "replace") if hint is not None else None)
    if suffix in (".pt", ".pth"):
        import torch

        try:
            obj: Any = torch.load(p, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001  pickle, zip and unpickler errors all mean "not a tensor file"
            raise InputError(f"cannot read {p} with torch.load ({str(err).splitlines()[0]})") from None
        if isinstance(obj, dict) and "layer_activations" in obj:
            obj = obj["layer_activations"]
        if isinstance(obj, dict):
            try:
                return ForeignVectors({int(k): _vec(v, p) for k, v in sorted(obj.items())}, "pt")
            except (TypeError, ValueError):
                raise InputError(f"{p}: expected a dict of layer -> 1-D tensor") from None
        return ForeignVectors(_from_array(np.asarray(obj.detach().float().numpy() if hasattr(obj, "detach") else obj),
                                          layer, p), "pt")
    if suffix == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except ValueError as err:
            raise InputError(f"cannot read {p} as .npy ({err})") from None
        return ForeignVectors(_from_array(arr, layer, p), "npy")
    raise InputError(f"unknown vector file type {suffix!r} ({p}); use .gguf, .pt or .npy")


def _vec(v: Any, p: Path) -> np.ndarray:
    arr = np.asarray(v.detach().float().numpy() if hasattr(v, "detach") else v, dtype=np.float32).reshape(-1)
    if not np.isfinite(arr).all():
        raise InputError(f"{p} holds non-finite values")
    return arr


def _from_array(arr: np.ndarray, layer: int | None, p: Path) -> dict[int, np.ndarray]:
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 1:
        if layer is None:
            raise InputError(f"{p} holds one vector with no layer; pass --layer L")
        return {int(layer): _vec(arr, p)}
    if arr.ndim == 2:
        if layer is not None:
            raise InputError(f"{p} holds {arr.shape[0]} vectors (one per layer); drop --layer")
        return {i: _vec(row, p) for i, row in enumerate(arr)}
    raise InputError(f"{p} has shape {arr.shape}; expected [d] or [layers, d]")


def import_vectors(store: Store, path: str | Path, *, layer: int | None = None, name: str | None = None,
                   value: str | None = None, layers: Sequence[int] | None = None) -> tuple[int, list[int]]:
    """Add the vectors of a file to ``vectors`` (component ``imported``). Returns (run id, vector ids).

    ``layers`` keeps only those layers of a multi-layer file. Widths are checked against the store.
    """
    info = store.model
    if info is None:
        raise InputError(f"store {store.root} has no model yet; vectors need one (its d_model)")
    fv = read_vectors(path, layer)
    dirs = {k: v for k, v in fv.directions.items() if layers is None or k in set(layers)}
    if not dirs:
        raise InputError(f"none of layers {list(layers or [])} is in {path} (it has {sorted(fv.directions)})")
    for k, v in dirs.items():
        if v.shape[0] != info.d_model:
            raise InputError(f"{path}: the vector at layer {k} has width {v.shape[0]}, but this store's model "
                             f"({info.name}) has d_model {info.d_model}")
        if not 0 <= k < info.n_layers:
            raise InputError(f"{path}: layer {k} out of range; the store's model has layers 0-{info.n_layers - 1}")
    stem = name or Path(path).stem
    rec = Recorder()
    for k, v in dirs.items():
        rec.add_vector(v, name=f"{stem}/resid_post.{k}", value=value, condition=None, component="imported",
                       site="resid_post", layer=k, pool=None, language=None, n_pos=None, n_neg=None,
                       meta={"source": str(path), "format": fv.fmt, "model_hint": fv.model_hint})
    return record(store, "import", {"path": str(path), "format": fv.fmt, "layers": sorted(dirs)}, rec,
                  {"vectors": len(dirs)})
