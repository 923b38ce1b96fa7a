"""Training-step throughput on this machine: gan/train/steps.py's D step (real + fake batch), G step and EMA step, the
functions gan/train/loop.py runs.

    python bench/train_throughput.py [--sizes 28 32 64] [--batch 64 [16 ...]] [--threads 2] [--steps 20] [--quick]

Prints steps/s and real images/s per image size at the default widths, plus the share of a step spent in the
discriminator step (with its no-grad fakes), the generator step and the EMA update. With several --batch sizes it also fits
step time = fixed overhead + time per image, which says whether a step is bound by per-step overhead (Python,
kernel launches, optimizer) or by the work per image (FLOPs). Reports, never asserts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report  # noqa: E402

from accelerate import Accelerator  # noqa: E402

from gan.config import parse_policy  # noqa: E402
from gan.config import ModelConfig  # noqa: E402
from gan.train.ema import EMA  # noqa: E402
from gan.models import Discriminator, Generator  # noqa: E402
from gan.train.steps import StepModels, d_step, ema_step, g_step  # noqa: E402


def measure(size: int, channels: int, batch: int, steps: int, width: int, policy: str) -> dict:
    """Time gan/train/steps.py's d_step, g_step and ema_step, prepared by accelerate on the CPU as train.py does."""
    config = ModelConfig(image_size=size, channels=channels, g_width=width, d_width=width)
    accelerator = Accelerator(cpu=True)
    generator = Generator(config).to(memory_format=torch.channels_last)  # train.py's default memory format
    discriminator = Discriminator(config).to(memory_format=torch.channels_last)
    ema = EMA(generator, decay=0.999)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    generator, discriminator, opt_g, opt_d = accelerator.prepare(generator, discriminator, opt_g, opt_d)
    models = StepModels(accelerator, generator, discriminator, opt_g, opt_d, parse_policy(policy), "hinge",
                        config.latent_dim)
    real = torch.randint(0, 256, (batch, channels, size, size), dtype=torch.uint8)
    labels = torch.randint(0, config.num_classes, (batch,))
    parts = {"d_step": 0.0, "g_step": 0.0, "ema_step": 0.0}

    def step(index: int, timed: bool) -> None:
        t0 = time.perf_counter()
        d_step(models, real, labels)
        t1 = time.perf_counter()
        g_step(models, labels)
        t2 = time.perf_counter()
        ema_step(ema, models, index)
        t3 = time.perf_counter()
        if timed:
            parts["d_step"] += t1 - t0
            parts["g_step"] += t2 - t1
            parts["ema_step"] += t3 - t2

    for index in range(3):
        step(index, False)  # warm-up: allocator and kernel selection
    start = time.perf_counter()
    for index in range(steps):
        step(3 + index, True)
    elapsed = time.perf_counter() - start
    return {"image_size": size, "channels": channels, "width": width, "batch": batch, "steps": steps,
            "steps_per_s": steps / elapsed, "images_per_s": steps * batch / elapsed,
            "share": {k: round(v / elapsed, 3) for k, v in parts.items()}}


def fit_step_time(runs: list[dict]) -> dict:
    """Least-squares fit of seconds per step = overhead + per_image * batch over the runs of one image size."""
    batches = torch.tensor([float(r["batch"]) for r in runs])
    seconds = torch.tensor([1.0 / r["steps_per_s"] for r in runs])
    design = torch.stack([torch.ones_like(batches), batches], dim=1)
    overhead, per_image = torch.linalg.lstsq(design, seconds[:, None]).solution[:, 0].tolist()
    largest = max(r["batch"] for r in runs)
    return {"image_size": runs[0]["image_size"], "overhead_ms": round(overhead * 1000, 2),
            "per_image_ms": round(per_image * 1000, 3),
            "overhead_share_at_largest_batch": round(overhead / (overhead + per_image * largest), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 32, 64])
    parser.add_argument("--batch", type=int, nargs="+", default=[64], help="batch sizes (several: overhead fit)")
    parser.add_argument("--width", type=int, default=32, help="g and d width (the default is 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--diffaugment", default="color,translation,cutout")
    parser.add_argument("--quick", action="store_true", help="2 timed steps per size: checks the benchmark runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    steps = 2 if args.quick else args.steps
    runs = [measure(size, 1 if size == 28 else 3, batch, steps, args.width, args.diffaugment)
            for size in args.sizes for batch in args.batch]
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "runs": runs,
               "step_time_fit": [fit_step_time([r for r in runs if r["image_size"] == size]) for size in args.sizes]
               if len(set(args.batch)) > 1 else []}
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
