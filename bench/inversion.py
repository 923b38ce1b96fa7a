"""Inversion quality and speed: project real Fashion-MNIST test images into the shipped model.

    python bench/inversion.py [--count 100] [--steps 150] [--seconds 6] [--threads N] [--no-evaluator]
        [--model models/fashion-mnist] [--evaluator evaluators/fashion-mnist]
        [--dataset /usr/share/datasets/fashion-mnist] [--out bench/results/inversion.json]

For the first --count test images (the same ones every run) `gan.explore.invert.invert` finds z and a class mixture; we
record the share whose reconstruction the evaluator puts in the image's true class (the issue's bar: 80%), the same
share for the real images themselves (the evaluator's own ceiling), the share whose mixture lands in the true class,
the mean absolute pixel error in grey levels and the MSE in [-1, 1] units, and seconds per image, with the machine's
load average before and after (on a shared machine, others' work stretches every step). Reports, never asserts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report  # noqa: E402

from gan.data import load_image_data  # noqa: E402
from gan.quality.evaluator import load_evaluator, predict  # noqa: E402
from gan.models import load_generator  # noqa: E402
from gan.explore.invert import DEFAULT_SECONDS, DEFAULT_STEPS, invert  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100, help="test images to invert (the first N)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="step cap per image")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="time cap per image")
    parser.add_argument("--no-evaluator", action="store_true", help="invert on pixels alone (the evaluator still "
                                                                    "judges the results)")
    parser.add_argument("--model", default=str(REPO / "models" / "fashion-mnist"))
    parser.add_argument("--evaluator", default=str(REPO / "evaluators" / "fashion-mnist"))
    parser.add_argument("--dataset", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator, evaluator = load_generator(args.model), load_evaluator(args.evaluator)
    test = load_image_data(args.dataset, split="test", image_size=generator.model_config.image_size)
    images = test.images[: args.count].permute(0, 2, 3, 1).numpy()  # (N, H, W, C) uint8
    labels = test.labels[: args.count].numpy()

    load_before = os.getloadavg()[0]  # other work on the machine slows every step: say how busy it was
    results, seconds = [], []
    for image in images:
        start = time.perf_counter()
        found = invert(generator, image, evaluator=None if args.no_evaluator else evaluator,
                       steps=args.steps, max_seconds=args.seconds)
        seconds.append(time.perf_counter() - start)
        results.append(found)
    reconstructions = np.stack([r.reconstruction for r in results])
    judged = predict(evaluator, reconstructions).numpy()
    real_judged = predict(evaluator, images).numpy()
    error = reconstructions.astype(np.float64) - images
    report({
        "model": Path(args.model).name, "evaluator": Path(args.evaluator).name, "images": len(images),
        "split": "test (first N)", "steps_cap": args.steps, "seconds_cap": args.seconds,
        "evaluator_in_loss": not args.no_evaluator, "threads": torch.get_num_threads(), "torch": torch.__version__,
        "reconstruction_class_accuracy": round(float((judged == labels).mean()), 4),
        "real_image_class_accuracy": round(float((real_judged == labels).mean()), 4),
        "reconstruction_agrees_with_real_verdict": round(float((judged == real_judged).mean()), 4),
        "mixture_class_accuracy": round(float(np.mean([r.mixture_class for r in results] == labels)), 4),
        "mean_abs_error_grey_levels": round(float(np.abs(error).mean()), 2),
        "mse_model_range": round(float((error / 127.5).__pow__(2).mean()), 4),
        "median_seconds": round(statistics.median(seconds), 3), "max_seconds": round(max(seconds), 3),
        "median_steps": statistics.median(r.steps for r in results),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
