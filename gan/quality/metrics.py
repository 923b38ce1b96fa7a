"""How good a class-conditional generator is, measured with an evaluator trained on the real data.

- class accuracy: share of generated images the evaluator assigns to the class they were asked for;
- FD: Fréchet distance between evaluator features of generated and real test images (FID with the evaluator in
  place of Inception), beside the same distance for real train vs real test images: the floor a perfect generator
  would reach at this sample size;
- KID: kernel (MMD) distance of the same features, unbiased, so it is comparable across sample sizes;
- CAS (Ravuri & Vinyals 2019): accuracy on real test images of a classifier trained on generated images only;
- precision and recall (Kynkäänniemi et al. 2019): the share of generated images inside the real images' k-NN
  manifold (k=3, evaluator features), and the share of real images inside the generated images' one;
- authenticity (after Alaa et al. 2022): the share of generated images farther from their nearest training image
  than that training image is from its own nearest other training image (a sample as close or closer sits inside
  the empty gap around one training image: memorised, or nearly);
each of the last three beside its real-vs-real reference: real test images scored in place of generated ones;
- C2ST (Lopez-Paz & Oquab 2017): held-out accuracy of a fresh classifier trained to tell generated from real images
  (0.5: it cannot), with its 95% interval and p-value.
FD and KID are torchmetrics' FrechetInceptionDistance and KernelInceptionDistance with the evaluator as feature
extractor (imported when first used, so opening an evaluator needs no torchmetrics). Images travel as uint8
(N, C, H, W) tensors; NumPy (N, H, W, C) arrays from `generate` are converted.
Scored images are addressed like every image of this project: class c, seeds 0..N-1, truncation psi.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import nn

from ..data import ImageData, balanced_subset, class_counts, portable_source, stratified_subset, to_model_range
from ..errors import GanError
from ..sampling import generate
from ..version import __version__
from .evaluator import (Evaluator, EvaluatorConfig, as_image_tensor, check_images_fit, evaluator_outputs,
                        predict, train_evaluator)
from .intervals import binomial_p_value, wilson_interval
from .knn import feature_vectors, nearest, squared_distance_blocks, squared_norms
from .scores import Scores

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

CAS_SEED_OFFSET = 2**31  # CAS trains on seeds 2**31.. so its images are never the ones scored (seeds 0..N-1)
KID_SUBSETS = 100  # random subsets KID averages over (torchmetrics' default)
KID_MAX_SUBSET_SIZE = 1000  # images per KID subset, fewer when fewer images are scored
FLOOR_SEED = 0  # picks the train images that FD's floor compares with the test split
MANIFOLD_K = 3  # k of the k-NN manifolds of precision and recall (Kynkäänniemi et al.'s choice)

Images = np.ndarray | torch.Tensor  # uint8 (N, H, W, C) arrays or uint8 (N, C, H, W) tensors


class EvaluatorFeatures(nn.Module):
    """An evaluator as a torchmetrics feature extractor: uint8 images (B, C, H, W) -> features (B, feature_dim)."""

    def __init__(self, evaluator: Evaluator):
        super().__init__()
        self.evaluator = evaluator.eval()
        # torchmetrics reads this instead of probing the module with a random 3x299x299 image it could not take.
        self.num_features = evaluator.evaluator_config.feature_dim

    def train(self, mode: bool = True) -> "EvaluatorFeatures":
        # Features must not depend on the batch: batch norm stays on its running statistics whatever a caller asks.
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # uint8 in, as torchmetrics passes it with normalize=False; grey stays 1-channel, as the evaluator was trained.
        check_images_fit(images, self.evaluator.evaluator_config)
        device = next(self.evaluator.parameters()).device
        return self.evaluator.features(to_model_range(images).to(device)).float()  # (B, feature_dim)


def frechet_metric(evaluator: Evaluator) -> FrechetInceptionDistance:
    """A torchmetrics FD over evaluator features that keeps its real images when reset (to score many fake sets)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=EvaluatorFeatures(evaluator), reset_real_features=False)


def kid_metric(evaluator: Evaluator, subset_size: int) -> KernelInceptionDistance:
    """A torchmetrics KID over evaluator features with subsets of subset_size images."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")  # we know; it is small
        return KernelInceptionDistance(feature=EvaluatorFeatures(evaluator), subsets=KID_SUBSETS,
                                       subset_size=subset_size, reset_real_features=False)


def inception_metric() -> FrechetInceptionDistance:
    """torchmetrics' standard Inception-v3 FID; needs torch-fidelity and, once, internet for its weights."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    try:
        return FrechetInceptionDistance(feature=2048, reset_real_features=False)
    except ModuleNotFoundError:
        raise GanError("Inception FD needs the torch-fidelity package: pip install torch-fidelity") from None
    except Exception as error:  # noqa: BLE001 - download failures come as URLError, OSError, RuntimeError...
        raise GanError(f"could not fetch the Inception weights ({type(error).__name__}: {error}); "
                       "Inception FD needs internet the first time") from None


def add_images(metric: FrechetInceptionDistance | KernelInceptionDistance, images: Images, *, real: bool,
               batch_size: int = 500) -> None:
    """Feed uint8 images to a torchmetrics FD/KID in batches."""
    images = as_image_tensor(images)
    if not metric.used_custom_model and images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)  # Inception takes RGB only; grey is the same value in each channel
    for first in range(0, len(images), batch_size):
        metric.update(images[first : first + batch_size], real=real)


def compute_fd(metric: FrechetInceptionDistance) -> float:
    """The FD of what a metric holds; never negative."""
    # The matrix square root's rounding can dip a hair below zero for (nearly) identical sets.
    return max(0.0, float(metric.compute()))


def compute_kid(metric: KernelInceptionDistance, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of KID over random subsets, the subsets drawn from `seed` so a score is reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def kid_subset_size(*counts: int) -> int:
    """KID subset size for sets of these sizes: at most 1000, at most the smallest set."""
    smallest = min(counts)
    if smallest < 2:
        raise GanError(f"KID needs at least 2 images in each set, got {smallest}")
    return min(KID_MAX_SUBSET_SIZE, smallest)


def fd_between(evaluator: Evaluator, images_a: Images, images_b: Images) -> float:
    """Fréchet distance between evaluator features of two image sets (each at least 2 images)."""
    metric = frechet_metric(evaluator)
    add_images(metric, images_a, real=True)
    add_images(metric, images_b, real=False)
    return compute_fd(metric)


def kid_between(evaluator: Evaluator, images_a: Images, images_b: Images, *, seed: int = 0) -> tuple[float, float]:
    """(mean, std) KID between evaluator features of two image sets."""
    metric = kid_metric(evaluator, kid_subset_size(len(images_a), len(images_b)))
    add_images(metric, images_a, real=True)
    add_images(metric, images_b, real=False)
    return compute_kid(metric, seed)


def class_accuracy(evaluator: Evaluator, images: Images, labels: Sequence[int] | torch.Tensor
                   ) -> tuple[float, list[float | None]]:
    """Share of images the evaluator assigns to their label: overall, and per class (None for an absent class)."""
    labels = torch.as_tensor(labels, dtype=torch.int64)
    correct = (predict(evaluator, images) == labels).float()  # (N,)
    per_class = [float(correct[labels == c].mean()) if (labels == c).any() else None
                 for c in range(evaluator.evaluator_config.num_classes)]
    return float(correct.mean()) if len(correct) else float("nan"), per_class


def check_evaluator_fits(evaluator: Evaluator, model_config: Any, *, evaluator_source: str = "the evaluator") -> None:
    """Raise GanError unless the evaluator classifies images of the generator's size, channels and classes."""
    e = evaluator.evaluator_config
    g = model_config
    if (e.image_size, e.channels, e.num_classes) != (g.image_size, g.channels, g.num_classes):
        raise GanError(f"{evaluator_source} classifies {e.image_size} px {e.channels}-channel images into "
                       f"{e.num_classes} classes, but the generator makes {g.image_size} px {g.channels}-channel "
                       f"images of {g.num_classes} classes; use an evaluator trained on the generator's dataset")
    numbered = [str(i) for i in range(e.num_classes)]
    if numbered not in (e.class_names, list(g.class_names)) and e.class_names != list(g.class_names):
        raise GanError(f"{evaluator_source} knows classes {e.class_names[:3]}... but the generator makes "
                       f"{list(g.class_names)[:3]}...; use an evaluator trained on the generator's dataset")


def generated_batches(generator: nn.Module, *, per_class: int | Sequence[int], truncation: float,
                      batch_size: int = 500, first_seed: int = 0):
    """Yield (class, uint8 images (B, C, H, W)) for every class c, seeds first_seed.. first_seed+n_c-1, where n_c
    is per_class, or per_class[c] for a list of counts (class_counts: the data's class mix)."""
    num_classes = generator.model_config.num_classes
    counts = [per_class] * num_classes if isinstance(per_class, int) else list(per_class)
    for label, count in enumerate(counts):
        for first in range(first_seed, first_seed + count, batch_size):
            seeds = list(range(first, min(first + batch_size, first_seed + count)))
            yield label, as_image_tensor(generate(generator, [label] * len(seeds), seeds, truncation))


def score_generator(generator: nn.Module, evaluator: Evaluator, reference: ImageData, *,
                    train: ImageData | None = None, per_class: int = 1000, truncation: float = 1.0,
                    inception: bool = False, memorization: bool = False,
                    log: Callable[[str], None] | None = None) -> Scores:
    """Class accuracy, FD, KID (and FD's train-vs-test floor when `train` is given) of a generator's images:
    per_class x classes images in the class mix of `train` (of `reference` without it; see class_counts), seeds
    0..n_c-1 of each class c, at the given truncation, against `reference`.
    memorization (needs `train`): also precision, recall and authenticity (memorization_scores)."""
    log = log or (lambda message: None)
    _check_scoring(generator, evaluator, reference, train=train, per_class=per_class, memorization=memorization)
    num_classes = generator.model_config.num_classes
    num_samples = per_class * num_classes
    counts = class_counts((train if train is not None else reference).labels, num_classes, num_samples)
    fd_metrics = {"fd": frechet_metric(evaluator), **({"inception_fd": inception_metric()} if inception else {})}
    subset_size = kid_subset_size(num_samples, len(reference.labels))
    kid = kid_metric(evaluator, subset_size)
    log(f"features of {len(reference.labels)} reference images")
    for metric in (*fd_metrics.values(), kid):
        add_images(metric, reference.images, real=True)

    log(f"generating and scoring {num_samples} images (classes as in the data: {counts}, truncation {truncation})")
    generated: list[tuple[int, torch.Tensor]] | None = [] if memorization else None
    accuracy = _score_generated(generator, evaluator, [*fd_metrics.values(), kid], counts=counts,
                                truncation=truncation, keep=generated)
    kid_mean, kid_std = compute_kid(kid)
    scores = Scores(num_samples=num_samples, per_class=per_class, class_counts=counts, truncation=truncation,
                    reference_images=len(reference.labels), class_accuracy=accuracy,
                    fd=compute_fd(fd_metrics["fd"]), kid_mean=kid_mean, kid_std=kid_std, kid_subset_size=subset_size)
    if inception:
        scores.inception_fd = compute_fd(fd_metrics["inception_fd"])
    if train is not None:
        _add_fd_floor(scores, fd_metrics, train, log)
    if generated is not None:
        memorized = memorization_scores(evaluator, as_image_data(generated, reference.class_names), train, reference,
                                        log=log)
        scores.precision_recall, scores.authenticity = memorized["precision_recall"], memorized["authenticity"]
    return scores


def _check_scoring(generator: nn.Module, evaluator: Evaluator, reference: ImageData, *, train: ImageData | None,
                   per_class: int, memorization: bool) -> None:
    """GanError for a scoring that cannot work: the wrong evaluator or data for the generator, no images."""
    if memorization and train is None:
        raise GanError("precision, recall and authenticity need the training split; pass train=")
    check_evaluator_fits(evaluator, generator.model_config)
    if len(reference.class_names) != generator.model_config.num_classes:
        raise GanError(f"the dataset has {len(reference.class_names)} classes but the generator makes "
                       f"{generator.model_config.num_classes}; score it against the dataset it was trained on")
    if per_class < 1:
        raise GanError(f"images per class must be at least 1, got {per_class}")


def _add_fd_floor(scores: Scores, fd_metrics: dict, train: ImageData, log: Callable[[str], None]) -> None:
    """FD's floor: real training images in place of the generated ones, against the same reference features."""
    floor_images = floor_subset(train, scores.num_samples)
    log(f"floor: features of {len(floor_images)} real train images")
    for name, metric in fd_metrics.items():
        metric.reset()  # keeps the reference (real) features, drops the generated ones
        add_images(metric, floor_images, real=False)
        setattr(scores, f"{name}_train_test", compute_fd(metric))
    scores.fd_train_test_images = len(floor_images)
    scores.fd_ratio = scores.fd / scores.fd_train_test if scores.fd_train_test > 0 else None


def _score_generated(generator: nn.Module, evaluator: Evaluator, metrics: list, *, counts: Sequence[int],
                     truncation: float, keep: list | None = None) -> dict[str, Any]:
    """Generate the scored images class by class, feed them to the FD/KID metrics as fake, return class accuracy;
    keep, if given, receives each (class, images) batch."""
    predictions, labels = [], []
    for label, images in generated_batches(generator, per_class=counts, truncation=truncation):
        if keep is not None:
            keep.append((label, images))
        predictions.append(predict(evaluator, images))
        labels.append(torch.full((len(images),), label))
        for metric in metrics:
            add_images(metric, images, real=False)
    correct = (torch.cat(predictions) == torch.cat(labels)).float()  # (N,)
    labels = torch.cat(labels)
    names = list(generator.model_config.class_names)
    return {"overall": float(correct.mean()),
            "per_class": {names[c]: float(correct[labels == c].mean()) for c in range(len(names))
                          if (labels == c).any()}}


def as_image_data(batches: list[tuple[int, torch.Tensor]], class_names: list[str]) -> ImageData:
    """(class, uint8 images) batches, as generated_batches yields them, as one labeled ImageData."""
    labels = torch.cat([torch.full((len(images),), label) for label, images in batches])
    return ImageData(images=torch.cat([images for _, images in batches]), labels=labels,
                     class_names=list(class_names), source="generated")


# ---------------------------------------------------------------------------------------------- memorization

def knn_radii(features: torch.Tensor, k: int = MANIFOLD_K) -> torch.Tensor:
    """Distance (N,) from each feature vector (N, D) to its k-th nearest other one: the radius of its ball."""
    return nearest(features, features, k, exclude_self=True)[0][:, -1]


def manifold_coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of points (Q, D) inside at least one ball (centre (N, D), radius (N,)): the k-NN manifold test."""
    inside = [(block <= radii.pow(2)).any(dim=1) for _, block in squared_distance_blocks(points, centres)]
    return float(torch.cat(inside).float().mean()) if inside else float("nan")


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = MANIFOLD_K) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: precision = share of fake features inside the real set's k-NN manifold (realism),
    recall = share of real features inside the fake set's (coverage). Sets of equal size compare fairly."""
    if min(len(real), len(fake)) <= k:
        raise GanError(f"precision and recall with k={k} need more than {k} images a set, got {len(real)} and "
                       f"{len(fake)}")
    return (manifold_coverage(fake, real, knn_radii(real, k)), manifold_coverage(real, fake, knn_radii(fake, k)))


def authentic_share(features: torch.Tensor, train_features: torch.Tensor, train_gaps: torch.Tensor) -> float:
    """Share of images (features (Q, D)) that are authentic: farther from their nearest training image j than
    train_gaps[j], the distance from j to its own nearest other training image (after Alaa et al. 2022). An image
    at that distance or closer sits inside the empty gap around one training image: a copy, or nearly."""
    distance, index = nearest(features, train_features, 1, base_sq=squared_norms(train_features))
    return float((distance[:, 0] > train_gaps[index[:, 0]]).float().mean())


def memorization_scores(evaluator: Evaluator, generated: ImageData, train: ImageData, reference: ImageData, *,
                        k: int = MANIFOLD_K, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Precision, recall and authenticity of generated images, each beside the same figure for the real reference
    (test) images scored in their place. Precision/recall compare equal-size class-balanced sets (the smallest of
    the three, picked by FLOOR_SEED) with a train subset; authenticity uses every training image."""
    log = log or (lambda message: None)
    size = min(len(generated.labels), len(train.labels), len(reference.labels))
    log(f"precision and recall (k={k}): {size} generated, training and reference images")
    train_subset, generated_subset, reference_subset = (
        feature_vectors(evaluator, balanced_subset(data, size, seed=FLOOR_SEED).images)
        for data in (train, generated, reference))
    precision, recall = precision_recall(train_subset, generated_subset, k)
    real_precision, real_recall = precision_recall(train_subset, reference_subset, k)
    log(f"authenticity: nearest training image of {len(generated.labels)} generated and "
        f"{len(reference.labels)} reference images among {len(train.labels)}")
    train_features = feature_vectors(evaluator, train.images)
    gaps = nearest(train_features, train_features, 1, exclude_self=True)[0][:, 0]
    return {
        "precision_recall": {"precision": precision, "recall": recall, "reference_precision": real_precision,
                             "reference_recall": real_recall, "k": k, "images_per_set": size},
        "authenticity": {"authentic": authentic_share(feature_vectors(evaluator, generated.images), train_features,
                                                      gaps),
                         "reference_authentic": authentic_share(feature_vectors(evaluator, reference.images),
                                                                train_features, gaps),
                         "generated_images": len(generated.labels), "reference_images": len(reference.labels),
                         "train_images": len(train.labels)},
    }


# ---------------------------------------------------------------------------------------------- two-sample test
# Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017): can a fresh classifier tell generated from real?
# A small CNN (the evaluator's architecture with two outputs, trained from scratch with a fixed seed) learns "real or
# generated" on one half of a balanced set of real and generated images and is scored on the other half. Its held-out
# accuracy is the statistic: 0.5 means the two sets are indistinguishable to it, 1.0 that every image gives itself
# away. Unlike FD, which compares two Gaussians fitted to a fixed feature space, the classifier learns whatever cue
# separates the sets (pixel range, texture, blur, artefacts), so it catches what a feature space chosen in advance
# misses. Both sets are uint8, so both went through the same quantization.
#
# The 95% interval is Wilson's for a binomial proportion over the held-out images; the p-value is the one-sided
# binomial test of "accuracy > 0.5", the test's null hypothesis being that the sets come from one distribution.

C2ST_MIN_IMAGES = 200  # per set: below this the held-out accuracy's interval is too wide to tell anything (+-0.07)


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
    # Empty: train for `epochs` exactly. Else a saturating judge: one-cycle runs of these many epochs in turn, each
    # on the training half less a validation split (validation_fraction of it), until a run's validation accuracy
    # gains less than min_gain over the best before; the best run by validation is scored on the held-out half.
    # A judge that looks as hard as it usefully can, as an outsider's does. (A held learning rate with early
    # stopping was tried: the classifier stayed near chance until the one-cycle schedule annealed, and stopped there.)
    budgets: tuple[int, ...] = ()
    validation_fraction: float = 0.2
    min_gain: float = 0.01  # about one standard error of a validation accuracy on 2,000 images
    # Independent judges (seeds seed, seed + 1, ...: each its own split, initialisation and data order); the figure is
    # their mean. One judge's figure hangs on its seed: on one Fashion-MNIST model, five seeds of the saturating judge
    # gave 0.72-0.83, ten times its binomial interval (BENCHMARKS.md, issue 28).
    judges: int = 1


# gan.tools.evaluate score's default judge: three judges, each up to 160 epochs (80 left one of five seeds still
# gaining 0.045 on Fashion-MNIST).
SATURATING_C2ST = C2stSettings(budgets=(20, 40, 80, 160), judges=3)


def c2st(real: np.ndarray | torch.Tensor, generated: np.ndarray | torch.Tensor, *,
         settings: C2stSettings = C2stSettings(), log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Held-out accuracy of a fresh real-vs-generated classifier, with its 95% interval and p-value; with
    settings.judges > 1, the mean of that many judges of consecutive seeds, each one's figures under "judges".

    `real` and `generated` are uint8 images ((N, C, H, W) tensors or (N, H, W, C) arrays) of one size; the larger
    set is cut to the smaller one's size so that 0.5 is the chance level."""
    real, generated = as_image_tensor(real), as_image_tensor(generated)
    check_sets(real, generated)
    if settings.judges < 1:
        raise GanError(f"C2ST needs at least one judge, got judges={settings.judges}")
    verdicts = [_one_judge(real, generated, dataclasses.replace(settings, seed=settings.seed + index), log)
                for index in range(settings.judges)]
    verdict = verdicts[0] if len(verdicts) == 1 else _mean_verdict(verdicts)
    return {**verdict, "settings": dataclasses.asdict(settings)}


def _mean_verdict(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several judges' verdicts as one: their mean accuracy, its interval and p-value at one judge's test size
    (the judges' test halves overlap, so pooling them would overstate the evidence), and each verdict."""
    accuracy = float(np.mean([v["accuracy"] for v in verdicts]))
    tested = verdicts[0]["tested_images"]
    low, high = wilson_interval(accuracy, tested)
    return {"accuracy": accuracy, "interval_95": [low, high], "p_value": binomial_p_value(accuracy, tested),
            "generated_taken_for_real": float(np.mean([v["generated_taken_for_real"] for v in verdicts])),
            "images_per_set": verdicts[0]["images_per_set"], "tested_images": tested,
            "judge_range": [min(v["accuracy"] for v in verdicts), max(v["accuracy"] for v in verdicts)],
            "judges": verdicts}


def _one_judge(real: torch.Tensor, generated: torch.Tensor, settings: C2stSettings,
               log: Callable[[str], None] | None) -> dict[str, Any]:
    """One classifier's verdict, its seed picking the split, initialisation and data order."""
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
    options = dict(epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, seed=settings.seed,
                   device="cpu", log=log)
    plateau = {}
    if settings.budgets:  # fit on part of the training half, longer and longer, while its held-back part improves
        n_fit = int(round(n_train * (1 - settings.validation_fraction)))
        fit = _labelled(real[:n_fit], generated[:n_fit])
        validation = _labelled(real[n_fit:n_train], generated[n_fit:n_train])
        model, plateau = _saturating_judge(fit, validation, config, settings, options)
        accuracy = float((predict(model, test.images) == test.labels).float().mean())
    else:
        model, accuracy = train_evaluator(train, test, config, **options)
    # Held-out accuracy on generated images alone says which way the errors go (fakes taken for real, or not).
    fake_as_real = float((evaluator_outputs(model, test.images[test.labels == 1]).argmax(1) == 0).float().mean())
    tested = len(test.labels)
    low, high = wilson_interval(accuracy, tested)
    return {"seed": settings.seed, "accuracy": accuracy, "interval_95": [low, high],
            "p_value": binomial_p_value(accuracy, tested), "generated_taken_for_real": fake_as_real,
            "images_per_set": count, "tested_images": tested, **plateau}


def _saturating_judge(fit: ImageData, validation: ImageData, config: EvaluatorConfig, settings: C2stSettings,
                      options: dict[str, Any]) -> tuple[Evaluator, dict[str, Any]]:
    """Train one-cycle classifiers of settings.budgets epochs in turn until validation accuracy stops gaining
    min_gain; returns the best by validation and the curve (epochs -> validation accuracy)."""
    best, best_accuracy, curve = None, -1.0, {}
    for epochs in settings.budgets:
        model, validation_accuracy = train_evaluator(fit, validation, config, **{**options, "epochs": epochs})
        curve[epochs] = round(validation_accuracy, 4)
        gained = validation_accuracy - best_accuracy
        if validation_accuracy > best_accuracy:
            best, best_accuracy = model, validation_accuracy
        if gained < settings.min_gain:
            break
    chosen = best.evaluator_config.epochs
    return best, {"epochs_to_plateau": chosen, "validation_accuracy": best_accuracy,
                  "validation_curve": {str(k): v for k, v in curve.items()}}


def check_sets(real: torch.Tensor, generated: torch.Tensor) -> None:
    """Raise GanError unless both sets have the same image shape and enough images for the test to mean anything."""
    if real.shape[1:] != generated.shape[1:]:
        raise GanError(f"C2ST compares images of one shape, got real {tuple(real.shape[1:])} and generated "
                       f"{tuple(generated.shape[1:])} (channels, height, width)")
    smallest = min(len(real), len(generated))
    if smallest < C2ST_MIN_IMAGES:
        raise GanError(f"C2ST needs at least {C2ST_MIN_IMAGES} images in each set, got {smallest}; "
                       "its accuracy on fewer is noise")


def _labelled(real: torch.Tensor, generated: torch.Tensor) -> ImageData:
    """Real images labelled 0 and generated ones 1, as a dataset the evaluator trainer takes."""
    labels = torch.cat([torch.zeros(len(real)), torch.ones(len(generated))]).long()
    return ImageData(torch.cat([real, generated]), labels, ["real", "generated"], "c2st")


def c2st_of_generator(generator: nn.Module, real: ImageData, *, per_class: int, truncation: float = 1.0,
                      settings: C2stSettings = C2stSettings(), log: Callable[[str], None] | None = None
                      ) -> dict[str, Any]:
    """C2ST of the generator's images (per_class x classes in the class mix of `real`, seeds 0..n_c-1 of each
    class c, as FD scores them) against as many real images (usually the training split) of the same classes,
    picked by FLOOR_SEED."""
    counts = class_counts(real.labels, generator.model_config.num_classes, per_class * len(real.class_names))
    generated = torch.cat([images for _, images in generated_batches(generator, per_class=counts,
                                                                     truncation=truncation)])
    real_images = stratified_subset(real, counts, seed=FLOOR_SEED).images
    return c2st(real_images, generated, settings=settings, log=log)


def floor_subset(train: ImageData, count: int) -> torch.Tensor:
    """`count` train images (all if fewer), picked by FLOOR_SEED: the same sample size as the generated set,
    because FD's bias depends on the number of images."""
    order = torch.randperm(len(train.labels), generator=torch.Generator().manual_seed(FLOOR_SEED))
    return train.images[order[:count]]


def cas(generator: nn.Module, test: ImageData, config: EvaluatorConfig, *, per_class: int = 1000,
        truncation: float = 1.0, epochs: int = 6, seed: int = 0, log: Callable[[str], None] | None = None) -> float:
    """Classification Accuracy Score: real-test accuracy of a classifier (the evaluator's architecture) trained
    only on per_class generated images of each class, from seeds CAS_SEED_OFFSET.. (never the scored seeds)."""
    model_config = generator.model_config
    if per_class < 1:
        raise GanError(f"CAS needs at least 1 image per class, got {per_class}")
    seeds = list(range(CAS_SEED_OFFSET, CAS_SEED_OFFSET + per_class))
    classes = [c for c in range(model_config.num_classes) for _ in seeds]
    images = as_image_tensor(generate(generator, classes, seeds * model_config.num_classes, truncation))
    fake = ImageData(images=images, labels=torch.tensor(classes, dtype=torch.int64),
                     class_names=list(model_config.class_names), source="generated")
    config = dataclasses.replace(config, dataset="generated", test_accuracy=None)
    _, accuracy = train_evaluator(fake, test, config, epochs=epochs, seed=seed, log=log)
    return accuracy


# ---------------------------------------------------------------------------------------------- reports


def with_provenance(scores: Scores, *, model: str, dataset: str, reference_split: str, train_split: str,
                    evaluator_dir: Path, evaluator_config: EvaluatorConfig) -> Scores:
    """The scores with what a reader needs to trust and reproduce them: model, dataset, splits, evaluator, date."""
    return dataclasses.replace(
        scores, model=model, dataset=portable_source(dataset), reference_split=reference_split,
        train_split=train_split, seeds=f"0..{scores.per_class - 1} for each class", evaluator=str(evaluator_dir),
        evaluator_test_accuracy=evaluator_config.test_accuracy,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"), package_version=package_version())


def package_version() -> str:
    """This package's version (the same in a checkout and an installed distribution)."""
    return __version__
