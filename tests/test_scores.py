"""The typed scores record (gan/quality/scores.py): every metrics.json and evals.jsonl row reads back and writes out
as it was, whatever version wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan.quality.scores import Scores

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["fashion-mnist", "mnist", "emoji"])
def test_shipped_metrics_round_trip_through_the_record(name):
    data = json.loads((REPO / "models" / name / "metrics.json").read_text())
    scores = Scores.from_dict(data)
    assert scores.to_dict() == {k: v for k, v in data.items() if v is not None}
    assert scores.measured and 0 < scores.accuracy <= 1 and scores.fd > 0
    assert scores.c2st_accuracy == data["c2st"]["accuracy"] and scores.c2st_images == data["c2st"]["images_per_set"]
    assert scores.extra == {}  # every key the shipped files hold has a field


def test_files_of_other_versions_keep_their_unknown_keys_and_lack_figures_as_none():
    scores = Scores.from_dict({"fd": 2.5, "a_future_metric": {"value": 1}})
    assert scores.fd == 2.5 and scores.c2st is None and scores.c2st_accuracy is None and scores.accuracy is None
    assert scores.to_dict() == {"fd": 2.5, "a_future_metric": {"value": 1}}
    empty = Scores.from_dict(None)
    assert not empty.measured and empty.to_dict() == {}
