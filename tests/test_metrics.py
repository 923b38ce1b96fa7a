"""Tests for the evaluator, the metrics and `python -m gan.evaluate`: learning, FD/KID behaviour, save/load, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import CLASSES, REPO, child_env, pattern
from gan.config import ModelConfig
from gan.data import ImageData, load_image_data, stratified_subset, to_model_range
from gan.errors import GanError
from gan.tools.evaluate import main
from gan.quality.evaluator import (CONFIG_NAME, WEIGHTS_NAME, Evaluator, EvaluatorConfig, augment, load_evaluator,
                                   save_evaluator, train_evaluator)
from gan.model_files import save_model
from gan.quality.metrics import (EvaluatorFeatures, cas, check_evaluator_fits, class_accuracy, fd_between,
                                 generated_batches, kid_between, kid_subset_size, score_generator)
from gan.models import Generator

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
TINY_EVALUATOR = dict(width=4, feature_dim=16)  # a few thousand parameters: trains in about a second
SCORE_KEYS = {"model", "dataset", "reference_split", "num_samples", "per_class", "truncation", "seeds", "evaluator",
              "evaluator_test_accuracy", "class_accuracy", "fd", "fd_train_test", "fd_ratio", "kid_mean", "kid_std",
              "date", "package_version"}


pytestmark = pytest.mark.usefixtures("one_thread")


def pattern_data(per_class: int, seed: int) -> ImageData:
    """Circles, squares and stripes (conftest.pattern), per_class of each, as ImageData."""
    rng = np.random.default_rng(seed)
    images = np.stack([pattern(name, rng) for name in CLASSES for _ in range(per_class)])[:, None]  # (N, 1, 28, 28)
    labels = torch.arange(len(CLASSES)).repeat_interleave(per_class)
    return ImageData(images=torch.from_numpy(images), labels=labels, class_names=list(CLASSES), source="patterns")


@pytest.fixture(scope="module")
def patterns_test() -> ImageData:
    return pattern_data(30, seed=1)


@pytest.fixture(scope="module")
def trained(patterns_test):
    """A tiny evaluator trained for 2 epochs on 3 x 40 pattern images, with its test accuracy."""
    train = pattern_data(40, seed=0)
    return train_evaluator(train, patterns_test, EvaluatorConfig.for_data(train, **TINY_EVALUATOR), epochs=2,
                           batch_size=16, lr=1e-2)


def noisy(images: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)) * sigma
    return (images.float() + noise).round().clamp(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------------------------- evaluator

def test_evaluator_learns_simple_patterns_well_above_chance(trained):
    model, accuracy = trained
    assert accuracy > 0.9  # chance is 1/3
    assert model.evaluator_config.test_accuracy == accuracy and model.evaluator_config.epochs == 2
    assert not model.training


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST is not on this machine")
def test_evaluator_learns_fashion_mnist_subset_above_chance():
    train = load_image_data(str(FASHION_DIR), split="train", image_size=28)
    test = load_image_data(str(FASHION_DIR), split="test", image_size=28)
    train = ImageData(train.images[:300], train.labels[:300], train.class_names, train.source)
    test = ImageData(test.images[:300], test.labels[:300], test.class_names, test.source)
    _, accuracy = train_evaluator(train, test, EvaluatorConfig.for_data(train), epochs=2, batch_size=32)
    assert accuracy > 0.3  # chance is 0.1


def test_training_is_reproducible_and_leaves_the_global_random_stream_alone(patterns_test):
    train = pattern_data(8, seed=0)
    config = EvaluatorConfig.for_data(train, **TINY_EVALUATOR)
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, _ = train_evaluator(train, patterns_test, config, epochs=1, batch_size=8, seed=5)
    assert torch.equal(torch.rand(1), expected_next)
    second, _ = train_evaluator(train, patterns_test, config, epochs=1, batch_size=8, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_augment_shifts_by_at_most_two_pixels_and_never_flips_by_default():
    image = torch.full((64, 1, 28, 28), -1.0)
    image[:, :, 10, 5] = 1.0  # one bright pixel left of centre
    shifted = augment(image, torch.Generator().manual_seed(0))
    assert shifted.shape == image.shape
    rows, cols = torch.nonzero(shifted[:, 0] > 0, as_tuple=True)[1:]
    assert (rows - 10).abs().max() <= 2 and (cols - 5).abs().max() <= 2  # a flip would put it at column 22
    assert len({(int(r), int(c)) for r, c in zip(rows, cols)}) > 5  # shifts really vary
    flipped = augment(image, torch.Generator().manual_seed(0), flip=True)
    assert (torch.nonzero(flipped[:, 0] > 0)[:, 2] > 14).any()


def test_save_load_round_trip_gives_identical_logits(trained, patterns_test, tmp_path):
    model, _ = trained
    save_evaluator(model, tmp_path / "ev")
    loaded = load_evaluator(tmp_path / "ev")
    assert loaded.evaluator_config == model.evaluator_config
    x = to_model_range(patterns_test.images)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert json.loads((tmp_path / "ev" / CONFIG_NAME).read_text())["class_names"] == list(CLASSES)


def test_loading_a_folder_without_weights_or_with_a_mismatched_config_fails_clearly(trained, tmp_path):
    model, _ = trained
    with pytest.raises(GanError, match="does not exist"):
        load_evaluator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match=f"no {WEIGHTS_NAME}"):
        load_evaluator(tmp_path / "empty")
    folder = save_evaluator(model, tmp_path / "ev")
    config = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "width": 8}))
    with pytest.raises(GanError, match="do not match"):
        load_evaluator(folder)
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "colour": "blue"}))
    with pytest.warns(UserWarning, match=r"ignoring fields \['colour'\]"):
        load_evaluator(folder)
    (folder / WEIGHTS_NAME).write_bytes(b"not safetensors")
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(GanError, match="not a readable safetensors"):
        load_evaluator(folder)


# ----------------------------------------------------------------------------------------------- metrics

def test_class_accuracy_of_real_images_is_the_evaluators_accuracy(trained, patterns_test):
    model, _ = trained
    with torch.no_grad():
        predicted = model(to_model_range(patterns_test.images)).argmax(dim=1)
    correct = (predicted == patterns_test.labels).float()
    overall, per_class = class_accuracy(model, patterns_test.images, patterns_test.labels)
    assert overall == pytest.approx(float(correct.mean()))
    assert per_class == pytest.approx([float(correct[patterns_test.labels == c].mean()) for c in range(3)])
    as_numpy = patterns_test.images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), as `generate` returns
    assert class_accuracy(model, as_numpy, patterns_test.labels) == (overall, per_class)


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_noise(trained, patterns_test):
    model, _ = trained
    images = patterns_test.images
    same = fd_between(model, images, images)
    a, b = (fd_between(model, images, noisy(images, sigma)) for sigma in (25, 70))
    assert same < 1e-3 * a
    assert 0 < a < b


def test_kid_is_near_zero_for_the_same_set_larger_with_noise_and_works_for_tiny_sets(trained, patterns_test):
    model, _ = trained
    images = patterns_test.images
    same, _ = kid_between(model, images, images)
    different, std = kid_between(model, images, noisy(images, 70))
    assert abs(same) < different and std >= 0
    assert kid_between(model, images[:3], images[3:5]) == kid_between(model, images[:3], images[3:5])  # seeded
    with pytest.raises(GanError, match="at least 2"):
        kid_subset_size(1, 50)


def test_features_adapter_rejects_images_the_evaluator_was_not_trained_for(trained):
    model, _ = trained
    adapter = EvaluatorFeatures(model)
    assert adapter.num_features == 16
    adapter.train()
    assert not model.training  # batch statistics would make an image's features depend on its batch
    with pytest.raises(GanError, match="1-channel 28x28"):
        adapter(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(GanError, match="uint8"):
        fd_between(model, torch.zeros(4, 1, 28, 28), torch.zeros(4, 1, 28, 28))


def tiny_generator(**overrides) -> Generator:
    torch.manual_seed(0)
    config = dict(image_size=28, channels=1, num_classes=3, class_names=list(CLASSES), g_width=8, d_width=8,
                  latent_dim=16)
    return Generator(ModelConfig(**{**config, **overrides})).eval()


def test_check_evaluator_fits_rejects_other_sizes_channels_and_classes(trained):
    model, _ = trained
    check_evaluator_fits(model, tiny_generator().model_config)
    for overrides in (dict(image_size=32), dict(channels=3), dict(num_classes=4, class_names=list("abcd")),
                      dict(class_names=["cat", "dog", "bee"])):
        with pytest.raises(GanError, match="evaluator"):
            check_evaluator_fits(model, tiny_generator(**overrides).model_config)


def test_cas_of_a_tiny_generator_is_an_accuracy(trained, patterns_test):
    model, _ = trained
    score = cas(tiny_generator(), patterns_test, model.evaluator_config, per_class=4, epochs=1)
    count = len(patterns_test.labels)
    assert 0.0 <= score <= 1.0 and score * count == pytest.approx(round(score * count))  # right answers / count
    assert cas(tiny_generator(), patterns_test, model.evaluator_config, per_class=4, epochs=1) == score  # seeded


def test_generated_images_follow_the_training_datas_class_mix(trained, patterns_test):
    """Scored and two-sample-tested images come in the class mix of the training data (emoji: 60% people): a
    balanced sample of imbalanced data would be told from real images by its mix alone."""
    model, _ = trained
    imbalanced = stratified_subset(pattern_data(40, seed=5), [40, 10, 10])
    scores = score_generator(tiny_generator(), model, patterns_test, train=imbalanced, per_class=10)
    assert scores.class_counts == [20, 5, 5] and scores.num_samples == 30  # 30 in the ratio 4:1:1
    batches = list(generated_batches(tiny_generator(), per_class=[3, 0, 2], truncation=1.0))
    assert [(label, len(images)) for label, images in batches] == [(0, 3), (2, 2)]


# ----------------------------------------------------------------------------------------------- command line

def write_idx_dataset(folder: Path) -> Path:
    """An IDX folder (train: 3 x 80 patterns, enough for C2ST; test: 3 x 10) with a classes.txt naming the classes."""
    folder.mkdir(parents=True)
    for prefix, data in (("train", pattern_data(80, seed=2)), ("t10k", pattern_data(10, seed=3))):
        images = data.images[:, 0].numpy()  # (N, 28, 28)
        labels = data.labels.numpy().astype(np.uint8)
        for kind, array in (("images", images), ("labels", labels)):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            (folder / f"{prefix}-{kind}-idx{array.ndim}-ubyte").write_bytes(header + array.tobytes())
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return folder


@pytest.fixture(scope="module")
def cli_setup(tmp_path_factory):
    """A tiny IDX dataset, an evaluator trained on it by `train`, and a random tiny generator saved with save_model."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("cli")
    dataset = write_idx_dataset(root / "patterns")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "--dataset", str(dataset), "--output", str(root / "evaluator"), "--epochs", "8",
                     "--width", "4", "--feature-dim", "16", "--batch-size", "8", "--lr", "0.01"])
    assert code == 0
    model = save_model(tiny_generator(), root / "model")
    return dataset, root / "evaluator", model, printed.getvalue()


def test_train_command_prints_accuracy_and_writes_a_small_evaluator_folder(cli_setup):
    _, evaluator_dir, _, printed = cli_setup
    assert sorted(p.name for p in evaluator_dir.iterdir()) == sorted([CONFIG_NAME, WEIGHTS_NAME])
    config = load_evaluator(evaluator_dir).evaluator_config
    assert config.class_names == list(CLASSES) and config.test_accuracy > 0.9
    assert f"test accuracy {config.test_accuracy:.4f} on 30 test images; evaluator written to {evaluator_dir}" in printed


def test_score_command_prints_json_and_writes_metrics(cli_setup):
    dataset, evaluator_dir, model, _ = cli_setup
    result = subprocess.run(
        [sys.executable, "-m", "gan.evaluate", "score", "--model", str(model), "--dataset", str(dataset),
         "--evaluator", str(evaluator_dir), "--per-class", "6", "--truncation", "0.7", "--cas", "--cas-epochs", "1",
         "--c2st-per-class", "70", "--threads", "1", "--write"],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = json.loads(result.stdout)
    assert SCORE_KEYS | {"cas", "c2st"} <= set(scores)
    # An untrained generator's noise is told from the patterns at once; 210 images a side were compared.
    assert scores["c2st"]["accuracy"] > 0.9 and scores["c2st"]["images_per_set"] == 210
    # By default three judges of seeds 0-2 each train longer while their validation split gains, as a determined
    # outside judge would, and their mean is the figure.
    c2st_scores = scores["c2st"]
    assert c2st_scores["settings"]["budgets"] == [20, 40, 80, 160] and c2st_scores["settings"]["judges"] == 3
    judges = c2st_scores["judges"]
    assert [judge["seed"] for judge in judges] == [0, 1, 2]
    assert all(judge["epochs_to_plateau"] in (20, 40, 80, 160) and list(judge["validation_curve"])[0] == "20"
               for judge in judges)
    assert c2st_scores["accuracy"] == pytest.approx(sum(judge["accuracy"] for judge in judges) / 3)
    assert scores["num_samples"] == 18 and scores["truncation"] == 0.7 and scores["reference_split"] == "test"
    assert set(scores["class_accuracy"]["per_class"]) == set(CLASSES)
    for accuracy, images in ((scores["class_accuracy"]["overall"], 18), (scores["cas"], 30)):  # right answers / images
        assert 0 <= accuracy <= 1 and accuracy * images == pytest.approx(round(accuracy * images))
    assert scores["fd"] > 0 and scores["fd_train_test"] > 0
    assert scores["fd_ratio"] == pytest.approx(scores["fd"] / scores["fd_train_test"])
    assert scores["evaluator_test_accuracy"] > 0.9
    pr, authenticity = scores["precision_recall"], scores["authenticity"]
    assert pr["k"] == 3 and pr["images_per_set"] == 18  # the smallest set: 18 generated (240 train, 30 test)
    # Untrained noise lies outside the patterns' manifold; real test images lie inside it.
    assert pr["precision"] < 0.2 < 0.6 < pr["reference_precision"] and pr["reference_recall"] > 0.6
    assert (authenticity["generated_images"], authenticity["reference_images"], authenticity["train_images"]) == (
        18, 30, 240)
    assert 0 <= authenticity["authentic"] <= 1 and 0 <= authenticity["reference_authentic"] <= 1
    assert json.loads((model / "metrics.json").read_text()) == scores
    card = (model / "README.md").read_text()  # the model card was regenerated with the new figures
    assert f"{scores['class_accuracy']['overall']:.4f}" in card and "## Metrics" in card and "C2ST" in card
    assert "3 fresh small CNNs (seeds 0, 1, 2" in card and f"**{c2st_scores['accuracy']:.3f}** on average" in card
    assert "the next tried while the last gained at least 0.01" in card
    assert f"| Precision of real test images (reference) | {pr['reference_precision']:.4f} |" in card


def test_memorization_command_adds_its_figures_to_an_existing_metrics_json(cli_setup, tmp_path, capsys):
    import shutil

    dataset, evaluator_dir, model, _ = cli_setup
    folder = tmp_path / "model"
    shutil.copytree(model, folder)
    existing = {"num_samples": 18, "per_class": 6, "truncation": 1.0, "fd": 0.125,
                "class_accuracy": {"overall": 0.5, "per_class": {}}}
    (folder / "metrics.json").write_text(json.dumps(existing))
    common = ["memorization", "--model", str(folder), "--dataset", str(dataset), "--evaluator", str(evaluator_dir),
              "--threads", "1", "--write"]
    code, errors = run_main(common + ["--per-class", "5"], capsys)
    assert code == 2 and len(errors) == 1 and "same --per-class" in errors[0]
    assert main(common + ["--per-class", "6"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((folder / "metrics.json").read_text())
    assert written["fd"] == 0.125 and written["precision_recall"] == printed["precision_recall"]
    assert written["authenticity"] == printed["authenticity"] and "memorization_date" in written
    card = (folder / "README.md").read_text()
    reference = printed["authenticity"]["reference_authentic"]
    assert f"| Authenticity of real test images (reference) | {reference:.4f} |" in card and "Alaa et al. 2022" in card
    (folder / "metrics.json").unlink()
    code, errors = run_main(common + ["--per-class", "6"], capsys)
    assert code == 2 and len(errors) == 1 and "score the model first" in errors[0]


def test_score_refuses_a_two_sample_test_on_too_few_images_and_can_skip_it(cli_setup, capsys):
    dataset, evaluator_dir, model, _ = cli_setup
    common = ["score", "--model", str(model), "--dataset", str(dataset), "--evaluator", str(evaluator_dir),
              "--per-class", "4", "--threads", "1"]
    code, errors = run_main(common + ["--c2st-per-class", "20"], capsys)
    assert code == 2 and len(errors) == 1 and "at least 200 images" in errors[0]
    assert main(common + ["--no-c2st"]) == 0
    assert "c2st" not in json.loads(capsys.readouterr().out)


def run_main(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    return code, [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_score_rejects_an_evaluator_for_another_image_size(cli_setup, tmp_path, capsys):
    dataset, _, model, _ = cli_setup
    other = save_evaluator(Evaluator(EvaluatorConfig(image_size=32, num_classes=3, **TINY_EVALUATOR)), tmp_path / "ev")
    code, errors = run_main(["score", "--model", str(model), "--dataset", str(dataset), "--evaluator", str(other),
                             "--per-class", "2"], capsys)
    assert code == 2 and len(errors) == 1 and "32 px" in errors[0] and "28 px" in errors[0]


@pytest.mark.parametrize("make_path", [lambda p: p, lambda p: p / "nothing", lambda p: p / "file.txt"])
def test_score_rejects_a_model_path_that_is_not_a_model(cli_setup, tmp_path, capsys, make_path):
    dataset, evaluator_dir, _, _ = cli_setup
    (tmp_path / "file.txt").write_text("hello")
    code, errors = run_main(["score", "--model", str(make_path(tmp_path)), "--dataset", str(dataset),
                             "--evaluator", str(evaluator_dir)], capsys)
    assert code == 2 and len(errors) == 1 and "model" in errors[0]


def test_score_without_an_evaluator_says_how_to_train_one(cli_setup, tmp_path, capsys, monkeypatch):
    dataset, _, model, _ = cli_setup
    monkeypatch.chdir(tmp_path)
    code, errors = run_main(["score", "--model", str(model), "--dataset", str(dataset)], capsys)
    assert code == 2 and len(errors) == 1 and "evaluators/patterns" in errors[0] and "gan.evaluate train" in errors[0]


def test_score_rejects_bad_flag_values(cli_setup, capsys):
    dataset, evaluator_dir, model, _ = cli_setup
    common = ["score", "--model", str(model), "--dataset", str(dataset), "--evaluator", str(evaluator_dir)]
    for flags, words in ((["--per-class", "0"], "--per-class"), (["--truncation", "1.5"], "truncation"),
                         (["--c2st-per-class", "0"], "--c2st-per-class"), (["--c2st-judges", "0"], "--c2st-judges")):
        code, errors = run_main(common + flags, capsys)
        assert code == 2 and len(errors) == 1 and words in errors[0]


def test_inception_without_torch_fidelity_is_one_clear_error(cli_setup, capsys):
    try:
        import torch_fidelity  # noqa: F401
        pytest.skip("torch-fidelity is installed, so this would download Inception weights")
    except ImportError:
        pass
    dataset, evaluator_dir, model, _ = cli_setup
    code, errors = run_main(["score", "--model", str(model), "--dataset", str(dataset), "--evaluator",
                             str(evaluator_dir), "--per-class", "2", "--inception"], capsys)
    assert code == 2 and len(errors) == 1 and "torch-fidelity" in errors[0]


def test_the_cards_c2st_note_says_how_each_judge_trained():
    from gan.sharing.card import c2st_note

    base = {"interval_95": [0.70, 0.73], "images_per_set": 5000, "tested_images": 5000,
            "generated_taken_for_real": 0.3, "settings": {"epochs": 20}}
    fixed = c2st_note({**base, "accuracy": 0.715})[0]
    assert "a fresh small CNN (20 epochs)" in fixed and "scores 0.715" in fixed
    judge = {"accuracy": 0.722, "validation_curve": {"20": 0.552, "40": 0.635, "80": 0.723}, "epochs_to_plateau": 80}
    single = c2st_note({**base, **judge})[0]
    assert "runs of 20 / 40 / 80 epochs" in single and "(0.552 / 0.635 / 0.723); the 80-epoch run is scored" in single
    judges = [{**judge, "seed": 0}, {**judge, "seed": 1, "accuracy": 0.824}]
    several = c2st_note({**base, "accuracy": 0.773, "judges": judges})[0]
    assert "2 fresh small CNNs (seeds 0, 1:" in several and "they score 0.722, 0.824: **0.773** on average" in several
    assert "seed 1: 0.552 / 0.635 / 0.723 after 20 / 40 / 80 epochs, 80 scored" in several
    assert c2st_note({}) == []
