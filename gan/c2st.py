"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017): can a fresh classifier tell generated from real?

A small CNN (the evaluator's architecture with two outputs, trained from scratch with a fixed seed) learns "real or
generated" on one half of a balanced set of real and generated images and is scored on the other half. Its held-out
accuracy is the statistic: 0.5 means the two sets are indistinguishable to it, 1.0 that every image gives itself
away. Unlike FD, which compares two Gaussians fitted to a fixed feature space, the classifier learns whatever cue
separates the sets (pixel range, texture, blur, artefacts), so it catches what a feature space chosen in advance
misses. Both sets are uint8, so both went through the same quantization.

The 95% interval is Wilson's for a binomial proportion over the held-out images; the p-value is the one-sided
binomial test of "accuracy > 0.5", the test's null hypothesis being that the sets come from one distribution.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import numpy as np
import torch

from .data import ImageData
from .errors import GanError
from .evaluator import EvaluatorConfig, as_image_tensor, evaluator_outputs, train_evaluator

MIN_IMAGES = 200  # per set: below this the held-out accuracy's interval is too wide to tell anything (+-0.07)
Z_95 = 1.959964  # two-sided 95% quantile of the standard normal


@dataclasses.dataclass(frozen=True)
class C2stSettings:
    """How the two-sample classifier is built and trained; fixed, so scores of different models compare."""

    width: int = 16  # channels of its first conv block (the evaluator's default)
    feature_dim: int = 64  # size of its penultimate layer
    epochs: int = 20  # training epochs over the training half (10 left it short of what it could find)
    batch_size: int = 64  # images per step
    lr: float = 2e-3  # peak AdamW learning rate (one-cycle schedule)
    train_fraction: float = 0.5  # share of each set it trains on; it is scored on the rest
    seed: int = 0  # split, weight init, data order and augmentation


def c2st(real: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor, *,
         settings: C2stSettings = C2stSettings(), log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Held-out accuracy of a fresh real-vs-generated classifier, with its 95% interval and p-value.

    `real` and `generated` are uint8 images ((N, C, H, W) tensors or (N, H, W, C) arrays) of one size; the larger
    set is cut to the smaller one's size so that 0.5 is the chance level."""
    real, generated = as_image_tensor(real), as_image_tensor(generated)
    check_sets(real, generated)
    count = min(len(real), len(generated))
    split = torch.Generator().manual_seed(settings.seed)
    real = real[torch.randperm(len(real), generator=split)[:count]]
    generated = generated[torch.randperm(len(generated), generator=split)[:count]]
    n_train = int(round(count * settings.train_fraction))
    if n_train < 2 or count - n_train < 2:
        raise GanError(f"train_fraction {settings.train_fraction} leaves no images to train or test on")
    train = _labelled(real[:n_train], generated[:n_train])
    test = _labelled(real[n_train:], generated[n_train:])
    _, channels, size, _ = real.shape
    config = EvaluatorConfig(image_size=size, channels=channels, num_classes=2, class_names=["real", "generated"],
                             width=settings.width, feature_dim=settings.feature_dim, dataset="c2st")
    model, accuracy = train_evaluator(train, test, config, epochs=settings.epochs, batch_size=settings.batch_size,
                                      lr=settings.lr, seed=settings.seed, device="cpu", log=log)
    # Held-out accuracy on generated images alone says which way the errors go (fakes taken for real, or not).
    fake_as_real = float((evaluator_outputs(model, test.images[test.labels == 1]).argmax(1) == 0).float().mean())
    tested = len(test.labels)
    low, high = wilson_interval(accuracy, tested)
    return {"accuracy": accuracy, "interval_95": [low, high], "p_value": binomial_p_value(accuracy, tested),
            "generated_taken_for_real": fake_as_real, "images_per_set": count, "tested_images": tested,
            "settings": dataclasses.asdict(settings)}


def check_sets(real: torch.Tensor, generated: torch.Tensor) -> None:
    """Raise GanError unless both sets have the same image shape and enough images for the test to mean anything."""
    if real.shape[1:] != generated.shape[1:]:
        raise GanError(f"C2ST compares images of one shape, got real {tuple(real.shape[1:])} and generated "
                       f"{tuple(generated.shape[1:])} (channels, height, width)")
    smallest = min(len(real), len(generated))
    if smallest < MIN_IMAGES:
        raise GanError(f"C2ST needs at least {MIN_IMAGES} images in each set, got {smallest}; "
                       "its accuracy on fewer is noise")


def _labelled(real: torch.Tensor, generated: torch.Tensor) -> ImageData:
    """Real images labelled 0 and generated ones 1, as a dataset the evaluator trainer takes."""
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(generated))]).long()
    return ImageData(torch.cat([real, generated]), labels, ["real", "generated"], "c2st")


def wilson_interval(proportion: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion observed over n trials."""
    centre = (proportion + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(proportion * (1 - proportion) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def binomial_p_value(proportion: float, n: int) -> float:
    """P(accuracy >= the observed one) for a classifier that guesses (p = 0.5): normal approximation with
    continuity correction, accurate at the hundreds of images C2ST needs."""
    successes = round(proportion * n)
    z = (successes - 0.5 - n / 2) / math.sqrt(n / 4)
    return 0.5 * math.erfc(z / math.sqrt(2))
