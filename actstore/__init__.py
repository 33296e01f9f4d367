"""actstore: an activation database for interpretability research.

    import actstore
    store = actstore.open("runs/qwen-values")          # read-only by default
    store.sql("SELECT condition, count(*) FROM records_info GROUP BY 1").df()
    x = store.read("resid_post", 14, rows=[0, 5, 9])   # float32 [3, d_model]
"""

from actstore.batch import ROLES, ArrayKey, ArraySpec, Batch
from actstore.errors import ActstoreError
from actstore.site import Site
from actstore.store import GroupMeans, ModelInfo, Store, open

__version__ = "0.1.0"

__all__ = ["ROLES", "ActstoreError", "ArrayKey", "ArraySpec", "Batch", "GroupMeans", "ModelInfo", "Site",
           "Store", "__version__", "open"]
