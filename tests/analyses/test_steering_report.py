"""steer report: distinct vectors stay distinct rows, and layers stay distinct lines."""

import numpy as np
import pandas as pd

from analyses.steering.report import curves, summary_table


def _frame() -> pd.DataFrame:
    rows = []
    # two vectors of one kind, value, layer and alpha (en and es), at layers 1 and 2, plus the baseline
    for vid, name, layer, score in ((1, "en/care/intrinsic/resid_post.1", "1", 0.2),
                                    (2, "es/care/intrinsic/resid_post.1", "1", 0.6),
                                    (3, "en/care/intrinsic/resid_post.2", "2", 0.9)):
        rows.append({"kind": "add", "vector": name, "vector_id": vid, "vector_kind": "intrinsic", "value": "care",
                     "layers": layer, "alpha": 0.5, "beta": np.nan, "alpha_mode": "relative", "eval": "e",
                     "metric": "any_value", "score": score, "n": 10, "lo": score - 0.1, "hi": score + 0.1,
                     "setting_id": vid})
    rows.append({"kind": "baseline", "vector": None, "vector_id": np.nan, "vector_kind": None, "value": None,
                 "layers": None, "alpha": 0.0, "beta": np.nan, "alpha_mode": None, "eval": "e",
                 "metric": "any_value", "score": 0.1, "n": 10, "lo": 0.0, "hi": 0.2, "setting_id": 0})
    return pd.DataFrame(rows)


def test_distinct_vectors_are_not_merged() -> None:
    table = summary_table(_frame())
    adds = table[table.kind == "add"]
    assert sorted(adds.any_value.tolist()) == [0.2, 0.6, 0.9]  # not one averaged 0.4 row for en and es
    assert set(adds.vector) == {"en/care/intrinsic/resid_post.1", "es/care/intrinsic/resid_post.1",
                                "en/care/intrinsic/resid_post.2"}
    assert (table.kind == "baseline").sum() == 1


def test_plot_lines_keep_layers_apart() -> None:
    lines = curves(_frame(), "any_value")
    assert set(lines) == {"intrinsic @ layer 1", "intrinsic @ layer 2"}
    x1, y1 = lines["intrinsic @ layer 1"]
    _, y2 = lines["intrinsic @ layer 2"]
    assert x1.tolist() == [0.0, 0.5] and y1[1] == np.float64(0.4) and y2[1] == np.float64(0.9)
