"""Quality checks during training: the EMA generator scored by the dataset's evaluator every N steps.

GAN quality does not improve monotonically, and the last step is not always the best one, so training keeps the
export with the lowest FD in OUTPUT_DIR/best (its metrics.json and card state the scores). The scores are the
same as `python -m gan.evaluate score` gives (class accuracy, FD with its train-vs-test floor, KID), on fewer
images by default so that an evaluation costs seconds, not minutes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from torch import nn

from .config import ModelConfig, TrainConfig
from .data import ImageData, load_image_data
from .errors import GanError
from .metrics import METRICS_NAME, check_evaluator_fits, open_evaluator, score_generator, with_provenance

BEST_FOLDER = "best"  # OUTPUT_DIR/best: the export with the lowest FD so far


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
        self.train_data = train_data  # FD's floor compares train images with the same reference images

    def score(self, generator: nn.Module, step: int) -> dict[str, Any]:
        """Scores of the generator (eval mode, batch norm calibrated) at this training step, with provenance."""
        scores = score_generator(generator, self.evaluator, self.reference, train=self.train_data,
                                 per_class=self.cfg.eval_per_class)
        report = with_provenance(scores, model=f"{self.cfg.output_dir} at step {step}", dataset=self.cfg.dataset,
                                 reference_split=self.cfg.eval_split, train_split=self.cfg.split,
                                 evaluator_dir=self.evaluator_dir, evaluator_config=self.evaluator.evaluator_config)
        return {"step": step, **report}


def summary_line(scores: dict[str, Any]) -> str:
    """One line for the console: step, class accuracy, FD against its floor, KID."""
    return (f"eval at step {scores['step']}: class accuracy {scores['class_accuracy']['overall']:.4f}, "
            f"FD {scores['fd']:.4f} (floor {scores['fd_train_test']:.4f}, ratio {scores['fd_ratio']:.1f}), "
            f"KID {scores['kid_mean']:.4f} on {scores['num_samples']} images")


def tracker_values(scores: dict[str, Any]) -> dict[str, float]:
    """The scores as flat numbers for accelerate's trackers (TensorBoard, ...)."""
    return {"eval/fd": scores["fd"], "eval/fd_ratio": scores["fd_ratio"], "eval/kid": scores["kid_mean"],
            "eval/class_accuracy": scores["class_accuracy"]["overall"]}


def best_fd_on_disk(out: Path) -> float:
    """FD of the export kept in out/best, or infinity: a resumed run must not replace a better one."""
    try:
        return float(json.loads((out / BEST_FOLDER / METRICS_NAME).read_text())["fd"])
    except (OSError, ValueError, KeyError, TypeError):
        return math.inf
