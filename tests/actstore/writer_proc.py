"""A writer process for crash and concurrency tests: python -m tests.actstore.writer_proc STORE N [delay] [split].

``split``: each batch through ``write_batch`` then ``commit_batch`` (the capture stage's split writes)."""

import sys
import time

import actstore
from tests.actstore import synth

if __name__ == "__main__":
    path, n = sys.argv[1], int(sys.argv[2])
    delay = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
    split = len(sys.argv) > 4 and sys.argv[4] == "split"
    st = actstore.open(path, read_only=False, create=True, publish_interval=0.0)
    if st.model is None:
        st.set_model(synth.MODEL, vocab=[f"tok{i}" for i in range(50)])
    st.declare_arrays(synth.specs())
    done = st.committed_keys()
    print("ready", flush=True)
    for i in range(n):
        if f"batch-{i}" not in done:
            if split:
                st.commit_batch(st.write_batch(synth.batch(i)))
            else:
                st.append(synth.batch(i))
            if delay:
                time.sleep(delay)
    st.close()
    print("finished", flush=True)
