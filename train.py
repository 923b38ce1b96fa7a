"""Train a class-conditional GAN: `accelerate launch train.py --dataset SRC --output-dir DIR [...]`.

Works as `python train.py ...` too. Rerunning the same command resumes from the newest complete checkpoint.
Run with --help for every flag.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from dataclasses import replace

from gan.config import DATA, HUB, MODEL, OUTPUT, RECIPE, TrainConfig, flag_name
from gan.errors import GanError
from gan.tools.dependencies import require_extra
from gan.version import add_version_flag

DEFAULTS = TrainConfig()


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
    """One flag per TrainConfig field, built from its declaration (gan/config.py: default, help, group, choices),
    plus --hub-token and --dry-run, which are no part of a run's configuration."""
    p = argparse.ArgumentParser(
        description="Train a class-conditional GAN (ResNet generator with class-conditional batch norm, "
        "projection discriminator with spectral norm, hinge loss by default or R3GAN's relativistic pairing loss with "
        "R1 + R2 penalties, EMA generator, DiffAugment).",
        formatter_class=HelpFormatter,
    )
    groups = {name: p.add_argument_group(name) for name in (DATA, MODEL, RECIPE, OUTPUT, HUB)}
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        kind = next(t for t in typing.get_args(hints[f.name]) or (hints[f.name],) if t is not type(None))
        if kind is bool:
            groups[meta["group"]].add_argument(flag_name(f.name), action="store_true", help=meta["help"])
            continue
        default = None if meta["required"] else f.default
        groups[meta["group"]].add_argument(flag_name(f.name), type=kind, default=default, choices=meta["choices"],
                                           metavar=meta["metavar"], required=meta["required"], help=meta["help"])
    groups[HUB].add_argument("--hub-token", default=None,
                             help="token with write access (default: HF_TOKEN or the login saved by `hf auth login`)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    add_version_flag(p)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed flags into a TrainConfig, rejecting values and combinations that cannot work."""
    values = {k: v for k, v in vars(args).items() if k not in ("dry_run", "hub_token")}
    return check_tracking(TrainConfig(**values).validate())


def check_tracking(cfg: TrainConfig) -> TrainConfig:
    """Refuse unknown or uninstalled trackers and a project name that is no plain name, before any work starts;
    --log-with is stored normalised (lower case, no spaces or repeats)."""
    from gan.train.loop import resolve_trackers, tracker_names  # here, after require_extra: they import accelerate

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
    from gan.train.loop import model_config_for

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
        from gan.train.loop import train

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
