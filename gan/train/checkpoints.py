"""A run folder's checkpoints: preparing the folder (refusing one of another run), saving complete checkpoints
atomically, resuming from the newest (or a named) one, and warm starts from an exported model (--init-from)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import torch
from accelerate import Accelerator

from ..config import ModelConfig, TrainConfig
from ..errors import GanError
from ..models import DISCRIMINATOR_HEADS, load_discriminator, load_generator, without_spectral_norm
from .ema import EMA

CHECKPOINT_PREFIX = "step_"
PARTIAL_PREFIX = ".partial-"  # a checkpoint is written under this name and renamed when complete


def prepare_run_folder(out: Path, cfg: TrainConfig, accelerator: Accelerator) -> None:
    """Create the folder, refuse one that holds a different run, drop partial checkpoints, record the config."""
    config_path = out / "training_config.json"
    if config_path.exists():
        previous = TrainConfig.from_dict({**VALUES_BEFORE_THEIR_FLAGS, **json.loads(config_path.read_text())},
                                         source=str(config_path))
        changed = [k for k in RUN_IDENTITY if _identity(k, getattr(previous, k)) != _identity(k, getattr(cfg, k))]
        if changed and list_checkpoints(out):
            details = ", ".join(f"{k}: {getattr(previous, k)!r} -> {getattr(cfg, k)!r}" for k in changed)
            raise GanError(
                f"{out} holds checkpoints of a run with other settings ({details}); "
                "rerun with the same flags to resume, or choose a new --output-dir"
            )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        for partial in (out / "checkpoints").glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
        cfg.save(config_path)
    accelerator.wait_for_everyone()


# What runs of versions that lacked a flag trained with: their folders resume with it set so.
VALUES_BEFORE_THEIR_FLAGS = {"output_gain": 1.0}
# Flags that define what a checkpoint holds; changing any other flag (max steps, logging...) still resumes.
RUN_IDENTITY = ("dataset", "split", "image_size", "channels", "latent_dim", "g_width", "d_width", "output_gain",
                "white_dither", "white_slope", "white_plateau", "g_noise", "d_norm", "d_histogram", "d_patch",
                "d_texture", "batch_size", "seed")


def _identity(key: str, value: object) -> object:
    """What a setting means: a dataset folder given as `data/x`, `./data/x` or its absolute path is one dataset
    (a card prints `./data/x`, so its command must resume a run started with `data/x`)."""
    if key == "dataset" and isinstance(value, str) and Path(value).expanduser().exists():
        return Path(value).expanduser().resolve()
    return value


def list_checkpoints(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = out / "checkpoints"
    found = [p for p in folder.glob(CHECKPOINT_PREFIX + "*") if p.is_dir()] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def resume_checkpoint(accelerator: Accelerator, out: Path, resume: str | None) -> Path | None:
    """Load the checkpoint `resume` names, or the newest complete one in the run folder; None if starting fresh."""
    if resume:
        path = Path(resume)
        if not path.is_dir():
            raise GanError(f"checkpoint {path} does not exist; give a folder like {out}/checkpoints/step_00001000")
    else:
        checkpoints = list_checkpoints(out)
        if not checkpoints:
            return None
        path = checkpoints[-1]
    try:
        accelerator.load_state(str(path))
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1].strip()[:300]
        raise GanError(
            f"checkpoint {path} does not match this model ({first_line}); rerun with the flags it was trained with "
            "or choose a new --output-dir"
        ) from None
    except Exception as error:  # truncated or corrupt files surface as many different exception types
        raise GanError(
            f"checkpoint {path} could not be read ({type(error).__name__}: {str(error)[:200]}); "
            f"pass an older one with --resume, or delete it"
        ) from None
    if accelerator.is_main_process:
        print(f"Resumed from {path}", flush=True)
    return path


def checkpoint_folder(out: Path, step: int) -> Path:
    """Where a run folder's complete checkpoint of `step` lives."""
    return out / "checkpoints" / f"{CHECKPOINT_PREFIX}{step:08d}"


def save_checkpoint(accelerator: Accelerator, out: Path, step: int, total_limit: int) -> Path:
    """Write the full state under a temporary name, then rename it: a killed run never leaves a half checkpoint."""
    final = checkpoint_folder(out, step)
    partial = final.parent / f"{PARTIAL_PREFIX}{step:08d}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)  # atomic on POSIX: the checkpoint appears complete or not at all
        for old in list_checkpoints(out)[:-total_limit] if total_limit > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def start_from_export(source: str, generator, discriminator, ema: EMA) -> None:
    """Warm start (fine-tuning, or carrying a run across machines): weights of an exported model, fresh optimizers.
    The export's EMA generator starts both the live generator and the EMA; its config must match this run's, but
    for what `_as_this_run_would_build` lets differ."""
    exported_g, exported_d = load_generator(source), load_discriminator(source)
    if exported_d.model_config.d_norm == "spectral" and discriminator.model_config.d_norm == "none":
        exported_d = without_spectral_norm(exported_d)  # the same function, its normalised weights baked in
    gained_parts = (*(f"{attribute}." for attribute in DISCRIMINATOR_HEADS.values()), "dither.", "plateau.", "noise.")
    for name, mine, theirs in (("generator", generator, exported_g), ("discriminator", discriminator, exported_d)):
        if _as_this_run_would_build(name, theirs.model_config, mine.model_config) != mine.model_config:
            raise GanError(f"--init-from {source}: its {name} architecture differs from this run's "
                           f"({theirs.model_config.to_dict()} vs {mine.model_config.to_dict()}); use matching flags")
        # A plateau holds no learned weights, only buffers drawn from this run's config (its data's shares).
        state = {key: value for key, value in theirs.state_dict().items() if not key.startswith("plateau.")}
        state = widened(state, mine.state_dict())  # a wider generator: the same images to start from
        loaded = mine.load_state_dict(state, strict=False)  # parts it gains keep their start
        assert not loaded.unexpected_keys and all(key.startswith(gained_parts) for key in loaded.missing_keys), loaded
    ema.model.load_state_dict(generator.state_dict())


# How unevenly a widened layer's copies of a channel share its weights out (Net2Net's noise; the standard deviation
# of a share, times the copies): copies of one channel get gradients as different as their shares, so they only
# grow apart at a fine-tune's learning rate when the shares differ a lot (with 0.05, two copies' norm gains were
# 0.1-0.4% apart after 6,500 steps at 5e-5; with 0.5, 0.6-1.1%); any value keeps the narrow model's images.
SPLIT_NOISE = 0.5


def widened(narrow: dict[str, torch.Tensor], wide: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A narrower generator's weights (`narrow`) in a wider one's shapes (`wide`), drawing the same images: Net2Net's
    function-preserving widening (WiderNet, Chen et al. 2016). Each channel a layer gains is a copy of an old one
    (channel j of a grown dimension copies channel j mod the old count), with its weights in, norm gains and
    running statistics, so its activations equal the original's; the weights out of a channel (any grown dimension
    of a weight but the first) are shared among its copies, each a share of about 1/copies with noise
    (`SPLIT_NOISE`, from a fixed seed), the shares summing to exactly 1. So the next layer sees the same sum, and
    every copy is in use and learns on its own from the first step (copies whose weights out were zero would get no
    gradient into them at a fine-tune's learning rate). Channel-major layouts make this hold for every layer of
    `Generator` (the stem's rows are (C, s, s), a conditional norm's gains (C, K))."""
    rng = torch.Generator().manual_seed(0)
    out = {}
    for key, value in narrow.items():
        target = wide.get(key)
        if target is None or target.shape == value.shape:
            out[key] = value
            continue
        grown = value
        for dim, (old, new) in enumerate(zip(value.shape, target.shape)):
            if new == old:
                continue
            source = torch.arange(new) % old  # the old channel each new one copies
            grown = grown.index_select(dim, source)
            if dim > 0:  # weights out of the copied channels: split among the copies
                grown = grown * _split_shares(source, old, grown.shape, dim, rng)
        out[key] = grown.to(value.dtype)
    return out


def _split_shares(source: torch.Tensor, old: int, shape: torch.Size, dim: int, rng: torch.Generator) -> torch.Tensor:
    """Each weight's share (`shape`) of the old weight it copies along `dim` (new index j copies old index
    source[j]): 1/copies plus noise whose mean over each old index's copies is zero, so the shares sum to 1."""
    view = [1] * len(shape)
    view[dim] = -1
    copies = torch.bincount(source, minlength=old)[source].to(torch.float64).view(view)
    noise = SPLIT_NOISE * torch.randn(shape, generator=rng, dtype=torch.float64) / copies
    grouped = torch.zeros(*shape[:dim], old, *shape[dim + 1:], dtype=torch.float64).index_add_(dim, source, noise)
    return 1.0 / copies + noise - grouped.index_select(dim, source) / copies


def _as_this_run_would_build(name: str, theirs: ModelConfig, mine: ModelConfig) -> ModelConfig:
    """An exported model's config with what may differ in a warm start taken from this run's. Class names may
    differ, so a model of one dataset can start training on another with as many classes (transfer, which converges
    much faster on small data). The output layer's gains, slope, plateau and normalisation have no learned weights:
    a tanh model may start a run that trains it to saturate. The generator reads none of the discriminator's
    fields, nor the discriminator the generator's; a spectral-norm discriminator was converted by the caller. A
    discriminator may gain heads (they start at zero: the same function) and a generator the dither (at its starting
    strength), never lose them; a generator may grow wider (`widened`), never narrower."""
    if name == "generator":
        fields = {"d_norm": mine.d_norm, **{head: getattr(mine, head) for head in DISCRIMINATOR_HEADS},
                  "white_dither": mine.white_dither or theirs.white_dither,  # the learned strength is in the weights
                  "g_noise": mine.g_noise or theirs.g_noise,  # as the dither's
                  "g_width": max(mine.g_width, theirs.g_width), "d_width": mine.d_width}
    else:
        fields = {head: True for head in DISCRIMINATOR_HEADS if getattr(mine, head) and not getattr(theirs, head)}
        fields.update(white_dither=mine.white_dither, g_noise=mine.g_noise, g_width=mine.g_width)
    return replace(theirs, class_names=mine.class_names, output_gain=mine.output_gain, white_gain=mine.white_gain,
                   output_norm=mine.output_norm, white_slope=mine.white_slope, white_plateau=mine.white_plateau,
                   white_peaks=mine.white_peaks, **fields)
