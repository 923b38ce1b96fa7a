"""The benchmark scripts still run (their --quick mode); timings are reported by them, never asserted here."""

import json
import sys
from pathlib import Path

import pytest

from conftest import REPO, run

pytestmark = pytest.mark.slow  # runs the benchmark scripts

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def test_training_throughput_benchmark_runs(tmp_path):
    out = tmp_path / "train.json"
    result = run([sys.executable, str(REPO / "bench" / "train_throughput.py"), "--quick", "--sizes", "28",
                  "--width", "8", "--batch", "8", "16", "--out", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert [(r["image_size"], r["batch"]) for r in results["runs"]] == [(28, 8), (28, 16)]
    assert all(r["steps_per_s"] > 0 for r in results["runs"])
    assert all(set(r["share"]) == {"d_step", "g_step", "ema_step"} for r in results["runs"])  # gan/train/steps.py's parts
    (fit,) = results["step_time_fit"]  # seconds per step = overhead + per image x batch
    assert fit["image_size"] == 28 and {"overhead_ms", "per_image_ms"} <= set(fit)


def test_app_benchmark_runs(tmp_path):
    out, png = tmp_path / "app.json", tmp_path / "app.png"
    result = run([sys.executable, str(REPO / "bench" / "app_latency.py"), "--quick", "--clients", "1", "2",
                  "--out", str(out), "--plot", str(png)], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["cold_start_s"] > 0 and results["rss_at_end_mb"] > 0
    assert [(r["endpoint"], r["clients"]) for r in results["load"]] == [
        ("/generate", 1), ("/generate", 2), ("/quiz_round", 1), ("/quiz_round", 2)]
    assert all(r["requests"] >= 2 and r["p95_ms"] >= r["p50_ms"] > 0 for r in results["load"])
    assert results["model_time_64"]["eager_median_ms"] > 0 and results["model_time_64"]["library_median_ms"] > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fairness_benchmark_runs(tmp_path):
    out = tmp_path / "fairness.json"
    result = run([sys.executable, str(REPO / "bench" / "app_fairness.py"), "--quick", "--inverters", "1",
                  "--out", str(out)], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["alone"]["calls"] == results["beside_inversions"]["calls"] == 3
    assert results["p50_ratio"] > 0 and results["beside_inversions"]["inverters"] == 1


# Two halves, so that test workers (-n) train them side by side; together they are every recipe of bench/recipes.py.
RECIPE_HALVES = (("project", "classic"), ("no-diffaugment", "concat-d"))


def test_the_quality_benchmark_halves_cover_every_recipe():
    sys.path.insert(0, str(REPO))
    from bench.recipes import RECIPES

    assert sorted(name for half in RECIPE_HALVES for name in half) == sorted(RECIPES)


@pytest.mark.skipif(not Path(FASHION_MNIST).is_dir(), reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("recipes", RECIPE_HALVES, ids="+".join)
def test_quality_benchmark_trains_its_recipes_and_scores_each_budget(tmp_path, recipes):
    out, png = tmp_path / "quality.json", tmp_path / "quality.png"
    result = run([sys.executable, str(REPO / "bench" / "quality.py"), "--quick", "--recipes", *recipes,
                  "--work-dir", str(tmp_path / "runs"), "--out", str(out), "--plot", str(png)], timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    expected = set(recipes) | ({"no-ema"} if "project" in recipes else set())  # no-ema: project's live generator
    assert {row["recipe"] for row in rows} == expected
    for name in expected:  # each recipe scored at both budgets, the longer one having trained no fewer steps
        mine = sorted((r for r in rows if r["recipe"] == name), key=lambda r: r["minutes"])
        assert [r["minutes"] for r in mine] == [0.02, 0.04]
        # Budgets are wall-clock: on a loaded machine both may end after their first step (CI saw 1 and 1).
        assert 0 < mine[0]["steps"] <= mine[1]["steps"]
        assert all(r["fd"] > 0 and 0 <= r["class_accuracy"] <= 1 for r in mine)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| recipe | minutes |" in result.stdout


def test_generation_benchmark_runs(tmp_path):
    out = tmp_path / "generation.json"
    result = run([sys.executable, str(REPO / "bench" / "generation.py"), "--quick", "--sizes", "28", "32",
                  "--counts", "1", "4", "--width", "8", "--out", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    runs = json.loads(out.read_text())["runs"]
    assert [(r["image_size"], r["images"]) for r in runs] == [(28, 1), (28, 4), (32, 1), (32, 4)]
    assert all(r["eager_median_ms"] > 0 and r["library_median_ms"] > 0 for r in runs)


def test_realism_curves_read_a_runs_evaluations(tmp_path):
    """bench/realism_curves.py turns a run's evals.jsonl into curves; the shipped model carries a real one."""
    out, png = tmp_path / "realism.json", tmp_path / "realism.png"
    run_dir = tmp_path / "runs" / "mine"
    run_dir.mkdir(parents=True)
    (run_dir / "training_config.json").write_text((REPO / "models" / "mnist" / "training_config.json").read_text())
    (run_dir / "evals.jsonl").write_text((REPO / "models" / "mnist" / "evals.jsonl").read_text())
    result = run([sys.executable, str(REPO / "bench" / "realism_curves.py"), str(run_dir), "--names", "mnist",
                  "--out", str(out), "--plot", str(png)])
    assert result.returncode == 0, result.stderr[-2000:]
    (curve,) = json.loads(out.read_text())["runs"]
    assert curve["name"] == "mnist" and "--output-dir runs/mine" in curve["command"]
    steps = [p["step"] for p in curve["points"]]
    assert steps == sorted(steps) and len(steps) >= 3 and all(0.5 <= p["c2st"] <= 1 for p in curve["points"])
    assert png.stat().st_size > 10_000
    missing = run([sys.executable, str(REPO / "bench" / "realism_curves.py"), str(tmp_path)])
    assert missing.returncode != 0 and "evals.jsonl" in missing.stderr


def test_c2st_cue_benchmark_scores_each_transform_on_both_sets(tmp_path):
    """bench/c2st_cues.py: each cue's transform keeps images uint8 and shaped, and the script scores each."""
    import torch
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from bench.c2st_cues import CUES
    from gan.model_files import load_real_pool

    checker = (torch.arange(28)[:, None] + torch.arange(28)[None, :]) % 2 * 200  # the finest pattern there is
    images = checker.to(torch.uint8).expand(3, 1, 28, 28)
    for cue, (_, transform) in CUES.items():
        out = transform(images)
        assert out.dtype == torch.uint8 and out.shape == images.shape, cue
    assert CUES["blur"][1](images)[0, 0, 5:-5, 5:-5].float().std() < 1  # blur leaves the checkerboard flat grey

    pool, labels = load_real_pool(REPO / "models" / "fashion-mnist")  # 500 real images as a folder dataset
    names = json.loads((REPO / "models" / "fashion-mnist" / "config.json").read_text())["class_names"]
    for i, (image, label) in enumerate(zip(pool.numpy(), labels.tolist())):
        folder = tmp_path / "data" / f"{label}-{names[label].replace('/', '-')}"  # sorts in the model's order
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image.squeeze()).save(folder / f"{i:03d}.png")
    out = tmp_path / "cues.json"
    result = run([sys.executable, str(REPO / "bench" / "c2st_cues.py"),
                  "--model", str(REPO / "models" / "fashion-mnist"),
                  "--dataset", str(tmp_path / "data"), "--per-class", "20", "--epochs", "1",
                  "--cues", "none", "blur", "--out", str(out)])
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["images_per_set"] == 200 and [r["cue_removed"] for r in report["results"]] == ["none", "blur"]
    assert all(0 <= r["accuracy"] <= 1 and r["interval_95"][0] <= r["accuracy"] for r in report["results"])


def test_discriminator_preferred_fakes_keep_each_classs_count_and_its_best_scored():
    """bench/c2st_variants.py d-top:F: per class, the share F of a pool that the discriminator scores highest."""
    import torch

    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(REPO / "bench"))
    from bench.c2st_variants import discriminator_preferred
    from gan.config import ModelConfig
    from gan.models import Generator
    from gan.quality.metrics import generated_batches

    torch.manual_seed(0)
    generator = Generator(ModelConfig(image_size=28, num_classes=3, g_width=8, d_width=8)).eval()

    class Brightness(torch.nn.Module):  # a stand-in judge that likes bright images
        def forward(self, images, labels):
            return images.mean(dim=(1, 2, 3))

    counts = [4, 2, 3]
    kept = discriminator_preferred(generator, Brightness(), counts, share=0.5)
    assert kept.dtype == torch.uint8 and kept.shape == (9, 1, 28, 28)
    pools = dict(generated_batches(generator, per_class=[8, 4, 6], truncation=1.0, batch_size=8))
    start = 0
    for label, count in enumerate(counts):
        brightness = pools[label].float().mean(dim=(1, 2, 3))
        expected = pools[label][brightness.argsort(descending=True)[:count]]
        assert torch.equal(kept[start:start + count], expected)
        start += count
