"""Logical dtypes and how they are stored.

NumPy and Zarr have no bfloat16, so a bf16 array is stored as its raw 16 bits (``uint16``) with
``logical_dtype = "bfloat16"`` in the array's attributes and the catalog. Nothing is rounded:
what the model computed is what is stored. Decoding to float32 is exact (bf16 is the top half of
an fp32).
"""

from __future__ import annotations

import numpy as np

from actstore.errors import SchemaMismatchError, UsageError

#: logical dtype -> little-endian storage dtype
STORAGE: dict[str, str] = {
    "float32": "<f4",
    "float16": "<f2",
    "bfloat16": "<u2",
    "float64": "<f8",
}

LOGICAL_DTYPES = tuple(STORAGE)


def storage_dtype(logical: str) -> np.dtype:
    try:
        return np.dtype(STORAGE[logical])
    except KeyError:
        raise UsageError(f"unsupported dtype {logical!r}; use one of {', '.join(LOGICAL_DTYPES)}") from None


def itemsize(logical: str) -> int:
    return storage_dtype(logical).itemsize


def logical_of(arr: np.ndarray, declared: str | None = None) -> str:
    """The logical dtype of an incoming numpy array (uint16 means bf16 bits only if declared so)."""
    kind = arr.dtype.str.lstrip("<>=|")
    if declared == "bfloat16" and arr.dtype in (np.uint16, np.int16):
        return "bfloat16"
    for name, code in STORAGE.items():
        if name != "bfloat16" and np.dtype(code) == arr.dtype.newbyteorder("<"):
            return name
    raise SchemaMismatchError(f"arrays of dtype {kind} cannot be stored; pass float32, float16 or bf16 bits")


def to_storage(arr: np.ndarray, logical: str) -> np.ndarray:
    """View or convert an incoming array to its storage dtype, never rounding."""
    want = storage_dtype(logical)
    if logical == "bfloat16":
        if arr.dtype not in (np.uint16, np.int16):
            raise SchemaMismatchError(
                f"a bfloat16 array must arrive as its raw 16 bits (uint16), got {arr.dtype}; "
                "pass tensor.view(torch.int16).numpy() or use actstore.dtypes.from_torch"
            )
        return np.ascontiguousarray(arr).view(want)
    if arr.dtype.newbyteorder("<") != want:
        raise SchemaMismatchError(f"array of dtype {arr.dtype} does not match the declared {logical}")
    return np.ascontiguousarray(arr, dtype=want)


def decode(raw: np.ndarray, logical: str, out_dtype: str = "float32") -> np.ndarray:
    """Storage array -> numpy in ``out_dtype`` ("float32", "float64" or "native").

    "native" returns the storage array itself (bf16 stays as uint16 bits).
    """
    if out_dtype == "native":
        return raw
    if logical == "bfloat16":
        f32 = (raw.astype(np.uint32) << 16).view(np.float32)
        return f32 if out_dtype == "float32" else f32.astype(out_dtype)
    return raw.astype(out_dtype, copy=False)


def to_torch(raw: np.ndarray, logical: str):  # -> torch.Tensor; torch imported only when asked
    """Storage array -> torch tensor in the logical dtype, bit for bit (bf16 included)."""
    import torch  # noqa: PLC0415 - actstore never imports torch unless a caller asks for tensors

    if logical == "bfloat16":
        return torch.from_numpy(np.ascontiguousarray(raw).view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(raw))
