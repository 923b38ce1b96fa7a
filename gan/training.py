"""The training loop: accelerate runs it on one CPU, one GPU or many processes (DDP) without changes.

Output folder of a run:
    training_config.json   the TrainConfig of the run (a rerun must match it to resume)
    checkpoints/step_N/    full state for resume (models, optimizers, EMA, step, RNG); only complete ones appear
    samples/step_N.png     fixed-noise grids, one row per class, seeds 0..sample_seeds-1 (ψ = 1)
    timelapse.gif          those grids in order
    evals.jsonl            the scores of every --eval-every evaluation (the run's learning curve)
    export/                EMA generator + discriminator as safetensors (see gan/hub.py), samples, timelapse
    logs/<project>/        tracker logs (e.g. TensorBoard: losses, images/s, scores, sample grids) with --log-with
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate import tracking as accelerate_tracking
from accelerate.utils import (DataLoaderConfiguration, ProjectConfiguration, broadcast, broadcast_object_list,
                              set_seed)
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .augment import diff_augment, parse_policy
from .config import ModelConfig, TrainConfig
from .card import read_json, training_command, write_model_card
from .data import ImageData, ImageDataset, balanced_subset, collate_batch, load_image_data, to_model_range
from .ema import EMA, recalibrate_batch_norm
from .errors import GanError
from .files import DISCRIMINATOR_FOLDER, save_model, save_real_pool
from .hub import check_repo_id, hub_errors
from .publish import publish_folder
from .losses import discriminator_loss, generator_loss
from .metrics import METRICS_NAME
from .models import Discriminator, Generator
from .monitor import (BEST_FOLDER, QualityMonitor, best_score_on_disk, c2st_size, selection_score, summary_line,
                      tracker_values)
from .sampling import class_grid, save_gif, save_png

CHECKPOINT_PREFIX = "step_"
EVALS_NAME = "evals.jsonl"  # every --eval-every evaluation of a run, one JSON object a line
PARTIAL_PREFIX = ".partial-"  # a checkpoint is written under this name and renamed when complete


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


def default_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """This project's generator and discriminator; benchmarks pass other builders to compare recipes."""
    return Generator(config), Discriminator(config)


def train(cfg: TrainConfig, build_models: Callable[[ModelConfig], tuple[nn.Module, nn.Module]] = default_models,
          *, clock: Callable[[], float] = time.perf_counter) -> Path:
    """Train a class-conditional GAN as `cfg` says; returns the export folder. `clock` (seconds) times the steps
    for --max-minutes and images/s; tests pass a fake one, so that the budget does not depend on machine speed."""
    out = Path(cfg.output_dir)
    check_launch()
    trackers = resolve_trackers(cfg.log_with)
    accelerator = Accelerator(
        # Without a GPU, say so: processes started by torchrun (`accelerate launch --multi_gpu`) then form a
        # gloo group on the CPU instead of each training alone.
        cpu=not torch.accelerator.is_available(),
        mixed_precision=cfg.mixed_precision,  # None: accelerate's own choice (`accelerate launch`/config, else "no")
        log_with=trackers or None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=cfg.seed),
    )
    check_precision(accelerator.mixed_precision, accelerator.device.type, from_flag=cfg.mixed_precision is not None)
    policy = parse_policy(cfg.diffaugment)
    if accelerator.device.type == "cpu":
        set_cpu_threads(cfg.cpu_threads, accelerator.num_processes)

    # Data and models: identical initial weights on every process, then per-process noise.
    data = load_image_data(
        cfg.dataset, split=cfg.split, image_size=cfg.image_size, channels=cfg.channels,
        image_column=cfg.image_column, label_column=cfg.label_column,
    )
    model_config = model_config_for(cfg, data)
    prepare_run_folder(out, cfg, accelerator)
    pool = monitor = None
    if accelerator.is_main_process:
        prepare_push(cfg)
        pool = held_out_pool(cfg, model_config)
        monitor = QualityMonitor(cfg, model_config, data) if cfg.eval_every else None
    set_seed(cfg.seed)
    generator, discriminator = build_models(model_config)
    if cfg.memory_format == "channels_last":  # before the EMA copy, so that it samples in the same layout
        generator = generator.to(memory_format=torch.channels_last)
        discriminator = discriminator.to(memory_format=torch.channels_last)
    ema = EMA(generator, decay=cfg.ema_decay, start=cfg.ema_start)
    set_seed(cfg.seed, device_specific=True)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr_g, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=cfg.lr_d, betas=betas)
    loader = make_loader(data, cfg, accelerator)
    generator, discriminator, opt_g, opt_d, loader = accelerator.prepare(generator, discriminator, opt_g, opt_d, loader)
    ema.model.to(accelerator.device)
    state = TrainingState()
    accelerator.register_for_checkpointing(ema, state)
    if resume_checkpoint(accelerator, out, cfg.resume) is None and cfg.init_from:
        start_from_export(cfg.init_from, accelerator.unwrap_model(generator), accelerator.unwrap_model(discriminator),
                          ema)
    # A checkpoint restores the optimizers' learning rates and betas too; the flags win, so a run resumed with a
    # lower --lr-g/--lr-d (the cure the non-finite-loss error advises) really trains at the new rate.
    for optimizer, lr in ((opt_g, cfg.lr_g), (opt_d, cfg.lr_d)):
        for group in optimizer.param_groups:
            group["lr"], group["betas"] = lr, betas
    # best/ on disk is the reference: it is what a better evaluation must beat (and what a changed
    # --c2st-per-class makes incomparable, see best_score_on_disk).
    state.best_score = best_score_on_disk(out, c2st_size(cfg, model_config, data))
    if trackers:
        accelerator.init_trackers(cfg.tracker_project, config=cfg.to_dict())

    batches = endless_batches(accelerator, loader, first_batch=state.step * cfg.d_steps)
    progress = tqdm(total=cfg.max_steps, initial=state.step, disable=not accelerator.is_local_main_process)
    raw_d = accelerator.unwrap_model(discriminator)
    images_per_step = cfg.batch_size * cfg.d_steps * accelerator.num_processes
    speed_since, speed_step = clock(), state.step
    step_started = speed_since
    scores = None
    while state.step < cfg.max_steps and not time_is_up(accelerator, state, cfg):
        # 1. Discriminator: real batches against fresh fakes of the same classes, both augmented alike.
        for _ in range(cfg.d_steps):
            real_u8, labels = next(batches)
            real = to_model_range(real_u8)
            z = torch.randn(real.shape[0], model_config.latent_dim, device=real.device)
            with torch.no_grad(), accelerator.autocast():
                fake = generator(z, labels)
            with accelerator.autocast():
                logits = discriminator(diff_augment(torch.cat([real, fake.to(real.dtype)]), policy), labels.repeat(2))
                real_logits, fake_logits = logits.chunk(2)
                loss_d = discriminator_loss(real_logits.float(), fake_logits.float(), cfg.loss)
            opt_d.zero_grad(set_to_none=True)
            accelerator.backward(loss_d)
            opt_d.step()

        # 2. Generator: fool the discriminator. D is called unwrapped with frozen weights, so DDP neither
        #    synchronises nor computes gradients it would throw away.
        raw_d.requires_grad_(False)
        z = torch.randn(real.shape[0], model_config.latent_dim, device=real.device)
        with accelerator.autocast():
            loss_g = generator_loss(raw_d(diff_augment(generator(z, labels), policy), labels).float(), cfg.loss)
        opt_g.zero_grad(set_to_none=True)
        accelerator.backward(loss_g)
        opt_g.step()
        raw_d.requires_grad_(True)

        # 3. EMA of the generator's weights, then bookkeeping.
        ema.update(accelerator.unwrap_model(generator), state.step)
        state.step += 1
        now = clock()
        state.train_seconds, step_started = state.train_seconds + now - step_started, now
        progress.update(1)
        step, last = state.step, state.step == cfg.max_steps or time_is_up(accelerator, state, cfg)
        if step % cfg.log_every == 0 or last:
            now = clock()
            speed = images_per_step * (step - speed_step) / max(now - speed_since, 1e-9)
            losses = check_losses(accelerator, loss_d, loss_g, step)
            progress.set_postfix(loss_d=f"{losses['loss_d']:.3f}", loss_g=f"{losses['loss_g']:.3f}", img_s=f"{speed:.0f}")
            accelerator.log({**losses, "images_per_s": speed}, step=step)
            speed_since, speed_step = now, step
        if due(step, cfg.sample_every, last) and accelerator.is_main_process:
            log_sample_grid(accelerator, save_sample_grid(ema.model, out, step, cfg.sample_seeds), step)
        if cfg.eval_every and due(step, cfg.eval_every, last):
            scores = evaluate_and_keep_best(accelerator, monitor, out, ema, discriminator, cfg, pool, state)
        if due(step, cfg.checkpoint_every, last):
            check_losses(accelerator, loss_d, loss_g, step)
            save_checkpoint(accelerator, out, step, cfg.checkpoints_total_limit)
        pushing = bool(cfg.push_to_hub) and due(step, cfg.push_every, False) and not last
        if (due(step, cfg.export_every, False) or pushing) and not last:
            export_dir = export_models(accelerator, out, ema, discriminator, cfg, pool, state)
            if pushing and accelerator.is_main_process:
                push_export(export_dir, cfg, f"Step {step}", final=False)
    progress.close()

    final_scores = scores if scores and scores["step"] == state.step else None
    export_dir = export_models(accelerator, out, ema, discriminator, cfg, pool, state, metrics=final_scores)
    if cfg.push_to_hub and accelerator.is_main_process:
        push_export(export_dir, cfg, f"Training finished at step {state.step}", final=True)
    accelerator.end_training()
    return export_dir


def model_config_for(cfg: TrainConfig, data: ImageData) -> ModelConfig:
    """The architecture for this run: sizes from the flags, channels and classes from the data."""
    return ModelConfig(
        image_size=cfg.image_size,
        channels=int(data.images.shape[1]),
        num_classes=len(data.class_names),
        class_names=list(data.class_names),
        latent_dim=cfg.latent_dim,
        g_width=cfg.g_width,
        d_width=cfg.d_width,
        output_gain=cfg.output_gain,
    )


# pip requirement of each accelerate tracker, for the error that names a missing one
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "comet_ml": "comet-ml",
                    "aim": "aim<4", "mlflow": "mlflow", "clearml": "clearml", "dvclive": "dvclive",
                    "swanlab": "swanlab"}


def tracker_names(log_with: str | None) -> list[str]:
    """The names in a --log-with value ("tensorboard, WandB"), lower case, without blanks or repeats."""
    return list(dict.fromkeys(name.strip().lower() for name in (log_with or "").split(",") if name.strip()))


def resolve_trackers(log_with: str | None) -> list[str]:
    """The accelerate trackers that --log-with names (comma-separated; "all": every installed one). Unknown and
    uninstalled ones are refused here, before any work: accelerate itself only skips a missing tracker with a
    debug message, and the run would train unlogged."""
    names = tracker_names(log_with)
    known = list(accelerate_tracking.LOGGER_TYPE_TO_CLASS)
    unknown = [name for name in names if name != "all" and name not in known]
    if unknown:
        raise GanError(f"--log-with: unknown tracker {', '.join(unknown)}; choose from {', '.join(known)}, "
                       "or all (every installed one); several are separated by commas, e.g. tensorboard,wandb")
    installed = [tracker.value for tracker in accelerate_tracking.get_available_trackers()]
    if "all" in names:
        if not installed:
            raise GanError("--log-with all: no tracker is installed; pip install tensorboard (or any of "
                           f"{', '.join(known)})")
        return installed
    missing = [name for name in names if name not in installed]
    if missing:
        packages = [TRACKER_PACKAGES.get(name, name) for name in missing]
        raise GanError(f"--log-with {','.join(names)}: {' and '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} not installed; "
                       f"pip install {' '.join(repr(p) if '<' in p else p for p in packages)}")
    return names


def check_precision(mixed_precision: str, device_type: str, *, from_flag: bool) -> None:
    """Refuse fp16 on a CPU: accelerate accepts it there but trains in fp32 (no autocast, no scaler), so the run
    and its training_summary.json would claim a precision that was never used."""
    if mixed_precision == "fp16" and device_type == "cpu":
        source = ("--mixed-precision fp16" if from_flag
                  else "mixed precision fp16 (set by `accelerate launch --mixed_precision` or `accelerate config`)")
        raise GanError(f"{source} needs a GPU, and this run is on the CPU; use --mixed-precision no "
                       "(or bf16, which runs on CPUs but ~12x slower than fp32 on those without AMX)")


def check_launch() -> None:
    """Refuse the silent single process that `accelerate launch --cpu --num_processes N` (N > 1) starts without mpirun."""
    asked_for_cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    rendezvous_set = "MASTER_PORT" in os.environ  # the simple launcher sets it only when N > 1
    distributed = any(k in os.environ for k in ("LOCAL_RANK", "WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE"))
    if asked_for_cpu and rendezvous_set and not distributed:
        raise GanError(
            "accelerate launch --cpu starts several processes only through mpirun (--mpirun_hostfile); "
            "on a machine without a GPU run `accelerate launch --multi_gpu --num_processes N train.py ...` instead "
            "(torchrun + gloo on the CPU), or drop --num_processes for one process"
        )


def set_cpu_threads(threads: int | None, num_processes: int) -> None:
    """Use the cores we have: `accelerate launch` sets OMP_NUM_THREADS=1 where it counts one physical core."""
    if threads is None:
        threads = max(1, len(os.sched_getaffinity(0)) // num_processes)
    torch.set_num_threads(threads)


def make_loader(data: ImageData, cfg: TrainConfig, accelerator: Accelerator) -> DataLoader:
    """Shuffled fixed-size batches; accelerate shards them across processes and seeds the order per epoch."""
    if len(data.labels) < cfg.batch_size * accelerator.num_processes:
        raise GanError(
            f"the dataset has {len(data.labels)} images, fewer than one batch of {cfg.batch_size} per process; "
            "lower --batch-size or use more data"
        )
    return DataLoader(
        ImageDataset(data), batch_size=cfg.batch_size, shuffle=True, drop_last=True,
        collate_fn=collate_batch, num_workers=cfg.num_workers,
    )


def endless_batches(accelerator: Accelerator, loader: DataLoader, first_batch: int) -> Iterator:
    """Batches epoch after epoch, starting at batch `first_batch` of the run, in the same order as an unbroken run."""
    epoch, skip = divmod(first_batch, len(loader))
    while True:
        epoch_loader = accelerator.skip_first_batches(loader, skip) if skip else loader
        epoch_loader.set_epoch(epoch)  # the sampler's permutation is seeded by data_seed + epoch
        batches = iter(epoch_loader)
        # Starting an epoch draws a worker seed from the global RNG. Undo that, so the noise and augmentation
        # stream does not depend on where epochs (or a resume's skipped epoch) begin.
        with torch.random.fork_rng(devices=[]):
            first = next(batches)
        yield first
        yield from batches
        epoch, skip = epoch + 1, 0


def time_is_up(accelerator: Accelerator, state: TrainingState, cfg: TrainConfig) -> bool:
    """Whether --max-minutes is spent; processes follow the main one, so they all stop at the same step."""
    if cfg.max_minutes <= 0:
        return False
    flag = torch.tensor([float(state.out_of_time(cfg))], device=accelerator.device)
    return bool(broadcast(flag).item()) if accelerator.num_processes > 1 else bool(flag.item())


def evaluate_and_keep_best(accelerator: Accelerator, monitor: QualityMonitor | None, out: Path, ema: EMA,
                           discriminator, cfg: TrainConfig, pool: ImageData | None,
                           state: TrainingState) -> dict[str, Any]:
    """Score the EMA generator (on the main process); export it to out/best when its selection score (realism by
    C2ST and FD, see monitor.selection_score) is the lowest so far."""
    scores = None
    if accelerator.is_main_process:
        scores = monitor.score(recalibrate_batch_norm(ema.model), state.step)
        scores["train_minutes"] = round(state.train_seconds / 60, 2)  # the x axis of quality-per-CPU-minute curves
        print(summary_line(scores), flush=True)
        with open(out / EVALS_NAME, "a") as log:  # one line per evaluation: the run's learning curve
            log.write(json.dumps(scores) + "\n")
    scores = broadcast_object_list([scores])[0]
    accelerator.log(tracker_values(scores), step=state.step)
    if selection_score(scores) < state.best_score:
        state.best_score = selection_score(scores)
        export_models(accelerator, out, ema, discriminator, cfg, pool, state, folder=BEST_FOLDER, metrics=scores)
    return scores


def due(step: int, every: int, last: bool) -> bool:
    """Whether a periodic action (every N steps, or only at the end when N is 0) runs at this step."""
    return last or (every > 0 and step % every == 0)


def check_losses(accelerator: Accelerator, loss_d: torch.Tensor, loss_g: torch.Tensor, step: int) -> dict[str, float]:
    """Average the losses over processes; stop with a clear error, before anything is saved, if one is not finite."""
    losses = accelerator.reduce(torch.stack([loss_d.detach(), loss_g.detach()]).float(), reduction="mean")
    values = {"loss_d": losses[0].item(), "loss_g": losses[1].item()}
    for name, value in values.items():
        if not math.isfinite(value):
            raise GanError(
                f"{name} became {value} at step {step}; nothing from this step was saved. Resume from the last "
                "checkpoint with lower --lr-d/--lr-g, or try --loss nonsaturating"
            )
    return values


# ---------------------------------------------------------------------------------------------- run folder, resume


def prepare_run_folder(out: Path, cfg: TrainConfig, accelerator: Accelerator) -> None:
    """Create the folder, refuse one that holds a different run, drop partial checkpoints, record the config."""
    config_path = out / "training_config.json"
    if config_path.exists():
        previous = json.loads(config_path.read_text())
        previous = {**VALUES_BEFORE_THEIR_FLAGS, **previous}
        changed = [k for k in RUN_IDENTITY if previous.get(k) != getattr(cfg, k)]
        if changed and list_checkpoints(out):
            details = ", ".join(f"{k}: {previous.get(k)!r} -> {getattr(cfg, k)!r}" for k in changed)
            raise GanError(
                f"{out} holds checkpoints of a run with other settings ({details}); "
                "rerun with the same flags to resume, or choose a new --output-dir"
            )
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)
        for partial in (out / "checkpoints").glob(PARTIAL_PREFIX + "*"):
            shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving
        config_path.write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    accelerator.wait_for_everyone()


# What runs of versions that lacked a flag trained with: their folders resume with it set so.
VALUES_BEFORE_THEIR_FLAGS = {"output_gain": 1.0}
# Flags that define what a checkpoint holds; changing any other flag (max steps, logging...) still resumes.
RUN_IDENTITY = ("dataset", "split", "image_size", "channels", "latent_dim", "g_width", "d_width", "output_gain",
                "batch_size", "seed")


def start_from_export(source: str, generator, discriminator, ema: EMA) -> None:
    """Warm start (fine-tuning, or carrying a run across machines): weights of an exported model, fresh optimizers.
    The export's EMA generator starts both the live generator and the EMA; its config must match this run's."""
    from .models import load_discriminator, load_generator

    exported_g, exported_d = load_generator(source), load_discriminator(source)
    for name, mine, theirs in (("generator", generator, exported_g), ("discriminator", discriminator, exported_d)):
        # Only the architecture must match: class names may differ, so a model of one dataset can start
        # training on another with as many classes (transfer, which converges much faster on small data).
        # The output gain has no weights: a tanh model may start a run that trains it to saturate.
        theirs_arch = replace(theirs.model_config, class_names=mine.model_config.class_names,
                              output_gain=mine.model_config.output_gain)
        if theirs_arch != mine.model_config:
            raise GanError(f"--init-from {source}: its {name} architecture differs from this run's "
                           f"({theirs.model_config.to_dict()} vs {mine.model_config.to_dict()}); use matching flags")
        mine.load_state_dict(theirs.state_dict())
    ema.model.load_state_dict(exported_g.state_dict())


def earlier_stages(source: str) -> list[dict[str, Any]]:
    """The training stages of an --init-from model, oldest first, from its folder's records: its own earlier
    stages, then its run (command, steps, hours, notes). A Hub repo is named only (its records are not fetched)."""
    folder = Path(source)
    summary = read_json(folder / "training_summary.json") if folder.is_dir() else None
    train = read_json(folder / "training_config.json") if folder.is_dir() else None
    if not summary or not train:
        return [{"model": source}]
    stage = {"command": training_command(train), "steps": summary.get("steps"),
             "train_hours": summary.get("train_hours"), "notes": summary.get("notes")}
    return [*summary.get("earlier_stages", []), {k: v for k, v in stage.items() if v is not None}]


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


def save_checkpoint(accelerator: Accelerator, out: Path, step: int, total_limit: int) -> Path:
    """Write the full state under a temporary name, then rename it: a killed run never leaves a half checkpoint."""
    folder = out / "checkpoints"
    final, partial = folder / f"{CHECKPOINT_PREFIX}{step:08d}", folder / f"{PARTIAL_PREFIX}{step:08d}"
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


# ---------------------------------------------------------------------------------------------- samples, export


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


def export_models(accelerator: Accelerator, out: Path, ema: EMA, discriminator, cfg: TrainConfig,
                  pool: ImageData | None, state: TrainingState, *, folder: str = "export",
                  metrics: dict[str, Any] | None = None) -> Path:
    """Write the EMA generator and the discriminator (safetensors + config) with samples into out/<folder>,
    and `metrics` (scores of this very generator) as its metrics.json, which the card states."""
    export_dir = out / folder
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        staging = out / f".{folder}-staging"
        shutil.rmtree(staging, ignore_errors=True)
        recalibrate_batch_norm(ema.model)
        save_model(ema.model, staging)
        save_model(accelerator.unwrap_model(discriminator), staging / DISCRIMINATOR_FOLDER)
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
            summary["earlier_stages"] = earlier_stages(cfg.init_from)
        (staging / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if pool is not None:
            save_real_pool(pool.images, pool.labels, staging, split=cfg.real_pool_split)
        if metrics is not None:
            (staging / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
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


# ---------------------------------------------------------------------------------------------- real pool, Hub


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
        url = publish_folder(export_dir, cfg.push_to_hub, private=cfg.hub_private or None, commit_message=message)
        print(f"Pushed {export_dir} to {cfg.push_to_hub}: {url}", flush=True)
    except GanError as error:
        hint = f"push it later with `python -m gan.hub push {export_dir} {cfg.push_to_hub}`"
        if final:
            raise GanError(f"training finished and the model is exported to {export_dir}, but the push failed: "
                           f"{error}; {hint}") from None
        warn(f"push at {message.lower()} failed ({error}); training goes on")
