"""What the parts of a training run share: its state (checkpointed with the models) and a small context object
that the checkpoint, export and evaluation helpers take instead of seven arguments."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from accelerate import Accelerator
from torch import nn

from ..config import TrainConfig
from ..data import ImageData
from .ema import EMA


@dataclass
class TrainingState:
    """Step counter and training time, checkpointed with the models so a resumed run continues where it stopped."""

    step: int = 0
    train_seconds: float = 0.0  # wall-clock time spent in training steps, summed over every resume
    best_score: float = math.inf  # lowest selection score of the evaluations so far (--eval-every), kept in best/

    def state_dict(self) -> dict[str, float]:
        return {"step": self.step, "train_seconds": self.train_seconds, "best_score": self.best_score}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.step = int(state["step"])
        self.train_seconds = float(state.get("train_seconds", 0.0))  # absent in checkpoints of older versions
        # Checkpoints of versions before 0.2 kept the best FD, which is no selection score: start afresh.
        self.best_score = float(state.get("best_score", math.inf))

    def out_of_time(self, cfg: TrainConfig) -> bool:
        return cfg.max_minutes > 0 and self.train_seconds >= cfg.max_minutes * 60


@dataclass
class Run:
    """One training run: its accelerator, folder and config, the EMA generator and the (prepared) discriminator, the
    held-out real pool it exports for the quiz (None without one), and its state."""

    accelerator: Accelerator
    out: Path
    cfg: TrainConfig
    ema: EMA
    discriminator: nn.Module
    pool: ImageData | None
    state: TrainingState
