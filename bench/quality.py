"""Quality per CPU-minute: this project's recipe against the classic cGAN tutorial's, plus ablations.

    python bench/quality.py --dataset /usr/share/datasets/fashion-mnist --minutes 5 15 30 \
        --recipes project classic no-diffaugment concat-d --parallel 2 --out bench/results/quality.json \
        --plot bench/results/quality.png
    python bench/quality.py --quick     # a smoke run of the same code (CI; under a minute); its figures mean nothing

Every recipe trains through the project's own loop (gan.train.loop.train) for the same wall-clock budgets of training
steps (evaluation time is not counted): it trains to the first budget, is scored, resumes from its checkpoint to the
next budget, and so on. `--parallel N` runs N recipes at once, each on cores/N threads, so the recipes compared
share the machine's conditions. Each snapshot is scored by the project's evaluator (class accuracy, FD with its
train-vs-test floor, KID) on --per-class images per class. The "no-ema" ablation needs no run of its own: it is the
live generator of the "project" run, scored beside the EMA generator at the same moments.
Writes JSON (one row per recipe and budget) and, with --plot, a PNG of FD and class accuracy against minutes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.recipes import NO_EMA, RECIPES, Recipe  # noqa: E402
from bench.report import save_figure  # noqa: E402
from gan.config import ModelConfig, TrainConfig  # noqa: E402
from gan.data import balanced_subset, load_image_data, portable_source  # noqa: E402
from gan.train.ema import recalibrate_batch_norm  # noqa: E402
from gan.model_files import CONFIG_NAME, WEIGHTS_NAME, load_state_strictly, read_safetensors  # noqa: E402
from gan.quality.evaluator import open_evaluator  # noqa: E402
from gan.quality.metrics import score_generator  # noqa: E402
from gan.train.checkpoints import list_checkpoints  # noqa: E402
from gan.train.loop import train  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default=FASHION_MNIST, help="dataset to train and score on")
    p.add_argument("--evaluator", help="evaluator folder (default: evaluators/<dataset name>)")
    p.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), help="recipes to train")
    p.add_argument("--minutes", nargs="+", type=float, default=[5, 15, 30], help="training budgets to score at")
    p.add_argument("--per-class", type=int, default=500, help="generated images per class in each score")
    p.add_argument("--parallel", type=int, default=2, help="recipes trained at once (each on cores/N threads)")
    p.add_argument("--work-dir", default="bench/runs/quality", help="run folders (checkpoints, exports)")
    p.add_argument("--out", default="bench/results/quality.json", help="results JSON")
    p.add_argument("--plot", help="PNG of FD and class accuracy against minutes")
    p.add_argument("--merge", action="store_true",
                   help="keep the other recipes' rows of an existing --out file (re-running some recipes only)")
    p.add_argument("--quick", action="store_true", help="tiny budgets and few images: checks the code, not quality")
    p.add_argument("--reference-images", type=int, help=argparse.SUPPRESS)  # --quick: fewer real images scored
    p.add_argument("--width", type=int, help=argparse.SUPPRESS)  # --quick: narrow G and D where a recipe sizes them
    p.add_argument("--worker", choices=list(RECIPES), help=argparse.SUPPRESS)  # one recipe, in a child process
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    return p


def train_and_score(recipe: Recipe, args: argparse.Namespace) -> list[dict]:
    """Train one recipe budget after budget in its own run folder, scoring each snapshot; returns the rows."""
    torch.set_num_threads(args.threads)
    evaluator, evaluator_dir = open_evaluator(args.dataset, args.evaluator)
    out = Path(args.work_dir) / recipe.name
    rows = []
    for minutes in sorted(args.minutes):
        widths = dict(g_width=args.width, d_width=args.width) if args.width else {}
        cfg = TrainConfig(dataset=args.dataset, output_dir=str(out), max_steps=10**9, max_minutes=minutes,
                          checkpoint_every=0, sample_every=0, real_pool_size=0, cpu_threads=args.threads,
                          **{**widths, **recipe.overrides})
        export = train(cfg, recipe.build_models)
        summary = json.loads((export / "training_summary.json").read_text())
        snapshots = {recipe.name: load_weights(recipe, export, export / WEIGHTS_NAME)}
        if recipe.name == "project":  # the live generator of the same run, as it was at this moment
            snapshots[NO_EMA] = load_weights(recipe, export, list_checkpoints(out)[-1] / WEIGHTS_NAME)
        for name, generator in snapshots.items():
            config = generator.model_config
            reference, train_data = scoring_data(args.dataset, config.image_size, config.channels,
                                                 args.reference_images)
            if name == NO_EMA:  # the export's EMA generator was recalibrated before it was saved
                recalibrate_batch_norm(generator)
            scores = score_generator(generator, evaluator, reference, train=train_data, per_class=args.per_class)
            rows.append({
                "recipe": name, "minutes": minutes, "steps": summary["steps"],
                "train_seconds": summary["train_seconds"], "images_seen": summary["images_seen"],
                "class_accuracy": scores.accuracy, "fd": scores.fd,
                "fd_floor": scores.fd_train_test, "fd_ratio": scores.fd_ratio, "kid": scores.kid_mean,
                "num_samples": scores.num_samples, "evaluator": str(evaluator_dir),
                "evaluator_accuracy": evaluator.evaluator_config.test_accuracy,
                "parameters_g": sum(p.numel() for p in generator.parameters()),
            })
            print(json.dumps(rows[-1]), flush=True)
    return rows


def load_weights(recipe: Recipe, export: Path, weights: Path) -> torch.nn.Module:
    """The recipe's generator class with the given weights (an export's EMA, or a checkpoint's live generator)."""
    generator, _ = recipe.build_models(ModelConfig.load(export / CONFIG_NAME))
    load_state_strictly(generator, read_safetensors(weights), source=str(weights))
    return generator.eval()


@functools.lru_cache
def scoring_data(dataset: str, image_size: int, channels: int, limit: int | None = None):
    """Real test (reference) and train (floor) splits, loaded once per process; class-balanced subsets of `limit`
    images each when given (--quick: its scores mean nothing anyway)."""
    options = dict(image_size=image_size, channels=channels)
    splits = load_image_data(dataset, split="test", **options), load_image_data(dataset, split="train", **options)
    return splits if limit is None else tuple(balanced_subset(split, limit) for split in splits)


def run_workers(args: argparse.Namespace) -> list[dict]:
    """One child process per recipe, `--parallel` at a time; each prints its rows as JSON lines."""
    threads = threads_per_recipe(args.parallel)

    def one(name: str) -> list[dict]:
        command = [sys.executable, __file__, "--worker", name, "--threads", str(threads), "--dataset", args.dataset,
                   "--per-class", str(args.per_class), "--work-dir", args.work_dir,
                   *(["--reference-images", str(args.reference_images)] if args.reference_images else []),
                   *(["--width", str(args.width)] if args.width else []),
                   "--minutes", *map(str, args.minutes), *(["--evaluator", args.evaluator] if args.evaluator else [])]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "PASSIVE"}
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"recipe {name} failed:\n{result.stderr[-3000:]}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    with ThreadPoolExecutor(args.parallel) as pool:
        return [row for rows in pool.map(one, args.recipes) for row in rows]


def threads_per_recipe(parallel: int) -> int:
    return max(1, len(os.sched_getaffinity(0)) // parallel)


def plot(rows: list[dict], path: Path, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_fd, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in dict.fromkeys(row["recipe"] for row in rows):
        mine = sorted((r for r in rows if r["recipe"] == name), key=lambda r: r["minutes"])
        minutes = [r["minutes"] for r in mine]
        style = dict(marker="o", linewidth=2.5 if name == "project" else 1.5)
        ax_fd.plot(minutes, [r["fd"] for r in mine], label=name, **style)
        ax_acc.plot(minutes, [r["class_accuracy"] for r in mine], label=name, **style)
    floor = rows[0]["fd_floor"]
    ax_fd.axhline(floor, color="grey", linestyle="--", label="real train vs test (floor)")
    ax_fd.set(yscale="log", xlabel=xlabel, ylabel="FD (evaluator features, lower is better)",
              title="Fréchet distance to the real test split")
    ax_acc.set(xlabel=xlabel, ylabel="class accuracy (higher is better)",
               title="Generated images recognised as their class", ylim=(0, 1))
    ax_acc.axhline(rows[0]["evaluator_accuracy"], color="grey", linestyle="--", label="real test images")
    save_figure(fig, (ax_fd, ax_acc), path)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| recipe | minutes | steps | class accuracy | FD | FD / floor | KID |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(rows, key=lambda r: (r["minutes"], r["fd"])):
        lines.append(f"| {r['recipe']} | {r['minutes']:g} | {r['steps']} | {r['class_accuracy']:.3f} | "
                     f"{r['fd']:.3f} | {r['fd_ratio']:.1f} | {r['kid']:.4f} |")
    return "\n".join(lines)


def main() -> int:
    args = build_parser().parse_args()
    if args.quick:
        args.minutes, args.per_class, args.reference_images, args.width = [0.02, 0.04], 10, 1000, 8
        args.work_dir = str(Path(args.work_dir).with_name("quality-quick"))
    if args.worker:
        train_and_score(RECIPES[args.worker], args)
        return 0
    if any(m <= 0 for m in args.minutes) or args.per_class < 1 or args.parallel < 1:
        raise SystemExit("error: --minutes must be positive and --per-class, --parallel at least 1")
    started = time.perf_counter()
    rows = run_workers(args)
    out = Path(args.out)
    earlier = json.loads(out.read_text()) if args.merge and out.is_file() else {}
    if earlier:
        rerun = {row["recipe"] for row in rows}
        rows = [row for row in earlier["rows"] if row["recipe"] not in rerun] + rows
    results = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": len(os.sched_getaffinity(0)),
                    "torch": torch.__version__},
        # The dataset as any machine can reach it (a local copy of a Hub dataset by its Hub id): same images.
        "command": " ".join(["python bench/quality.py",
                             *(portable_source(a) if a == args.dataset else a for a in sys.argv[1:])]),
        "earlier_commands": [*earlier.get("earlier_commands", []), earlier["command"]] if earlier else [],
        "quick": args.quick, "parallel": args.parallel, "dataset": portable_source(args.dataset), "per_class": args.per_class,
        "recipes": {**earlier.get("recipes", {}), **{name: RECIPES[name].description for name in args.recipes}},
        "rows": rows, "wall_seconds": round(time.perf_counter() - started, 1),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        threads = threads_per_recipe(args.parallel)
        plot(rows, Path(args.plot), f"training minutes ({threads} thread{'s' * (threads > 1)} per recipe, "
                                    f"{args.parallel} recipes at a time on {results['machine']['cores']} cores)")
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
