"""actstore: an activation database for interpretability research.

    import actstore
    store = actstore.open("runs/qwen-values")          # read-only by default
    store.sql("SELECT condition, count(*) FROM records_info GROUP BY 1").df()
    x = store.read("resid_post", 14, rows=[0, 5, 9])   # float32 [3, d_model]

Importing the package is cheap: the store's modules (DuckDB, Zarr, NumPy, PyArrow: about a second to
import) load on first use of ``open`` or of a name below, so ``actstore --help`` and a command given a
path that is not there answer at once.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actstore.errors import ActstoreError, StoreNotFoundError
from actstore.site import Site

if TYPE_CHECKING:
    from actstore.batch import ROLES, ArrayKey, ArraySpec, Batch
    from actstore.store import GroupMeans, ModelInfo, Store

__version__ = "0.1.0"

__all__ = ["ROLES", "ActstoreError", "ArrayKey", "ArraySpec", "Batch", "GroupMeans", "ModelInfo", "Site",
           "Store", "__version__", "open"]

_LAZY = {"ROLES": "actstore.batch", "ArrayKey": "actstore.batch", "ArraySpec": "actstore.batch",
         "Batch": "actstore.batch", "GroupMeans": "actstore.store", "ModelInfo": "actstore.store",
         "Store": "actstore.store"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"actstore.{name}") is not None:
        return importlib.import_module(f"actstore.{name}")  # ``import actstore; actstore.store.X``
    raise AttributeError(f"module 'actstore' has no attribute {name!r}")


def open(path: str | Path, read_only: bool = True, create: bool = False, **kw: Any) -> Store:
    """Open a store by path, or read-only by URL (http(s)://, s3://, gs://, hf://: see actstore.remote).

    ``create=True`` (with ``read_only=False``) makes a new local store if absent. See
    :func:`actstore.store.open`.
    """
    text = str(path)
    if "://" not in text and not create and not Path(text).expanduser().exists():
        # the common mistake, answered before the store's heavy imports
        raise StoreNotFoundError(f"no store at {Path(text).expanduser()}; check the path, or create one with "
                                 "'actstore ingest run'")
    from actstore.store import open as open_store

    return open_store(path, read_only=read_only, create=create, **kw)
