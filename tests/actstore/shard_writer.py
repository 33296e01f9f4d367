"""A sharded ingest worker for merge tests: python -m tests.actstore.shard_writer STORE N_BATCHES [I/N].

Without I/N the shard comes from the launcher's environment (torchrun or SLURM array variables);
with none either, it writes every batch to STORE itself.
"""

import sys

import actstore
from actstore.shard import part_path, resolve
from tests.actstore import synth

if __name__ == "__main__":
    store, n = sys.argv[1], int(sys.argv[2])
    shard = resolve(sys.argv[3] if len(sys.argv) > 3 else None)
    target = part_path(store, shard) if shard else store
    items = shard.items(n) if shard else range(n)
    with actstore.open(target, read_only=False, create=True) as st:
        st.set_model(synth.MODEL, vocab=[f"tok{i}" for i in range(50)])
        st.declare_arrays(synth.specs())
        done = st.committed_keys()
        for i in items:
            if f"batch-{i}" not in done:
                st.append(synth.batch(i))
    print(f"wrote {len(items)} batches to {target}", flush=True)
