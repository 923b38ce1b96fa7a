"""`gan-neighbours` / `python -m gan.neighbours`: build a model's copy-check index, or query one generated image.

    python -m gan.neighbours build --model models/fashion-mnist [--data SRC] [--evaluator DIR] [--out FILE]
    python -m gan.neighbours query --model models/fashion-mnist --class Coat --seed 3 [-k 5]

The index, its search and its verdicts: gan/explore/neighbours.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch

from ..errors import GanError, reports_errors
from ..explore import neighbours
from ..explore.neighbours import build_for_plan, index_for_model, load_index, nearest_real, plan_index, save_index
from ..model_files import INDEX_NAME
from ..models import load_generator
from ..sampling import generate, resolve_class
from ..version import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser, commands = command_parser("python -m gan.neighbours", neighbours.__doc__)
    for name, text in (("build", "build a model's neighbour index (default: into the user cache)"),
                       ("query", "print the nearest training images of one generated image as JSON")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--model", required=True, help="model folder or Hub repo id")
        command.add_argument("--data", help="the training data (default: the dataset in training_config.json, "
                                            "read from a local copy when one exists)")
        command.add_argument("--evaluator", help="evaluator folder (default: evaluators/<dataset name>)")
        command.add_argument("--threads", type=int, help="torch CPU threads")
    build, query = commands.choices["build"], commands.choices["query"]
    build.add_argument("--out", help=f"index file to write (default: the user cache; {INDEX_NAME} in a model "
                                     "folder ships it with the model)")
    query.add_argument("--index", help="index file (default: the model's, built if missing)")
    query.add_argument("--class", dest="class_", default="0", help="class name or index of the image")
    query.add_argument("--seed", type=int, default=0, help="seed of the image")
    query.add_argument("--truncation", type=float, default=1.0, help="truncation psi in (0, 1]")
    query.add_argument("-k", type=int, default=5, help="neighbours to list (default: 5)")
    return parser


def run_build(args: argparse.Namespace) -> int:
    plan = plan_index(args.model, data=args.data, evaluator=args.evaluator)
    started = time.perf_counter()
    index = build_for_plan(plan, _log)
    path = save_index(index, args.out or plan.cache_path)
    print(f"indexed {index.info.train_images} {plan.split} images of {index.info.dataset} "
          f"({index.info.reference_images} {plan.reference_split} images as reference) in "
          f"{time.perf_counter() - started:.1f} s: {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def run_query(args: argparse.Namespace) -> int:
    generator = load_generator(args.model)
    label = resolve_class(args.class_, generator.model_config.class_names)
    image = generate(generator, [label], [args.seed], args.truncation)[0]  # (H, W, C)
    index = (load_index(args.index) if args.index else
             index_for_model(args.model, data=args.data, evaluator=args.evaluator, log=_log))
    started = time.perf_counter()
    result = nearest_real(index, image, args.k)
    _log(f"searched {index.info.train_images} images in {1000 * (time.perf_counter() - started):.1f} ms")
    print(json.dumps({"class": label, "seed": args.seed, "truncation": args.truncation, **result.to_dict()}, indent=2))
    return 0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one `error:` line for a problem the user can fix)."""
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            raise GanError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    return run_build(args) if args.command == "build" else run_query(args)


if __name__ == "__main__":
    sys.exit(main())
