"""Training-step throughput on this machine: one D step (real + fake batch) and one G step, as gan/training.py does.

    python bench/train_throughput.py [--sizes 28 32 64] [--batch 64 [16 ...]] [--threads 2] [--steps 20] [--quick]

Prints steps/s and real images/s per image size at the default widths, plus the share of a step spent in the
discriminator step, the generator step and the no-grad fake generation. With several --batch sizes it also fits
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

from gan.augment import diff_augment, parse_policy  # noqa: E402
from gan.config import ModelConfig  # noqa: E402
from gan.losses import discriminator_loss, generator_loss  # noqa: E402
from gan.models import Discriminator, Generator  # noqa: E402


def measure(size: int, channels: int, batch: int, steps: int, width: int, policy: str) -> dict:
    config = ModelConfig(image_size=size, channels=channels, g_width=width, d_width=width)
    generator, discriminator = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.0, 0.9))
    ops = parse_policy(policy)
    real = torch.rand(batch, channels, size, size) * 2 - 1
    labels = torch.randint(0, config.num_classes, (batch,))
    parts = {"fake": 0.0, "d_step": 0.0, "g_step": 0.0}

    def step(timed: bool) -> None:
        t0 = time.perf_counter()
        with torch.no_grad():
            fake = generator(torch.randn(batch, config.latent_dim), labels)
        t1 = time.perf_counter()
        logits = discriminator(diff_augment(torch.cat([real, fake]), ops), labels.repeat(2))
        loss_d = discriminator_loss(*logits.chunk(2))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        t2 = time.perf_counter()
        discriminator.requires_grad_(False)
        loss_g = generator_loss(discriminator(diff_augment(generator(torch.randn(batch, config.latent_dim), labels),
                                                           ops), labels))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)
        t3 = time.perf_counter()
        if timed:
            parts["fake"] += t1 - t0
            parts["d_step"] += t2 - t1
            parts["g_step"] += t3 - t2

    for _ in range(3):
        step(False)  # warm-up: allocator and kernel selection
    start = time.perf_counter()
    for _ in range(steps):
        step(True)
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
