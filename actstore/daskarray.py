"""A store's array as a lazy ``dask.array`` (the optional extra ``actstore[dask]``).

One Dask block per stored chunk (per segment), so a reduction reads each chunk once and holds a
few chunks in memory whatever the array's size; Dask's own schedulers (threads, processes, a
``distributed`` cluster) run it. The blocks read through actstore (bf16 decoded exactly, remote
stores by byte range), and the view pickles without its open files, so workers reopen them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from actstore.arrays import ArrayIO, ArrayMeta
from actstore.dtypes import decode
from actstore.errors import UsageError
from actstore.segments import SegmentMap


class ArrayView:
    """``[n_rows, width]`` with numpy-style slicing, the shape Dask's ``from_array`` wants."""

    def __init__(self, location: str, remote: bool, meta: ArrayMeta, segments: SegmentMap, out: str) -> None:
        self.location, self.remote, self.meta, self.segments, self.out = location, remote, meta, segments, out
        self.shape = (meta.n_rows, meta.width)
        self.ndim = 2
        self.dtype = meta.np_dtype if out == "native" else np.dtype(out)
        self._io: ArrayIO | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_io": None}  # open files and sessions stay behind

    def _arrays(self) -> ArrayIO:
        if self._io is None:
            if self.remote:
                from actstore.remote import RemoteGroup, join

                self._io = ArrayIO([RemoteGroup(join(self.location, s.path)) for s in self.segments.segments],
                                   self.segments)
            else:
                self._io = ArrayIO.local(Path(self.location), self.segments, read_only=True)
        return self._io

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        lo, hi, step = rows.indices(self.shape[0])
        raw = self._arrays().read_span(self.meta, lo, max(lo, hi))[::step]
        return decode(raw, self.meta.logical_dtype, self.out)[:, cols]


def block_rows(meta: ArrayMeta, segments: SegmentMap) -> tuple[int, ...]:
    """Row counts of the Dask blocks: the array's chunks, segment by segment."""
    out: list[int] = []
    for k in range(1 if meta.axis is None else len(segments)):
        n = segments.local_count(k, meta.n_rows, meta.axis)
        out += [meta.chunk_rows] * (n // meta.chunk_rows) + ([n % meta.chunk_rows] if n % meta.chunk_rows else [])
    return tuple(out) or (0,)


def dask_array(store: Any, meta: ArrayMeta, dtype: str = "float32"):
    try:
        import dask.array as da
    except ImportError:
        raise UsageError("Store.dask_array needs dask; install it: pip install 'actstore[dask]'") from None
    if dtype not in ("float32", "float64", "native"):
        raise UsageError(f"unknown output dtype {dtype!r}; use float32, float64 or native")
    view = ArrayView(store.location, store.is_remote, meta, store.segments, dtype)
    return da.from_array(view, chunks=(block_rows(meta, store.segments), (meta.width,)), asarray=False,
                         lock=False, fancy=False, meta=np.empty((0, meta.width), dtype=view.dtype),
                         name=f"actstore-{meta.name.replace('/', '-')}-{abs(hash((store.location, meta)))}")
