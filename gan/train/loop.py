"""The training loop: accelerate runs it on one CPU, one GPU or many processes (DDP) without changes.

This module is the loop and its setup; a step's parts are in gan/train/steps.py, checkpoints and resume in
gan/train/checkpoints.py, samples, export and pushes in gan/train/export.py, and what they share in gan/train/state.py.

Output folder of a run:
    training_config.json   the TrainConfig of the run (a rerun must match it to resume)
    checkpoints/step_N/    full state for resume (models, optimizers, EMA, step, RNG); only complete ones appear
    samples/step_N.png     fixed-noise grids, one row per class, seeds 0..sample_seeds-1 (ψ = 1)
    timelapse.gif          those grids in order
    evals.jsonl            the scores of every --eval-every evaluation (the run's learning curve)
    export/                EMA generator + discriminator as safetensors (gan/train/export.py, gan/model_files.py),
                           samples
    logs/<project>/        tracker logs (e.g. TensorBoard: losses, images/s, scores, sample grids) with --log-with
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate import tracking as accelerate_tracking
from accelerate.utils import (DataLoaderConfiguration, ProjectConfiguration, broadcast, broadcast_object_list,
                              set_seed)
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..config import ModelConfig, TrainConfig
from ..config import parse_policy
from ..data import ImageData, ImageDataset, class_shares, collate_batch, load_image_data, white_plateau_shares
from ..errors import GanError
from ..models import Discriminator, Generator
from ..quality.scores import Scores
from .checkpoints import prepare_run_folder, resume_checkpoint, save_checkpoint, start_from_export
from .ema import EMA, recalibrate_batch_norm
from .export import (EVALS_NAME, export_models, held_out_pool, log_sample_grid, prepare_push, push_export,
                     save_sample_grid)
from .monitor import (BEST_FOLDER, QualityMonitor, best_score_on_disk, c2st_size, selection_score, summary_line,
                      tracker_values)
from .state import Run, TrainingState
from .steps import StepModels, d_step, ema_step, g_step


def default_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """This project's generator and discriminator; benchmarks pass other builders to compare recipes."""
    return Generator(config), Discriminator(config)


def train(cfg: TrainConfig, build_models: Callable[[ModelConfig], tuple[nn.Module, nn.Module]] = default_models,
          *, clock: Callable[[], float] = time.perf_counter) -> Path:
    """Train a class-conditional GAN as `cfg` says; returns the export folder. `clock` (seconds) times the steps
    for --max-minutes and images/s; tests pass a fake one, so that the budget does not depend on machine speed."""
    cfg.validate()  # configs built in code (bench/, tests) are checked as train.py's flags are
    check_launch()
    trackers = resolve_trackers(cfg.log_with)
    accelerator = make_accelerator(cfg, trackers)
    run, models, loader, monitor = set_up_run(cfg, accelerator, build_models)
    if trackers:
        accelerator.init_trackers(cfg.tracker_project, config=cfg.to_dict())
    state = run.state
    batches = endless_batches(accelerator, loader, first_batch=state.step * cfg.d_steps)
    progress = Progress(run, clock)
    scores = None
    while state.step < cfg.max_steps and not time_is_up(accelerator, state, cfg):
        set_learning_rates(models, cfg, state.step)
        for d_index in range(cfg.d_steps):
            real_u8, labels = next(batches)
            loss_d = d_step(models, real_u8, labels, step=state.step * cfg.d_steps + d_index)
        loss_g = g_step(models, labels, real_u8)
        ema_step(run.ema, models, state.step)
        state.step += 1
        progress.step_done()
        last = state.step == cfg.max_steps or time_is_up(accelerator, state, cfg)
        scores = periodic_actions(run, monitor, progress, loss_d, loss_g, last) or scores
    progress.close()

    final_scores = scores if scores and scores.step == state.step else None
    export_dir = export_models(run, metrics=final_scores)
    if cfg.push_to_hub and accelerator.is_main_process:
        push_export(export_dir, cfg, f"Training finished at step {state.step}", final=True)
    accelerator.end_training()
    return export_dir


def periodic_actions(run: Run, monitor: QualityMonitor | None, progress: Progress, loss_d: torch.Tensor,
                     loss_g: torch.Tensor, last: bool) -> Scores | None:
    """What falls due after this step: logging, a sample grid, an evaluation (its scores are returned), a
    checkpoint, an export and a push. The last step does all but the export and push, which `train` does."""
    cfg, accelerator, step = run.cfg, run.accelerator, run.state.step
    scores = losses = None
    if step % cfg.log_every == 0 or last:
        losses = check_losses(accelerator, loss_d, loss_g, step)
        progress.log(losses)
    if due(step, cfg.sample_every, last) and accelerator.is_main_process:
        log_sample_grid(accelerator, save_sample_grid(run.ema.model, run.out, step, cfg.sample_seeds), step)
    if cfg.eval_every and due(step, cfg.eval_every, last):
        scores = evaluate_and_keep_best(run, monitor)
    if due(step, cfg.checkpoint_every, last):
        if losses is None:  # never a checkpoint of non-finite losses; one all-reduce where the log did it already
            check_losses(accelerator, loss_d, loss_g, step)
        save_checkpoint(accelerator, run.out, step, cfg.checkpoints_total_limit)
    pushing = bool(cfg.push_to_hub) and due(step, cfg.push_every, False) and not last
    if (due(step, cfg.export_every, False) or pushing) and not last:
        export_dir = export_models(run)
        if pushing and accelerator.is_main_process:
            push_export(export_dir, cfg, f"Step {step}", final=False)
    return scores


def make_accelerator(cfg: TrainConfig, trackers: list[str]) -> Accelerator:
    """The run's Accelerator, its precision checked and its CPU threads set."""
    out = Path(cfg.output_dir)
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
    if accelerator.device.type == "cpu":
        set_cpu_threads(cfg.cpu_threads, accelerator.num_processes)
    return accelerator


def set_up_run(cfg: TrainConfig, accelerator: Accelerator,
               build_models: Callable[[ModelConfig], tuple[nn.Module, nn.Module]]
               ) -> tuple[Run, StepModels, DataLoader, QualityMonitor | None]:
    """Data, run folder, models, EMA and optimizers, prepared by accelerate and restored from the last checkpoint
    (or started from --init-from); the main process also gets the held-out pool and the quality monitor."""
    out = Path(cfg.output_dir)
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
    # Identical initial weights on every process, then per-process noise.
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
    run = Run(accelerator, out, cfg, ema, discriminator, pool, TrainingState())
    accelerator.register_for_checkpointing(ema, run.state)
    if resume_checkpoint(accelerator, out, cfg.resume) is None and cfg.init_from:
        start_from_export(cfg.init_from, accelerator.unwrap_model(generator), accelerator.unwrap_model(discriminator),
                          ema)
    # A checkpoint restores the optimizers' betas (and rates, which set_learning_rates sets anew each step) too; the
    # flags win, so a run resumed with a lower --lr-g/--lr-d (the non-finite-loss error's cure) trains at the new rate.
    for optimizer in (opt_g, opt_d):
        for group in optimizer.param_groups:
            group["betas"] = betas
    # best/ on disk is the reference: it is what a better evaluation must beat (and what a changed
    # --c2st-per-class makes incomparable, see best_score_on_disk).
    run.state.best_score = best_score_on_disk(out, c2st_size(cfg, model_config, data))
    policy = parse_policy(cfg.diffaugment)
    models = StepModels(accelerator, generator, discriminator, opt_g, opt_d, policy, cfg.loss, model_config.latent_dim,
                        penalty=cfg.gradient_penalty, penalty_every=cfg.penalty_every)
    return run, models, loader, monitor


class Progress:
    """The progress bar, training time and images/s of a run: `step_done` after each step adds its time to the
    run's training seconds (what --max-minutes counts); `log` shows and logs the losses and the speed since the
    last log."""

    def __init__(self, run: Run, clock: Callable[[], float]):
        self.run, self.clock = run, clock
        cfg, accelerator = run.cfg, run.accelerator
        self.images_per_step = cfg.batch_size * cfg.d_steps * accelerator.num_processes
        self.bar = tqdm(total=cfg.max_steps, initial=run.state.step, disable=not accelerator.is_local_main_process)
        self.step_started = self.speed_since = clock()
        self.speed_step = run.state.step

    def step_done(self) -> None:
        now = self.clock()
        self.run.state.train_seconds += now - self.step_started
        self.step_started = now
        self.bar.update(1)

    def log(self, losses: dict[str, float]) -> None:
        now, step = self.clock(), self.run.state.step
        speed = self.images_per_step * (step - self.speed_step) / max(now - self.speed_since, 1e-9)
        self.bar.set_postfix(loss_d=f"{losses['loss_d']:.3f}", loss_g=f"{losses['loss_g']:.3f}", img_s=f"{speed:.0f}")
        self.run.accelerator.log({**losses, "images_per_s": speed}, step=step)
        self.speed_since, self.speed_step = now, step

    def close(self) -> None:
        self.bar.close()


def model_config_for(cfg: TrainConfig, data: ImageData) -> ModelConfig:
    """The architecture for this run: sizes from the flags, channels and classes from the data (and, with
    --white-plateau, the data's white plateaus)."""
    plateau, peaks = white_plateau_shares(data.images) if cfg.white_plateau else ([], [])
    return ModelConfig(
        image_size=cfg.image_size,
        channels=int(data.images.shape[1]),
        num_classes=len(data.class_names),
        class_names=list(data.class_names),
        latent_dim=cfg.latent_dim,
        g_width=cfg.g_width,
        d_width=cfg.d_width,
        output_gain=cfg.output_gain,
        white_gain=cfg.white_gain,
        output_norm=cfg.output_norm,
        white_dither=cfg.white_dither,
        white_slope=cfg.white_slope,
        white_plateau=plateau,
        white_peaks=peaks,
        g_noise=cfg.g_noise,
        d_norm=cfg.d_norm,
        d_histogram=cfg.d_histogram,
        d_patch=cfg.d_patch,
        d_texture=cfg.d_texture,
        class_frequencies=class_shares(data.labels, len(data.class_names)),
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


def learning_rate_scale(step: int, cfg: TrainConfig) -> float:
    """What --lr-decay-steps N leaves of the learning rates at a step (0-based): 1 until the last N steps before
    --max-steps, then falling linearly, 1/N at the last one. Annealing lets a game that circles its equilibrium
    settle; it is a function of the step alone, so a resumed run (same --max-steps) continues the same schedule."""
    if cfg.lr_decay_steps <= 0:
        return 1.0
    return min(1.0, (cfg.max_steps - step) / cfg.lr_decay_steps)


def set_learning_rates(models: StepModels, cfg: TrainConfig, step: int) -> None:
    """Both optimizers' rates for this step: the flags' --lr-g and --lr-d, scaled by the decay's schedule."""
    scale = learning_rate_scale(step, cfg)
    for optimizer, lr in ((models.opt_g, cfg.lr_g), (models.opt_d, cfg.lr_d)):
        for group in optimizer.param_groups:
            group["lr"] = lr * scale


def time_is_up(accelerator: Accelerator, state: TrainingState, cfg: TrainConfig) -> bool:
    """Whether --max-minutes is spent; processes follow the main one, so they all stop at the same step."""
    if cfg.max_minutes <= 0:
        return False
    flag = torch.tensor([float(state.out_of_time(cfg))], device=accelerator.device)
    return bool(broadcast(flag).item()) if accelerator.num_processes > 1 else bool(flag.item())


def evaluate_and_keep_best(run: Run, monitor: QualityMonitor | None) -> Scores:
    """Score the EMA generator (on the main process); export it to out/best when its selection score (realism by
    C2ST and FD, see monitor.selection_score) is the lowest so far."""
    accelerator, out, state = run.accelerator, run.out, run.state
    scores = None
    if accelerator.is_main_process:
        scores = monitor.score(recalibrate_batch_norm(run.ema.model), state.step)
        scores.train_minutes = round(state.train_seconds / 60, 2)  # the x axis of quality-per-CPU-minute curves
        print(summary_line(scores), flush=True)
        with open(out / EVALS_NAME, "a") as log:  # one line per evaluation: the run's learning curve
            log.write(json.dumps(scores.to_dict()) + "\n")
    scores = broadcast_object_list([scores])[0]
    accelerator.log(tracker_values(scores), step=state.step)
    if selection_score(scores) < state.best_score:
        state.best_score = selection_score(scores)
        export_models(run, folder=BEST_FOLDER, metrics=scores)
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


