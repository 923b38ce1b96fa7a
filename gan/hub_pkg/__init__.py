"""Saving and loading models as safetensors + config.json folders (the layout of a Hub model repo).

Layout of an exported model folder:
    config.json, model.safetensors        the EMA generator (what `load_generator` returns)
    discriminator/config.json, discriminator/model.safetensors
Loading never unpickles anything and is strict: a missing or unexpected tensor is an error.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .config import ModelConfig
from .errors import GanError
from .models import Discriminator, Generator

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
DISCRIMINATOR_FOLDER = "discriminator"


def save_model(model: Generator | Discriminator, directory: str | Path) -> Path:
    """Write model.safetensors and config.json into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt", "model": type(model).__name__})
    model.model_config.save(directory / CONFIG_NAME)
    return directory


def load_model(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """Build `cls` from directory/config.json and load directory/model.safetensors strictly; returns it in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GanError(f"model folder {directory} does not exist")
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise GanError(f"{directory} holds no {WEIGHTS_NAME}; is it an exported model folder?")
    model = cls(ModelConfig.load(directory / CONFIG_NAME))
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{weights} is not a readable safetensors file ({error})") from None
    load_state_strictly(model, state, source=str(weights))
    return model.eval()


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


def load_generator(directory: str | Path) -> Generator:
    """The (EMA) generator of an exported model folder, in eval mode on the CPU."""
    return load_model(Generator, directory)  # type: ignore[return-value]


def load_discriminator(directory: str | Path) -> Discriminator:
    """The discriminator stored in an exported model folder's discriminator/ subfolder."""
    return load_model(Discriminator, Path(directory) / DISCRIMINATOR_FOLDER)  # type: ignore[return-value]
