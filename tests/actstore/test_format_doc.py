"""schema/FORMAT.md's recipe (duckdb + zarr + numpy, no actstore) reads what the store wrote."""

import re
import sys
from pathlib import Path

import numpy as np

import actstore
from tests.actstore import synth

DOC = Path(__file__).resolve().parents[2] / "schema" / "FORMAT.md"


def test_format_recipe_reads_the_same_numbers(tmp_path):
    path = tmp_path / "s"
    with actstore.open(path, read_only=False, create=True) as st:
        synth.write(st, 4)
        rids = [r[0] for r in st.sql("SELECT response_id FROM records ORDER BY record_id").fetchall()]
        st.insert("prompts", {"prompt_id": [f"p{i}" for i in range(len(rids))], "user_text": ["q"] * len(rids),
                              "condition": ["prompted" if i % 2 else "intrinsic" for i in range(len(rids))]})
        st.insert("responses", {"response_id": rids, "prompt_id": [f"p{i}" for i in range(len(rids))],
                                "sample_idx": [0] * len(rids), "text": ["r"] * len(rids)})
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    code = code.replace("STORE", str(path)).replace("layer=7", "layer=1")
    ns: dict = {}
    blocked = {m: sys.modules.pop(m, None) for m in list(sys.modules) if m == "actstore" or m.startswith("actstore.")}
    try:
        exec(compile(code, "FORMAT.md", "exec"), ns)  # noqa: S102 - the doc's own example
    finally:
        sys.modules.update({k: v for k, v in blocked.items() if v is not None})
    with actstore.open(path) as st:
        rows = st.sql("SELECT row FROM tokens_info WHERE role='response' AND condition='prompted' ORDER BY row") \
            .fetchnumpy()["row"]
        want = st.read("resid_post", 1, rows)
    assert len(rows) > 0 and np.array_equal(ns["x"], want)
