"""A writer process for crash and concurrency tests: python -m tests.actstore.writer_proc STORE N [delay] [split].

``split``: each batch through ``write_batch(defer=True)`` then ``commit_batch`` (the capture stage's
split writes), from page-aligned copies of its arrays, with the direct-write minimum lowered so
that spans this small are deferred too where their alignment allows."""

import dataclasses
import mmap
import sys
import time

import numpy as np

import actstore
import actstore.arrays
from tests.actstore import synth


def _aligned(a: np.ndarray) -> np.ndarray:
    b = np.frombuffer(mmap.mmap(-1, max(1, a.nbytes)), dtype=a.dtype, count=a.size).reshape(a.shape)
    b[...] = a
    return b


def _aligned_batch(b):
    return dataclasses.replace(b, token_arrays={k: _aligned(a) for k, a in b.token_arrays.items()},
                               record_arrays={k: _aligned(a) for k, a in b.record_arrays.items()})

if __name__ == "__main__":
    path, n = sys.argv[1], int(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    split = len(sys.argv) > 4 and sys.argv[4] == "split"
    if split:
        actstore.arrays.DIRECT_MIN = 512
    st = actstore.open(path, read_only=False, create=True, publish_interval=0.0)
    if st.model is None:
        st.set_model(synth.MODEL, vocab=[f"tok{i}" for i in range(50)])
    st.declare_arrays(synth.specs())
    done = st.committed_keys()
    print("ready", flush=True)
    for i in range(n):
        if f"batch-{i}" not in done:
            if split:
                st.commit_batch(st.write_batch(_aligned_batch(synth.batch(i)), defer=True))
            else:
                st.append(synth.batch(i))
            if delay:
                time.sleep(delay)
    st.close()
    print("finished", flush=True)
