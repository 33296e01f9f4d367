"""Value Portrait by path: the real shared data when present, small synthetic files for the edges."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from actstore.errors import InputError
from analyses.evals.value_portrait import (
    build_portrait_prompt,
    load_human_scores,
    load_portrait_items,
    score_portrait,
)
from ingest.values import VALUE_SLUGS

VP_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "value-portrait"
needs_vp = pytest.mark.skipif(
    not (VP_DIR / "tagged_responses.json").exists(),
    reason=f"Value Portrait data not found at {VP_DIR} (shared data, not shipped with the project)",
)

NAMES = [
    "Self_Direction",
    "Stimulation",
    "Hedonism",
    "Achievement",
    "Power",
    "Security",
    "Conformity",
    "Tradition",
    "Benevolence",
    "Universalism",
]


def write_items(tmp_path: Path, rhos: list[dict[str, float]]) -> Path:
    outputs = [
        {"id": k + 1, "content": f"reply {k}", "correlations": [[n, r.get(n, 0.0)] for n in NAMES]}
        for k, r in enumerate(rhos)
    ]
    data = [{"content": {"title": "T", "text": "Q?"}, "outputs": outputs, "portrait_id": 7}]
    path = tmp_path / "tagged_responses.json"
    path.write_text(json.dumps(data))
    return path


@needs_vp
def test_real_items_load_with_the_documented_tag_counts() -> None:
    items = load_portrait_items(VP_DIR)
    assert len(items) == 520 and len({i.id for i in items}) == 520
    assert all(set(i.correlations) == set(VALUE_SLUGS) for i in items)
    # |rho| >= 0.3 is the population the data README counts (297 responses, 553 pairs)
    keyed = [i.keys(0.3, reverse_keyed=True) for i in items]
    assert sum(bool(k) for k in keyed) == 297 and sum(len(k) for k in keyed) == 553
    positive = [i.tags() for i in items]
    assert 0 < sum(len(t) for t in positive) < 553
    prompt = build_portrait_prompt(items[0])
    assert items[0].response in prompt and "1 to 6" in prompt


@needs_vp
def test_real_items_score_a_respondent_who_likes_benevolent_replies() -> None:
    items = load_portrait_items(VP_DIR / "tagged_responses.json")
    ratings = [6 if i.correlations["benevolence"] >= 0.3 else 2 for i in items]
    scores = score_portrait(items, ratings)
    assert scores.centered["benevolence"] > 0
    assert scores.centered["benevolence"] == max(scores.centered.values())


@needs_vp
def test_real_human_scores_show_the_circumplex_tension() -> None:
    humans = load_human_scores(VP_DIR)
    assert humans.scores.shape == (569, 10)
    corr = humans.correlation()
    j = VALUE_SLUGS.index
    # opposite values correlate negatively in people (centered scores)
    assert corr[j("universalism"), j("power")] < 0
    assert corr[j("self_direction"), j("conformity")] < 0
    assert np.allclose(np.diag(corr), 1.0)
    pct = humans.percentile(dict.fromkeys(VALUE_SLUGS, 10.0))
    assert all(p == 100.0 for p in pct.values())


def test_scoring_uses_positive_tags_and_optionally_reverse_keys(tmp_path: Path) -> None:
    path = write_items(tmp_path, [{"Power": 0.4}, {"Power": -0.5}, {"Security": 0.35}, {}])
    items = load_portrait_items(path)
    assert [i.id for i in items] == ["7-1", "7-2", "7-3", "7-4"]
    assert items[0].query == "T\n\nQ?"
    scores = score_portrait(items, [5, 2, 4, 1])
    assert scores.raw["power"] == 5.0 and scores.n_items["power"] == 1
    assert scores.grand_mean == pytest.approx(3.0)
    assert scores.centered["security"] == pytest.approx(1.0)
    assert math.isnan(scores.raw["tradition"])
    keyed = score_portrait(items, [5, 2, 4, 1], reverse_keyed=True)
    assert keyed.raw["power"] == pytest.approx((5 + (7 - 2)) / 2) and keyed.n_items["power"] == 2
    by_id = score_portrait(items, {"7-1": 6})
    assert by_id.raw["power"] == 6.0 and by_id.n_answered == 1


def test_human_scores_from_a_small_file(tmp_path: Path) -> None:
    data = {
        "P1": {"pvq": {n: float(k) for k, n in enumerate(NAMES)}},
        "P2": {"pvq": {n: float(-k) for k, n in enumerate(NAMES)}},
    }
    (tmp_path / "human_pvq21_scores.json").write_text(json.dumps(data))
    humans = load_human_scores(tmp_path)
    assert humans.participants == ("P1", "P2")
    assert humans.mean()["power"] == 0.0 and humans.std()["stimulation"] == pytest.approx(np.sqrt(2))
    assert humans.percentile({"power": 0.0})["power"] == 50.0
    assert math.isnan(humans.percentile({})["power"])


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read .* as JSON"),
        ('{"a": 1}', "is a dict, not a list"),
        ('[{"content": {"title": "t"}}]', r"entry 0 is malformed \(KeyError"),
        (
            '[{"content": {}, "outputs": [{"id": 1, "content": "r", "correlations": [["Kindness", 0.5]]}]}]',
            "unknown value 'Kindness'",
        ),
        ("[]", "holds no responses"),
    ],
)
def test_malformed_item_files_name_the_file_and_the_layout(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "tagged_responses.json"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        load_portrait_items(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_files_say_what_to_pass(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Value Portrait data not found") as err:
        load_portrait_items(tmp_path / "nowhere")
    assert "tagged_responses.json" in str(err.value)
    with pytest.raises(InputError, match="Value Portrait file not found"):
        load_human_scores(tmp_path)  # a directory without the file


def test_malformed_human_file(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"P1": {"pvq": {"Power": 1.0}}}))
    with pytest.raises(InputError, match="participant 'P1' lacks a full 'pvq'"):
        load_human_scores(path)
    path.write_text("[]")
    with pytest.raises(InputError, match="expected an object"):
        load_human_scores(path)


def test_bad_threshold_and_unknown_ids(tmp_path: Path) -> None:
    items = load_portrait_items(write_items(tmp_path, [{"Power": 0.4}]))
    with pytest.raises(InputError, match="threshold"):
        score_portrait(items, [3], threshold=0)
    with pytest.raises(InputError, match="unknown item ids"):
        score_portrait(items, {"9-9": 3})
