"""The benchmark scripts still run (their --quick mode); timings are reported by them, never asserted here."""

import json
import sys

from conftest import REPO, run


def test_training_throughput_benchmark_runs(tmp_path):
    out = tmp_path / "train.json"
    result = run([sys.executable, str(REPO / "bench" / "train_throughput.py"), "--quick", "--sizes", "28",
                  "--width", "8", "--out", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    (row,) = json.loads(out.read_text())["runs"]
    assert row["image_size"] == 28 and row["steps_per_s"] > 0


def test_app_benchmark_runs(tmp_path):
    out = tmp_path / "app.json"
    result = run([sys.executable, str(REPO / "bench" / "app_latency.py"), "--quick", "--out", str(out)], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["cold_start_s"] > 0 and len(results["throughput"]) == 2
