"""Realism per CPU-minute: C2ST and FD against training minutes, read from training runs' own evaluations.

    python bench/realism_curves.py RUN_DIR [RUN_DIR ...] --names A B ... \
        --out bench/results/realism.json --plot bench/results/realism.png

Each RUN_DIR is a `train.py --eval-every N` output folder; its evals.jsonl holds one evaluation per line (class
accuracy, FD with its floor, KID, C2ST, with the training minutes at that step), and its training_config.json the
recipe. The runs are ordinary training runs, so the curves show exactly what a user's run of the same command gets;
compare runs that trained with the same number of threads on the same machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report, save_figure  # noqa: E402
from gan.quality.scores import Scores  # noqa: E402
from gan.sharing.card import training_command  # noqa: E402
from gan.train.export import EVALS_NAME  # noqa: E402

RECIPE_FIELDS = ("image_size", "g_width", "d_width", "output_gain", "loss", "gradient_penalty", "penalty_every",
                 "d_norm", "batch_size", "lr_g", "lr_d", "lr_decay_steps", "d_steps", "ema_decay", "ema_start",
                 "diffaugment", "init_from", "cpu_threads")


def read_run(folder: Path, name: str) -> dict:
    """A run's recipe (the flags that differ from the defaults) and its evaluations, oldest first."""
    evals_path = folder / EVALS_NAME
    if not evals_path.is_file():
        raise SystemExit(f"error: {folder} has no {EVALS_NAME}; train with --eval-every N to record a curve")
    config = json.loads((folder / "training_config.json").read_text())
    config.update(output_dir=f"runs/{folder.name}")  # the folder these evaluations were read from
    evals = [Scores.from_dict(json.loads(line)) for line in evals_path.read_text().splitlines() if line.strip()]
    points = [{"step": e.step, "train_minutes": e.train_minutes, "c2st": e.c2st_accuracy,
               "c2st_interval_95": (e.c2st or {}).get("interval_95"), "c2st_images_per_set": e.c2st_images,
               "fd": e.fd, "fd_floor": e.fd_train_test, "fd_ratio": e.fd_ratio, "kid": e.kid_mean,
               "class_accuracy": e.accuracy, "num_samples": e.num_samples} for e in evals]
    return {"name": name, "folder": folder.name, "command": training_command(config),  # without this machine's paths
            "recipe": {k: config.get(k) for k in RECIPE_FIELDS}, "points": sorted(points, key=lambda p: p["step"])}


def plot(runs: list[dict], path: Path, bar: float = 0.75) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_c2st, ax_fd) = plt.subplots(1, 2, figsize=(11, 4.2))
    for run in runs:
        points = [p for p in run["points"] if p["train_minutes"] is not None]
        minutes = [p["train_minutes"] for p in points]
        ax_c2st.plot(minutes, [p["c2st"] for p in points], marker="o", label=run["name"])
        ax_fd.plot(minutes, [p["fd_ratio"] for p in points], marker="o", label=run["name"])
    ax_c2st.axhline(bar, color="grey", linestyle="--", label=f"bar ({bar:g})")
    ax_c2st.axhline(0.5, color="grey", linestyle=":", label="indistinguishable (0.5)")
    ax_c2st.set(xlabel="training minutes", ylabel="C2ST accuracy (lower is better)",
                title="Fresh real-vs-generated classifier", ylim=(0.45, 1.0))
    ax_fd.set(yscale="log", xlabel="training minutes", ylabel="FD / real train-vs-test floor (lower is better)",
              title="Fréchet distance over its floor")
    save_figure(fig, (ax_c2st, ax_fd), path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="+", type=Path, help="train.py output folders trained with --eval-every")
    p.add_argument("--names", nargs="+", help="a label per run (default: the folder names)")
    p.add_argument("--out", type=Path, help="results JSON")
    p.add_argument("--plot", type=Path, help="PNG of C2ST and FD / floor against training minutes")
    p.add_argument("--bar", type=float, default=0.75, help="the C2ST bar drawn on the plot (default 0.75)")
    args = p.parse_args(argv)
    names = args.names or [run.name for run in args.runs]
    if len(names) != len(args.runs):
        raise SystemExit(f"error: {len(names)} names for {len(args.runs)} runs")
    runs = [read_run(folder, name) for folder, name in zip(args.runs, names)]
    report({"runs": runs}, args.out)
    if args.plot:
        plot(runs, args.plot, args.bar)
    return 0


if __name__ == "__main__":
    sys.exit(main())
