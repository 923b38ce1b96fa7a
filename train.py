"""Train a class-conditional GAN: `accelerate launch train.py --dataset SRC --output-dir DIR [...]`.

Works as `python train.py ...` too. Rerunning the same command resumes from the newest complete checkpoint.
Run with --help for every flag.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import replace

from gan.augment import parse_policy
from gan.config import SUPPORTED_IMAGE_SIZES, TrainConfig
from gan.errors import GanError
from gan.extras import require_extra
from gan.hub import check_repo_id
from gan.losses import LOSSES

DEFAULTS = TrainConfig()
PRECISIONS = ("no", "fp16", "bf16")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default once. A help text that states its own default ("(default: ...)") is kept as it
    is, a None default is left to the help text to explain, and switches and required flags show none: a bare
    "(default: None)" or "(default: False)" would tell the user nothing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.required or action.nargs == 0 or action.default is None:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Train a class-conditional GAN (ResNet generator with class-conditional batch norm, "
        "spectral-norm projection discriminator, hinge loss, EMA generator, DiffAugment).",
        formatter_class=HelpFormatter,
    )
    data = p.add_argument_group("data")
    data.add_argument("--dataset", required=True,
                      help="Hub dataset id (e.g. fashion_mnist, cifar10), a folder of class subfolders, "
                      "or a folder of MNIST-format IDX files (e.g. /usr/share/datasets/fashion-mnist)")
    data.add_argument("--split", default=DEFAULTS.split, help="dataset split to train on")
    data.add_argument("--image-column", default=None, help="image column of a Hub dataset (default: first Image feature)")
    data.add_argument("--label-column", default=None, help="label column of a Hub dataset (default: first ClassLabel)")
    data.add_argument("--image-size", type=int, default=DEFAULTS.image_size,
                      help=f"resize and center-crop images to this size; one of {SUPPORTED_IMAGE_SIZES}")
    data.add_argument("--channels", type=int, choices=(1, 3), default=None,
                      help="1 = grey, 3 = RGB (default: inferred from the data)")

    model = p.add_argument_group("model")
    model.add_argument("--latent-dim", type=int, default=DEFAULTS.latent_dim, help="size of the noise vector z")
    model.add_argument("--g-width", type=int, default=DEFAULTS.g_width, help="generator channels at full resolution")
    model.add_argument("--d-width", type=int, default=DEFAULTS.d_width, help="discriminator channels at full resolution")
    model.add_argument("--output-gain", type=float, default=DEFAULTS.output_gain,
                       help="generator output clamp(gain * tanh): above 1, pure white and black are reachable "
                            "(1 = plain tanh)")

    recipe = p.add_argument_group("recipe")
    recipe.add_argument("--loss", choices=LOSSES, default=DEFAULTS.loss, help="adversarial loss")
    recipe.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size, help="real images per D step, per process")
    recipe.add_argument("--lr-g", type=float, default=DEFAULTS.lr_g, help="generator learning rate (Adam)")
    recipe.add_argument("--lr-d", type=float, default=DEFAULTS.lr_d, help="discriminator learning rate (Adam)")
    recipe.add_argument("--beta1", type=float, default=DEFAULTS.beta1, help="Adam beta1 for both models")
    recipe.add_argument("--beta2", type=float, default=DEFAULTS.beta2, help="Adam beta2 for both models")
    recipe.add_argument("--d-steps", type=int, default=DEFAULTS.d_steps, help="discriminator steps per generator step")
    recipe.add_argument("--ema-decay", type=float, default=DEFAULTS.ema_decay, help="EMA decay of generator weights")
    recipe.add_argument("--ema-start", type=int, default=DEFAULTS.ema_start, help="steps before the EMA starts averaging")
    recipe.add_argument("--diffaugment", default=DEFAULTS.diffaugment,
                        help="comma-separated DiffAugment ops from color,translation,cutout; 'none' disables")
    recipe.add_argument("--max-steps", type=int, default=DEFAULTS.max_steps, help="generator steps to train for")
    recipe.add_argument("--max-minutes", type=float, default=DEFAULTS.max_minutes,
                        help="also stop after this many minutes of training, resumes included (0: no limit); "
                        "rerun with a larger value to train on")
    recipe.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed for weights, noise and data order")
    recipe.add_argument("--cpu-threads", type=int, default=None,
                        help="torch threads per process when training on CPU (default: available cores / processes)")
    recipe.add_argument("--num-workers", type=int, default=DEFAULTS.num_workers, help="DataLoader worker processes")
    recipe.add_argument("--memory-format", choices=("channels_last", "contiguous"), default=DEFAULTS.memory_format,
                        help="tensor layout of both models: channels_last (NHWC) trained ~13%% faster on this "
                             "project's CPU; the results are the same up to rounding")
    recipe.add_argument("--mixed-precision", choices=PRECISIONS, default=None,
                        help="a GPU option: autocast to fp16 (with a gradient scaler) or bf16; no = fp32. fp16 is "
                             "refused on a CPU, and on CPUs without AMX bf16 is ~12x slower than fp32. The precision "
                             "used is recorded in export/training_summary.json "
                             "(default: what `accelerate launch --mixed_precision` or `accelerate config` set, else no)")

    output = p.add_argument_group("output")
    output.add_argument("--output-dir", required=True, help="run folder: checkpoints, samples, logs, export/")
    output.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every,
                        help="steps between full-state checkpoints (0: only at the end)")
    output.add_argument("--checkpoints-total-limit", type=int, default=DEFAULTS.checkpoints_total_limit,
                        help="number of checkpoints to keep (0: keep all)")
    output.add_argument("--sample-every", type=int, default=DEFAULTS.sample_every,
                        help="steps between fixed-noise sample grids (0: only at the end)")
    output.add_argument("--sample-seeds", type=int, default=DEFAULTS.sample_seeds,
                        help="columns of the sample grid (seeds 0..N-1), one row per class")
    output.add_argument("--export-every", type=int, default=DEFAULTS.export_every,
                        help="steps between exports to OUTPUT_DIR/export (0: only at the end)")
    output.add_argument("--eval-every", type=int, default=DEFAULTS.eval_every,
                        help="steps between quality evaluations (class accuracy, FD, KID) of the EMA generator by the "
                        "dataset's evaluator; the export with the lowest FD is kept in OUTPUT_DIR/best (0: never)")
    output.add_argument("--evaluator", default=None,
                        help="evaluator folder for --eval-every (default: evaluators/<dataset folder name>)")
    output.add_argument("--eval-per-class", type=int, default=DEFAULTS.eval_per_class,
                        help="generated images per class in each evaluation")
    output.add_argument("--eval-split", default=DEFAULTS.eval_split, help="held-out real split evaluations compare with")
    output.add_argument("--c2st-per-class", type=int, default=DEFAULTS.c2st_per_class,
                        help="generated images per class for the evaluations' classifier two-sample test (C2ST), "
                             "against as many real training images")
    output.add_argument("--log-every", type=int, default=DEFAULTS.log_every, help="steps between loss logs")
    output.add_argument("--log-with", default=None, metavar="TRACKERS",
                        help="accelerate trackers for losses, images/s, evaluation scores and sample grids, "
                             "comma-separated: tensorboard, wandb, trackio, comet_ml, aim, mlflow, clearml, dvclive, "
                             "swanlab, or all (every one installed); each must be installed. Sample grids go to "
                             "those that take images (tensorboard, wandb, aim, clearml, swanlab). TensorBoard writes "
                             "to OUTPUT_DIR/logs/PROJECT (default: no tracker)")
    output.add_argument("--tracker-project", default=DEFAULTS.tracker_project, metavar="PROJECT",
                        help="project the --log-with trackers log under: the W&B, Trackio, Comet or SwanLab "
                             "project, the MLflow experiment, TensorBoard's folder OUTPUT_DIR/logs/PROJECT; "
                             "give related runs the same one to compare them there")
    output.add_argument("--resume", default=None,
                        help="checkpoint folder to resume from (default: the newest one in OUTPUT_DIR, if any)")
    output.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start a new run from an exported model's weights (folder or Hub repo; fresh optimizers) "
                             "(default: random weights)")
    output.add_argument("--real-pool-split", default=DEFAULTS.real_pool_split,
                        help="held-out split exported as the quiz's pool of real images ('' for none)")
    output.add_argument("--real-pool-size", type=int, default=DEFAULTS.real_pool_size,
                        help="images in that pool, balanced over classes")

    hub = p.add_argument_group("Hugging Face Hub")
    hub.add_argument("--push-to-hub", default=None, metavar="REPO_ID",
                     help="push the export (safetensors, config, samples, model card) to this model repo at the end "
                          "(default: no push)")
    hub.add_argument("--hub-private", action="store_true", help="create the repo as private")
    hub.add_argument("--hub-token", default=None,
                     help="token with write access (default: HF_TOKEN or the login saved by `hf auth login`)")
    hub.add_argument("--push-every", type=int, default=DEFAULTS.push_every,
                     help="steps between pushes during training, each a commit named after its step (0: end only)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed flags into a TrainConfig, rejecting values and combinations that cannot work."""
    values = {k: v for k, v in vars(args).items() if k not in ("dry_run", "hub_token")}
    cfg = TrainConfig(**values)
    positive = ("batch_size", "max_steps", "d_steps", "latent_dim", "g_width", "d_width", "log_every", "sample_seeds",
                "eval_per_class", "c2st_per_class")
    for name in positive:
        if getattr(cfg, name) < 1:
            raise GanError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    non_negative = ("checkpoint_every", "checkpoints_total_limit", "sample_every", "export_every", "num_workers",
                    "ema_start", "seed", "push_every", "real_pool_size", "eval_every", "max_minutes")
    for name in non_negative:
        if getattr(cfg, name) < 0:
            raise GanError(f"--{name.replace('_', '-')} must not be negative, got {getattr(cfg, name)}")
    if not math.isfinite(cfg.max_minutes):
        raise GanError(f"--max-minutes must be a finite number, got {cfg.max_minutes}")
    if cfg.image_size not in SUPPORTED_IMAGE_SIZES:
        raise GanError(f"--image-size {cfg.image_size} is not supported; choose one of {SUPPORTED_IMAGE_SIZES}")
    for name in ("lr_g", "lr_d"):
        if not 0 < getattr(cfg, name) < 1:
            raise GanError(f"--{name.replace('_', '-')} must be in (0, 1), got {getattr(cfg, name)}")
    for name in ("beta1", "beta2", "ema_decay"):
        if not 0 <= getattr(cfg, name) < 1:
            raise GanError(f"--{name.replace('_', '-')} must be in [0, 1), got {getattr(cfg, name)}")
    if not 1.0 <= cfg.output_gain <= 2.0:
        raise GanError(f"--output-gain must be in [1, 2], got {cfg.output_gain}")
    if cfg.cpu_threads is not None and cfg.cpu_threads < 1:
        raise GanError(f"--cpu-threads must be at least 1, got {cfg.cpu_threads}")
    if cfg.evaluator and not cfg.eval_every:
        raise GanError("--evaluator is used by --eval-every N; set that too")
    if (cfg.push_every or cfg.hub_private) and not cfg.push_to_hub:
        raise GanError("--push-every and --hub-private need --push-to-hub REPO_ID")
    if cfg.push_to_hub:
        check_repo_id(cfg.push_to_hub)
    parse_policy(cfg.diffaugment)
    return check_tracking(cfg)


def check_tracking(cfg: TrainConfig) -> TrainConfig:
    """Refuse unknown or uninstalled trackers and a project name that is no plain name, before any work starts;
    --log-with is stored normalised (lower case, no spaces or repeats)."""
    from gan.training import resolve_trackers, tracker_names  # here, after require_extra: they import accelerate

    resolve_trackers(cfg.log_with)
    names = tracker_names(cfg.log_with)
    project = cfg.tracker_project
    if not project.strip() or project in (".", "..") or any(c in project for c in "/\\"):
        raise GanError(f"--tracker-project must be a plain name (TensorBoard makes it a folder), got {project!r}")
    if project != DEFAULTS.tracker_project and not names:
        raise GanError("--tracker-project names the project of the --log-with trackers; set --log-with too")
    return replace(cfg, log_with=",".join(names) or None)


def dry_run(cfg: TrainConfig) -> None:
    """Print the run and model configuration (loading the data, so a bad dataset shows up now) and the parameter counts."""
    from accelerate import PartialState

    from gan.data import load_image_data
    from gan.models import Discriminator, Generator
    from gan.training import model_config_for

    state = PartialState()
    data = load_image_data(cfg.dataset, split=cfg.split, image_size=cfg.image_size, channels=cfg.channels,
                           image_column=cfg.image_column, label_column=cfg.label_column)
    model_config = model_config_for(cfg, data)
    if state.is_main_process:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        print(json.dumps({
            "train": cfg.to_dict(),
            "model": model_config.to_dict(),
            "data": {"images": len(data.labels), "shape": list(data.images.shape[1:])},
            "parameters": {"generator": count(Generator(model_config)),
                           "discriminator": count(Discriminator(model_config))},
            "accelerate": {"processes": state.num_processes, "device": str(state.device),
                           "global_batch_size": cfg.batch_size * state.num_processes},
        }, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    require_extra("train", "train.py")
    if args.hub_token:  # the Hub client reads it from the environment; it is never written to training_config.json
        os.environ["HF_TOKEN"] = args.hub_token
    try:
        cfg = config_from_args(args)
        if args.dry_run:
            dry_run(cfg)
            return 0
        from gan.training import train

        export_dir = train(cfg)
        print(f"Exported the EMA generator and the discriminator to {export_dir}", flush=True)
        return 0
    except GanError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
