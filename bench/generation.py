"""Generation speed: model time for 1, 16 and 64 images at 28, 32 and 64 px, default widths.

    python bench/generation.py [--sizes 28 32 64] [--counts 1 16 64] [--threads 2] [--repeats 30] [--quick]
        [--out bench/results/generation_cpu.json]

"Model time" is what `gan.sampling.generate` spends from seeds to uint8 pixels (noise, the generator in eval mode,
conversion), median and best of --repeats after warm-up; the app adds PNG encoding and HTTP on top. Weights are
freshly initialised: the time does not depend on their values. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import report  # noqa: E402

from gan.config import ModelConfig  # noqa: E402
from gan.models import Generator  # noqa: E402
from gan.sampling import generate  # noqa: E402


def measure(size: int, count: int, repeats: int, width: int) -> dict:
    config = ModelConfig(image_size=size, channels=1 if size == 28 else 3, g_width=width)
    generator = Generator(config).eval()
    classes, seeds = [i % config.num_classes for i in range(count)], list(range(count))
    for _ in range(3):
        generate(generator, classes, seeds)  # warm-up: allocator and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(generator, classes, seeds)
        times.append(time.perf_counter() - start)
    return {"image_size": size, "channels": config.channels, "images": count, "width": width,
            "median_ms": round(statistics.median(times) * 1000, 2), "best_ms": round(min(times) * 1000, 2),
            "images_per_s": round(count / statistics.median(times), 1),
            "parameters": sum(p.numel() for p in generator.parameters())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 32, 64])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--width", type=int, default=32, help="generator width (the default is 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="2 repeats: checks the benchmark runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu",
               "runs": [measure(size, count, repeats, args.width) for size in args.sizes for count in args.counts]}
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
