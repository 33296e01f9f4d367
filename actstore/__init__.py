"""actstore: an activation database for interpretability research."""

from actstore.errors import ActstoreError
from actstore.site import Site

__version__ = "0.1.0"

__all__ = ["ActstoreError", "Site", "__version__"]
