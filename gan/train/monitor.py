"""Quality checks during training: the EMA generator scored by the dataset's evaluator every N steps.

GAN quality does not improve monotonically, and the last step is not always the best one, so training keeps the
export with the lowest selection score in OUTPUT_DIR/best (its metrics.json and card state the scores). The scores
are the same as `python -m gan.evaluate score --c2st` gives (class accuracy, FD with its train-vs-test floor, KID,
the classifier two-sample test), on fewer images by default so that an evaluation costs seconds, not minutes.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from torch import nn

from ..config import ModelConfig, TrainConfig
from ..data import ImageData, load_image_data
from ..errors import GanError
from ..model_files import METRICS_NAME
from ..quality.evaluator import open_evaluator
from ..quality.metrics import (C2ST_MIN_IMAGES, c2st_of_generator, check_evaluator_fits, score_generator,
                               with_provenance)
from ..quality.scores import Scores

BEST_FOLDER = "best"  # OUTPUT_DIR/best: the export with the lowest selection score so far


class QualityMonitor:
    """Scores a generator against the real `cfg.eval_split` split; built once, before training starts."""

    def __init__(self, cfg: TrainConfig, model_config: ModelConfig, train_data: ImageData):
        self.cfg = cfg
        self.evaluator, self.evaluator_dir = open_evaluator(cfg.dataset, cfg.evaluator)
        check_evaluator_fits(self.evaluator, model_config, evaluator_source=f"the evaluator at {self.evaluator_dir}")
        if cfg.eval_split == cfg.split:
            raise GanError(f"--eval-split {cfg.eval_split} is the training split; evaluate against held-out images")
        self.reference = load_image_data(
            cfg.dataset, split=cfg.eval_split, image_size=cfg.image_size, channels=model_config.channels,
            image_column=cfg.image_column, label_column=cfg.label_column,
        )
        if self.reference.class_names != model_config.class_names:
            raise GanError(f"split {cfg.eval_split} has other classes than {cfg.split}; pick another --eval-split")
        self.train_data = train_data  # FD's floor and C2ST compare with the training images
        self.c2st_fits = c2st_size(cfg, model_config, train_data) is not None
        if not self.c2st_fits:
            c2st_images = min(len(train_data.labels), cfg.c2st_per_class * model_config.num_classes)
            print(f"warning: evaluations skip the two-sample test (C2ST): it needs {C2ST_MIN_IMAGES} images a side "
                  f"and gets {c2st_images} (the training split's size or --c2st-per-class x classes); best/ is "
                  "chosen by FD alone", file=sys.stderr, flush=True)

    def score(self, generator: nn.Module, step: int) -> Scores:
        """Scores of the generator (eval mode, batch norm calibrated) at this training step, with provenance."""
        scores = score_generator(generator, self.evaluator, self.reference, train=self.train_data,
                                 per_class=self.cfg.eval_per_class)
        if self.c2st_fits:
            scores.c2st = c2st_of_generator(generator, self.train_data, per_class=self.cfg.c2st_per_class)
        scores.step = step
        return with_provenance(scores, model=f"{self.cfg.output_dir} at step {step}", dataset=self.cfg.dataset,
                               reference_split=self.cfg.eval_split, train_split=self.cfg.split,
                               evaluator_dir=self.evaluator_dir, evaluator_config=self.evaluator.evaluator_config)


def c2st_size(cfg: TrainConfig, model_config: ModelConfig, train_data: ImageData) -> int | None:
    """Images a side of the evaluations' C2ST, or None when the data are too few for one."""
    images = min(len(train_data.labels), cfg.c2st_per_class * model_config.num_classes)
    return images if images >= C2ST_MIN_IMAGES else None


def selection_score(scores: Scores) -> float:
    """Lower is better: the mean of C2ST's excess over chance, (accuracy - 0.5) / 0.5, and FD's excess over its
    floor, 1 - floor / FD; both lie in [0, 1]. FD alone prefers smooth averaged images that a classifier still
    tells from real; C2ST alone ignores the class mix. Without a C2ST (data too small for one, or metrics of older
    versions) the FD term alone ranks; without an FD ratio, the scores rank last."""
    if scores.fd_ratio is None:
        return math.inf
    fd_term = max(0.0, 1.0 - 1.0 / max(scores.fd_ratio, 1e-9))
    if scores.c2st_accuracy is None:
        return fd_term
    return 0.5 * max(0.0, scores.c2st_accuracy - 0.5) / 0.5 + 0.5 * fd_term


def summary_line(scores: Scores) -> str:
    """One line for the console: step, class accuracy, FD against its floor, KID, C2ST."""
    c2st = scores.c2st_accuracy
    return (f"eval at step {scores.step}: class accuracy {scores.accuracy:.4f}, "
            f"FD {scores.fd:.4f} (floor {scores.fd_train_test:.4f}, ratio {scores.fd_ratio:.1f}), "
            f"KID {scores.kid_mean:.4f} on {scores.num_samples} images"
            + (f"; C2ST {c2st:.3f} ({scores.c2st_images} a side)" if c2st is not None else ""))


def tracker_values(scores: Scores) -> dict[str, float]:
    """The scores as flat numbers for accelerate's trackers (TensorBoard, ...)."""
    values = {"eval/fd": scores.fd, "eval/fd_ratio": scores.fd_ratio, "eval/kid": scores.kid_mean,
              "eval/class_accuracy": scores.accuracy}
    if scores.c2st_accuracy is not None:
        values["eval/c2st"] = scores.c2st_accuracy
    return values


def best_score_on_disk(out: Path, c2st_images: int | None) -> float:
    """Selection score of the export kept in out/best, so that a resumed run never replaces it with a worse one;
    infinity when there is none, or when its C2ST was measured on another number of images than this run's
    evaluations use (a classifier trained on fewer images finds less: such scores do not compare)."""
    try:
        scores = Scores.from_dict(json.loads((out / BEST_FOLDER / METRICS_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return math.inf
    if scores.c2st_images != c2st_images:
        return math.inf
    try:
        return selection_score(scores)
    except (KeyError, TypeError, AttributeError):
        return math.inf
