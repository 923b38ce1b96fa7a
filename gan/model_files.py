"""Model folders on disk: safetensors weights beside config.json, the quiz's real pool, and the files' names.

Layout of an exported model folder (and of a model repo, gan/hub/):
    config.json, model.safetensors        the EMA generator
    discriminator/config.json, discriminator/model.safetensors
    samples.png, timelapse.gif, metrics.json, training_config.json, training_summary.json, real_pool.safetensors,
    directions.safetensors, neighbours.safetensors (optional), README.md (the model card)
Loading never unpickles anything and is strict: a missing or unexpected tensor is an error. No networking here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig
from .errors import GanError

WEIGHTS_NAME = "model.safetensors"
REAL_POOL_NAME = "real_pool.safetensors"  # held-out real images for the quiz: never seen in training
INDEX_NAME = "neighbours.safetensors"  # the copy check's index shipped in a model folder (gan/explore/neighbours.py)
# Files of a model folder that hold real images of the dataset. They leave the machine only when the owner says so
# (publish_folder's real_pool / training_thumbnails; `gan-space deploy --publish-real-pool` and friends): a trainer
# with private, personal or licensed images must never leak them by publishing a demo.
REAL_IMAGE_FILES = {
    REAL_POOL_NAME: "held-out real test images of the dataset (the quiz's real pool)",
    INDEX_NAME: "a thumbnail of every training image (the copy check's index)",
}
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"  # the scores of a model (gan/quality/scores.py), which its card states
DISCRIMINATOR_FOLDER = "discriminator"
MODEL_FILES = ("config.json", "model.safetensors", "discriminator/*", "samples.png", "timelapse.gif",
               "metrics.json", "training_config.json", "training_summary.json", "real_pool.safetensors", "README.md",
               "directions.safetensors",  # the GANSpace directions (gan/explore/directions.py): a few kB
               "neighbours.safetensors")  # a copy check index built into the folder (gan/explore/neighbours.py)


def save_model(model: nn.Module, directory: str | Path) -> Path:
    """Write model.safetensors and config.json into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt", "model": type(model).__name__})
    model.model_config.save(directory / CONFIG_NAME)
    return directory


def load_model(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """Build `cls` from directory/config.json and load directory/model.safetensors strictly; returns it in eval mode."""
    return load_folder(directory, lambda config: cls(ModelConfig.load(config)), kind="model folder",
                       is_it="an exported model folder")


def load_folder(directory: str | Path, build: Callable[[Path], nn.Module], *, kind: str, is_it: str,
                absent_hint: str = "", weights_name: str = WEIGHTS_NAME, config_name: str = CONFIG_NAME) -> nn.Module:
    """The network that build(directory/config_name) makes, with directory/weights_name loaded strictly, in eval
    mode; a missing folder or weights file is a GanError naming the folder's kind ("model folder", ...)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GanError(f"{kind} {directory} does not exist{absent_hint}")
    weights = directory / weights_name
    if not weights.is_file():
        raise GanError(f"{directory} holds no {weights_name}; is it {is_it}?")
    model = build(directory / config_name)
    load_state_strictly(model, read_safetensors(weights), source=str(weights))
    return model.eval()


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never a pickle), or GanError if it is not one."""
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{path} is not a readable safetensors file ({error})") from None


def model_subfolder(folder: Path, cls: type) -> Path:
    """Where `cls` lives in a model folder: its subfolder, or the root of a folder holding that model alone."""
    sub = getattr(cls, "hub_subfolder", "")
    if not sub or (folder / sub / WEIGHTS_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        return folder / sub
    return folder if weights_metadata(folder / WEIGHTS_NAME).get("model") == cls.__name__ else folder / sub


def weights_metadata(path: Path) -> dict[str, str]:
    """The metadata header of a safetensors file ({} if unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError):
        return {}


def load_state_strictly(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """load_state_dict(strict=True), with one readable line for missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
        if misshaped:
            k = misshaped[0]
            details.append(f"{k} has shape {tuple(state[k].shape)}, config needs {tuple(expected[k].shape)}")
        raise GanError(f"weights in {source} do not match their config.json: {'; '.join(details)}")
    model.load_state_dict(state, strict=True)


def save_real_pool(images: torch.Tensor, labels: torch.Tensor, folder: str | Path, *, split: str) -> Path:
    """Store held-out real images (uint8 (N, C, H, W)) and their labels as real_pool.safetensors."""
    path = Path(folder) / REAL_POOL_NAME
    save_file({"images": images.permute(0, 2, 3, 1).contiguous(), "labels": labels.long().contiguous()}, path,
              metadata={"split": split, "layout": "NHWC uint8"})
    return path


def load_real_pool(folder: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out real images (uint8 (N, H, W, C)) and labels (int64 (N,)) of a model folder."""
    path = Path(folder) / REAL_POOL_NAME
    if not path.is_file():
        raise GanError(f"{folder} has no {REAL_POOL_NAME}: no held-out real images were published with this model "
                       "(they go up only when its owner allows it, e.g. `gan-space deploy --publish-real-pool`), "
                       "so the quiz has no real images to show; a local export has one unless --real-pool-size 0")
    pool = read_safetensors(path)
    if set(pool) != {"images", "labels"} or pool["images"].dtype != torch.uint8 or pool["images"].dim() != 4:
        raise GanError(f"{path} does not hold uint8 'images' (N, H, W, C) and 'labels'")
    return pool["images"], pool["labels"]


def looks_like_local_path(text: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything rooted, relative-dotted or deeper can only be a path."""
    return text.startswith(("/", "./", "../", "~")) or text.count("/") > 1 or (
        os.sep != "/" and os.sep in text)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from path, or None if the file is absent or unreadable."""
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def portable_path(value: str, folder: str) -> str:
    """An absolute path of the training machine as folder/<its last part>; Hub ids and relative paths stay."""
    path = Path(value)
    return f"{folder}/{path.name}" if path.is_absolute() else value


# The models shipped in the repository's models/ folder (a checkout or a Space; an installed package ships none), in
# the order the app offers them: the first is the default of every command and of the app.
SHIPPED_MODEL_NAMES = ("fashion-mnist", "emoji", "mnist")
CHECKOUT_ROOT = Path(__file__).resolve().parents[1]  # in a checkout: app.py, models/ and gan/ side by side


def shipped_model_folder(name: str = SHIPPED_MODEL_NAMES[0]) -> Path:
    """The folder of a shipped model in a checkout (it may be absent from an installed package)."""
    return CHECKOUT_ROOT / "models" / name


def model_or_default(model: str | None) -> str:
    """--model, else the default model shipped beside the package in a checkout."""
    if model is not None:
        return model
    if not (shipped_model_folder() / CONFIG_NAME).is_file():
        raise GanError("no --model given, and no shipped model next to this installed package: pass a model folder "
                       "or a Hub repo id, e.g. --model user/fashion-mnist-cgan")
    return str(shipped_model_folder())
