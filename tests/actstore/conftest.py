import numpy as np
import pytest

import actstore
from tests.actstore import synth


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "store"


@pytest.fixture
def filled(store_path):
    """A closed store holding synthetic batches 0-5; returns (path, expected per-key arrays)."""
    with actstore.open(store_path, read_only=False, create=True) as st:
        synth.write(st, 6)
    return store_path


def expected(n_batches: int, seed: int = 0) -> dict:
    """Concatenated expected arrays of batches 0..n-1 (storage dtype)."""
    bs = [synth.batch(i, seed) for i in range(n_batches)]
    out = {k.name: np.concatenate([b.token_arrays[k] for b in bs]) for k in synth.keys()}
    out[synth.POOLED.name] = np.concatenate([b.record_arrays[synth.POOLED] for b in bs])
    return out
