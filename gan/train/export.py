"""What a run writes for people: fixed-noise sample grids (and trackers' copies), the timelapse, the exported model
folder (EMA generator, discriminator, samples, records, real pool, card), and pushes of it to the Hub."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from PIL import Image

from ..config import ModelConfig, TrainConfig
from ..data import ImageData, balanced_subset, load_image_data
from ..errors import GanError
from ..hub import check_repo_id, hub_errors
from ..model_files import DISCRIMINATOR_FOLDER, METRICS_NAME, read_json, save_model, save_real_pool
from ..quality.scores import Scores
from ..sampling import class_grid, save_gif, save_png
from ..sharing.card import training_command, write_model_card
from ..sharing.publish import publish_folder
from .ema import recalibrate_batch_norm
from .state import Run

EVALS_NAME = "evals.jsonl"  # every --eval-every evaluation of a run, one JSON object a line


def save_sample_grid(ema_generator: torch.nn.Module, out: Path, step: int, num_seeds: int) -> Path:
    """Save the fixed-noise grid of the EMA generator at this step (after re-estimating its batch-norm statistics)."""
    recalibrate_batch_norm(ema_generator)
    folder = out / "samples"
    folder.mkdir(parents=True, exist_ok=True)
    grid = class_grid(ema_generator, seeds=range(num_seeds))
    return save_png(grid, folder / f"step_{step:08d}.png", scale=grid_scale(ema_generator.model_config))


def log_sample_grid(accelerator: Accelerator, grid_png: Path, step: int) -> None:
    """Show a saved sample grid in the trackers that take images. accelerate's trackers each want their own
    shape: a batch for TensorBoard, a list for W&B and SwanLab, one image for Aim and ClearML."""
    if not accelerator.trackers:
        return
    with Image.open(grid_png) as png:
        image = np.asarray(png.convert("RGB"))  # (H, W, 3) uint8, as written to samples/
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.log_images({"samples": image[None]}, step=step, dataformats="NHWC")
        elif tracker.name in ("wandb", "swanlab"):
            tracker.log_images({"samples": [image]}, step=step)
        elif tracker.name in ("aim", "clearml"):
            tracker.log_images({"samples": image}, step=step)
    # Other trackers (e.g. mlflow, comet_ml) get the scalars only; the grid is in samples/ as well.


def grid_scale(config: ModelConfig) -> int:
    """Nearest-neighbour upscaling that makes small images visible in grids and GIFs."""
    return max(1, 64 // config.image_size)


def write_timelapse(out: Path, *, shrink: int = 1, max_frames: int = 16) -> Path | None:
    """Stitch up to max_frames evenly spaced sample grids (always the last) into timelapse.gif; the last lingers.
    `shrink` undoes the grids' nearest-neighbour enlargement, so the GIF stays small enough to ship."""
    grids = sorted((out / "samples").glob("step_*.png"))
    if not grids:
        return None
    count = min(max_frames, len(grids))
    picks = [round(i * (len(grids) - 1) / max(1, count - 1)) for i in range(count)]  # evenly spaced, first and last
    frames = [np.asarray(Image.open(grids[i]))[::shrink, ::shrink] for i in picks]  # "L" (grey) or "RGB"
    frames = [frame[..., None] if frame.ndim == 2 else frame for frame in frames]
    return save_gif(frames, out / "timelapse.gif", duration_ms=[300] * (len(frames) - 1) + [2000])


def export_models(run: Run, *, folder: str = "export", metrics: Scores | None = None) -> Path:
    """Write the EMA generator and the discriminator (safetensors + config) with samples into out/<folder>,
    and `metrics` (scores of this very generator) as its metrics.json, which the card states."""
    accelerator, out, ema, cfg, state = run.accelerator, run.out, run.ema, run.cfg, run.state
    export_dir = out / folder
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        staging = out / f".{folder}-staging"
        shutil.rmtree(staging, ignore_errors=True)
        recalibrate_batch_norm(ema.model)
        save_model(ema.model, staging)
        save_model(accelerator.unwrap_model(run.discriminator), staging / DISCRIMINATOR_FOLDER)
        grid = class_grid(ema.model, seeds=range(cfg.sample_seeds))
        save_png(grid, staging / "samples.png", scale=grid_scale(ema.model.model_config))
        timelapse = write_timelapse(out, shrink=grid_scale(ema.model.model_config))
        if timelapse:
            shutil.copyfile(timelapse, staging / "timelapse.gif")
        shutil.copyfile(out / "training_config.json", staging / "training_config.json")
        if (out / EVALS_NAME).is_file():  # the learning curve so far, which the card shows
            shutil.copyfile(out / EVALS_NAME, staging / EVALS_NAME)
        summary = {"steps": state.step, "train_seconds": round(state.train_seconds, 1),
                   "train_hours": round(state.train_seconds / 3600, 3),
                   "images_seen": state.step * cfg.batch_size * cfg.d_steps * accelerator.num_processes,
                   "processes": accelerator.num_processes, "device": accelerator.device.type,
                   "mixed_precision": accelerator.mixed_precision}
        if cfg.init_from:
            summary["earlier_stages"] = earlier_stages(cfg.init_from, this_run=cfg.output_dir)
        (staging / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if run.pool is not None:
            save_real_pool(run.pool.images, run.pool.labels, staging, split=cfg.real_pool_split)
        if metrics is not None:
            (staging / METRICS_NAME).write_text(json.dumps(metrics.to_dict(), indent=2) + "\n")
        write_model_card(staging, repo_id=cfg.push_to_hub)
        # Swap the finished folder in, so the export is never seen half-written.
        previous = out / f".{folder}-previous"
        shutil.rmtree(previous, ignore_errors=True)
        if export_dir.exists():
            os.replace(export_dir, previous)
        os.replace(staging, export_dir)
        shutil.rmtree(previous, ignore_errors=True)
    accelerator.wait_for_everyone()
    return export_dir


def earlier_stages(source: str, this_run: str | None = None) -> list[dict[str, Any]]:
    """The training stages of an --init-from model, oldest first, from its folder's records: its own earlier
    stages, then its run (command, steps, hours, notes). A Hub repo is named only (its records are not fetched).
    Where the folder now holds an export of `this_run` itself (a run whose start model was replaced by its own
    export, then resumed), that export's earlier stages are this run's: its steps are already this run's."""
    folder = Path(source)
    summary = read_json(folder / "training_summary.json") if folder.is_dir() else None
    train = read_json(folder / "training_config.json") if folder.is_dir() else None
    if not summary or not train:
        return [{"model": source}]
    its_run = train.get("output_dir")
    if this_run is not None and its_run and Path(its_run).resolve() == Path(this_run).resolve():
        return summary.get("earlier_stages", [])
    stage = {"command": training_command(train), "steps": summary.get("steps"),
             "train_hours": summary.get("train_hours"), "notes": summary.get("notes")}
    return [*summary.get("earlier_stages", []), {k: v for k, v in stage.items() if v is not None}]


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def held_out_pool(cfg: TrainConfig, model_config: ModelConfig) -> ImageData | None:
    """A class-balanced set of real images from a split training never sees, for the quiz; None if there is none."""
    if not cfg.real_pool_split or cfg.real_pool_size <= 0:
        return None
    if cfg.real_pool_split == cfg.split:
        warn(f"no real pool exported: --real-pool-split {cfg.real_pool_split} is the training split")
        return None
    try:
        held_out = load_image_data(
            cfg.dataset, split=cfg.real_pool_split, image_size=cfg.image_size, channels=model_config.channels,
            image_column=cfg.image_column, label_column=cfg.label_column,
        )
    except GanError as error:
        warn(f"no real pool exported ({error})")
        return None
    if held_out.class_names != model_config.class_names:
        warn(f"no real pool exported: split {cfg.real_pool_split} has other classes than {cfg.split}")
        return None
    return balanced_subset(held_out, cfg.real_pool_size, seed=cfg.seed)


def prepare_push(cfg: TrainConfig) -> None:
    """Create the target repo now, so a bad id, a missing token or a refused namespace stops the run before training."""
    if not cfg.push_to_hub:
        return
    from huggingface_hub import HfApi

    with hub_errors(check_repo_id(cfg.push_to_hub), None, writing=True):
        HfApi().create_repo(cfg.push_to_hub, private=cfg.hub_private or None, exist_ok=True)


def push_export(export_dir: Path, cfg: TrainConfig, message: str, *, final: bool) -> None:
    """Publish the export as one commit; a failed push during training only warns (training goes on)."""
    try:
        url = publish_folder(export_dir, cfg.push_to_hub, private=cfg.hub_private or None, commit_message=message,
                             real_pool=cfg.hub_real_pool)
        print(f"Pushed {export_dir} to {cfg.push_to_hub}: {url}", flush=True)
    except GanError as error:
        hint = f"push it later with `python -m gan.hub push {export_dir} {cfg.push_to_hub}`"
        if final:
            raise GanError(f"training finished and the model is exported to {export_dir}, but the push failed: "
                           f"{error}; {hint}") from None
        warn(f"push at {message.lower()} failed ({error}); training goes on")
