"""The models shipped in models/ (Fashion-MNIST, the default; emoji in colour; MNIST digits): they load, generate
images their dataset's evaluator recognises, and their files agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from gan.sharing.card import data_licence
from gan.quality.evaluator import load_evaluator, predict
from gan.model_files import load_real_pool
from gan.models import load_discriminator, load_generator
from gan.quiz.tells import tell_accuracies
from gan.sampling import generate

REPO = Path(__file__).resolve().parents[1]
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
EMOJI = ["Activities", "Animals & Nature", "Flags", "Food & Drink", "Objects", "People & Body", "Smileys & Emotion",
         "Symbols", "Travel & Places"]
SHIPPED = {  # folder name: (class names, evaluator folder, Hub id of the data in the card, image size, channels)
    "fashion-mnist": (FASHION, "fashion-mnist", "zalando-datasets/fashion_mnist", 28, 1),
    "mnist": ([str(d) for d in range(10)], "mnist", "ylecun/mnist", 28, 1),
    "emoji": (EMOJI, "emoji", None, 32, 3),  # made from npm packages by scripts/emoji_from_npm.py: no Hub id
}
shipped = pytest.mark.parametrize("name", sorted(SHIPPED))


@shipped
def test_it_loads_and_generates_images_the_evaluator_recognises(name):
    class_names, evaluator_name, _, size, channels = SHIPPED[name]
    generator = load_generator(REPO / "models" / name)
    assert generator.model_config.class_names == class_names and generator.model_config.image_size == size
    count = len(class_names)
    classes = [c for c in range(count) for _ in range(10)]
    images = generate(generator, classes, list(range(10)) * count)  # 10 per class, seeds 0-9
    assert images.shape == (10 * count, size, size, channels) and images.dtype == np.uint8
    evaluator = load_evaluator(REPO / "evaluators" / evaluator_name)
    predicted = predict(evaluator, torch.from_numpy(images).permute(0, 3, 1, 2))
    # A broken or wrong weights file scores about 1 / classes; emoji's evaluator itself is right on 82% of real ones.
    assert (predicted.numpy() == np.array(classes)).mean() > (0.75 if channels == 1 else 0.5)


@shipped
def test_its_discriminator_scores_held_out_real_images_above_its_generators(name):
    model = REPO / "models" / name
    discriminator, generator = load_discriminator(model), load_generator(model)
    images, labels = load_real_pool(model)  # test images: the discriminator never saw them either
    real = images.permute(0, 3, 1, 2).float() / 127.5 - 1
    fake = torch.from_numpy(generate(generator, labels.tolist(), list(range(len(labels))))).permute(0, 3, 1, 2)
    with torch.no_grad():
        real_scores, fake_scores = discriminator(real, labels), discriminator(fake.float() / 127.5 - 1, labels)
    # A discriminator that learnt nothing ranks a real image above a generated one half the time; a good generator
    # keeps a trained one near that too, so the bar is a ranking clearly above chance, not a margin of scores.
    ranked_right = (real_scores[:, None] > fake_scores[None, :]).float().mean()
    assert ranked_right > 0.55, float(ranked_right)


@shipped
def test_the_real_pool_is_held_out_and_balanced(name):
    class_names, _, _, size, channels = SHIPPED[name]
    model = REPO / "models" / name
    images, labels = load_real_pool(model)
    assert images.shape[1:] == (size, size, channels) and len(images) == 500
    counts = torch.bincount(labels, minlength=len(class_names)).tolist()
    if name == "emoji":  # balanced as far as the held-out split allows: every class but People & Body goes in whole
        assert counts == [18, 32, 54, 28, 54, 190, 34, 46, 44]
    else:
        assert counts == [50] * 10
    from safetensors import safe_open

    with safe_open(str(model / "real_pool.safetensors"), framework="pt") as handle:
        assert handle.metadata()["split"] == "test"


@shipped
def test_its_card_and_metrics_describe_these_weights(name):
    model = REPO / "models" / name
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["num_samples"] >= 10000 and metrics["truncation"] == 1.0
    card = ModelCard.load(model / "README.md")
    hub_id = SHIPPED[name][2]
    assert "gan" in card.data.tags and card.data.datasets == ([hub_id] if hub_id else None)
    assert f"{metrics['class_accuracy']['overall']:.4f}" in card.text
    assert data_licence(hub_id or name) in card.text  # the data's licence and credit
    sizes = sum(path.stat().st_size for path in model.rglob("*") if path.is_file())
    assert sizes < 13_000_000  # a few MB (the 32 px colour pair is the largest): it ships inside the repository
    assert not [p for p in model.rglob("*") if p.suffix in (".bin", ".pt", ".pkl", ".pth", ".ckpt")]


# Shipped models that do not meet the pixel-tell bar yet (issue 13, figures in BENCHMARKS.md). Strict: once a
# retrained model meets it, the test fails until its name leaves this set.
# Fashion-MNIST: the count of 255s and the darkest pixels at ~0.57 (within issue 28's 0.65, tested below); MNIST:
# histogram bins 128-191 at ~0.58 since --white-plateau (was the count of 255s, 0.92); emoji: a channel's darkest value
# (green_min 0.67 / 0.73): its fakes rarely as dark as the real outlines.
PIXEL_TELLS_OPEN: set[str] = {"fashion-mnist", "mnist", "emoji"}
# Issue 28's bar for the quiz's pixel tells (best statistic, single and pair rounds), and the models that meet it.
ISSUE_28_TELL_BAR = 0.65
WITHIN_ISSUE_28_TELL_BAR = ["fashion-mnist", "mnist"]


def pixel_tells(name: str, above: float) -> dict[str, float]:
    """The statistics whose held-out rule beats `above` over 1,000 simulated quiz rounds (see gan/quiz/tells.py)."""
    model = REPO / "models" / name
    images, labels = load_real_pool(model)
    torch.set_num_threads(1)
    accuracies = tell_accuracies(images.numpy(), labels.numpy(), load_generator(model), rounds=1000)
    return {f"{stat} ({mode})": round(value, 3) for stat, modes in accuracies.items() for mode, value in modes.items()
            if value > above}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(
    strict=True, reason="issue 13: a pixel statistic still tells this model's fakes (see BENCHMARKS.md)"))
    if n in PIXEL_TELLS_OPEN else n for n in sorted(SHIPPED)])
def test_no_pixel_statistic_tells_its_fakes_from_the_quiz_real_images(name):
    """A script reading one statistic (brightest pixel, count of pure whites, mean, a histogram bin...) must not
    beat a coin by more than 5 points over 1,000 quiz rounds, single or pair (held-out rounds; see quiz/tells)."""
    tells = pixel_tells(name, above=0.55)
    assert not tells, f"pixel statistics that tell real from fake: {tells}"


@pytest.mark.parametrize("name", WITHIN_ISSUE_28_TELL_BAR)
def test_no_pixel_statistic_beats_the_realism_issues_bar(name):
    tells = pixel_tells(name, above=ISSUE_28_TELL_BAR)
    assert not tells, f"pixel statistics that tell real from fake: {tells}"


@shipped
def test_its_metrics_include_a_two_sample_test(name):
    c2st = json.loads((REPO / "models" / name / "metrics.json").read_text())["c2st"]
    assert c2st["images_per_set"] >= 5000 and c2st["interval_95"][0] <= c2st["accuracy"] <= c2st["interval_95"][1]
