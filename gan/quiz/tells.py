"""Pixel tells: could a script that reads one pixel statistic beat the quiz?

If real and generated images differ in a simple statistic (brightest pixel, count of pure white pixels, mean
brightness, a histogram bin), a three-line rule answers the quiz better than any person looking at the garment, and
the quiz measures nothing. This module plays simulated rounds as the quiz deals them (a class uniformly over the
real pool's classes, then a held-out real image of that class or a fresh fake of it) and scores, for each statistic,
the best rule of the form "real if the statistic is above (or below) t": t and the direction are fitted on one set
of simulated rounds and the accuracy is measured on a second, fresh set, so a lucky threshold does not count. For
pair rounds the rule is "the image with the higher (or lower) statistic is the real one".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from ..sampling import MAX_SEED, generate

HISTOGRAM_BINS = 8  # equal-width bins of the 0-255 range


CHANNEL_NAMES = ("red", "green", "blue")


def pixel_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image statistics (N,) of uint8 images (N, H, W, C) that a script could read off a quiz image: over all
    values, and for colour images over each channel too (a model whose reds never saturate is told by its reds)."""
    stats = value_statistics(images.reshape(len(images), -1))
    if images.ndim == 4 and images.shape[3] == 3:
        for channel, name in enumerate(CHANNEL_NAMES):
            per_channel = value_statistics(images[..., channel].reshape(len(images), -1))
            stats.update({f"{name}_{key}": values for key, values in per_channel.items()})
    return stats


def value_statistics(values: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics (N,) of each row of uint8 values (N, V): extremes, moments, saturated counts, histogram bins."""
    flat = values.astype(np.int64)
    stats = {
        "max": flat.max(axis=1),
        "min": flat.min(axis=1),
        "mean": flat.mean(axis=1),
        "std": flat.std(axis=1),
        "white_pixels": (flat == 255).sum(axis=1),
        "black_pixels": (flat == 0).sum(axis=1),
    }
    bins = np.minimum(flat * HISTOGRAM_BINS // 256, HISTOGRAM_BINS - 1)
    for b in range(HISTOGRAM_BINS):
        stats[f"bin_{b * 256 // HISTOGRAM_BINS}_{(b + 1) * 256 // HISTOGRAM_BINS - 1}"] = (bins == b).sum(axis=1)
    return stats


def deal_rounds(pool: np.ndarray, pool_labels: np.ndarray, generator: nn.Module, rounds: int, *, seed: int,
                truncation: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real and fake images of `rounds` rounds dealt as the quiz deals them: (real (R, H, W, C), fake (R, H, W, C),
    is_real (R,) bool for single rounds, where each round shows its real image if True, else its fake)."""
    rng = np.random.RandomState(seed)
    classes = np.unique(pool_labels)
    round_classes = rng.choice(classes, size=rounds)
    real_index = np.array([rng.choice(np.flatnonzero(pool_labels == c)) for c in round_classes])
    fake_seeds = rng.randint(0, MAX_SEED, size=rounds, dtype=np.int64).tolist()
    fake = generate(generator, torch.as_tensor(round_classes, dtype=torch.long), fake_seeds, truncation,
                    batch_size=250)
    return pool[real_index], fake, rng.random_sample(rounds) < 0.5


def best_rule(values: np.ndarray, is_real: np.ndarray) -> tuple[float, int]:
    """Threshold t and direction d (+1: real if value > t; -1: real if value < t) with the highest accuracy."""
    distinct = np.unique(values).astype(np.float64)
    # Midpoints between neighbouring values, and one threshold beyond each end (all real / all fake).
    candidates = np.concatenate([[distinct[0] - 1], (distinct[1:] + distinct[:-1]) / 2, [distinct[-1] + 1]])
    best = (0.0, 0.0, 1)
    for t in candidates:
        above = values > t
        for direction, says_real in ((1, above), (-1, ~above)):
            accuracy = float((says_real == is_real).mean())
            if accuracy > best[0]:
                best = (accuracy, float(t), direction)
    return best[1], best[2]


def tell_accuracies(pool: np.ndarray, pool_labels: np.ndarray, generator: nn.Module, *, rounds: int = 1000,
                    seed: int = 0, truncation: float = 1.0,
                    statistics: Callable[[np.ndarray], dict[str, np.ndarray]] = pixel_statistics
                    ) -> dict[str, dict[str, float]]:
    """For every statistic: held-out accuracy of its best single-round rule and of its pair-round rule, each fitted
    on `rounds` simulated rounds and measured on `rounds` fresh ones (0.5 = no better than a coin)."""
    fit_real, fit_fake, fit_is_real = deal_rounds(pool, pool_labels, generator, rounds, seed=seed,
                                                  truncation=truncation)
    test_real, test_fake, test_is_real = deal_rounds(pool, pool_labels, generator, rounds, seed=seed + 1,
                                                     truncation=truncation)
    fit_shown = np.where(fit_is_real[:, None, None, None], fit_real, fit_fake)
    test_shown = np.where(test_is_real[:, None, None, None], test_real, test_fake)
    fit = {k: statistics(x) for k, x in (("shown", fit_shown), ("real", fit_real), ("fake", fit_fake))}
    test = {k: statistics(x) for k, x in (("shown", test_shown), ("real", test_real), ("fake", test_fake))}
    results = {}
    for name in fit["shown"]:
        threshold, direction = best_rule(fit["shown"][name], fit_is_real)
        says_real = test["shown"][name] > threshold if direction > 0 else test["shown"][name] < threshold
        single = float((says_real == test_is_real).mean())
        # Pairs: pick the image whose statistic is higher (or lower, whichever the fitting rounds favour); ties are
        # a coin toss, worth half a round.
        fit_diff = fit["real"][name] - fit["fake"][name]
        sign = 1 if (fit_diff > 0).mean() >= (fit_diff < 0).mean() else -1
        diff = sign * (test["real"][name] - test["fake"][name])
        pair = float(((diff > 0) + 0.5 * (diff == 0)).mean())
        results[name] = {"single": single, "pair": pair}
    return results
