"""Generation speed: `gan.generate` as a script calls it (the cached inference-optimised copy, gan/inference.py)
against a plain eager forward of the same weights (`fast=False`), in the same process.

    python bench/generation.py [--sizes 28 32 64] [--counts 1 16 64] [--threads 2] [--repeats 30] [--quick]
        [--order blocks|alternate] [--system-malloc] [--out bench/results/generation_cpu.json]

"Model time" is what `gan.sampling.generate` spends from seeds to uint8 pixels (noise, the generator in eval mode,
conversion). The two paths take turns (in blocks of calls, or call by call: --order), so both see the same machine
load; median and best of --repeats after warm-up. 28 px uses the shipped Fashion-MNIST model, other sizes a freshly
initialised generator of the default width (time does not depend on weight values). glibc's allocator is set as app.py sets it for serving
(`tune_malloc_for_serving`: big buffers reused from the heap rather than mmapped afresh each pass), for both paths;
`--system-malloc` leaves glibc's defaults, as a script that imports gan has them. Reports, never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.report import report  # noqa: E402

from gan.config import ModelConfig  # noqa: E402
from gan.models import load_generator  # noqa: E402
from gan.serve.housekeeping import tune_malloc_for_serving  # noqa: E402
from gan.models import Generator  # noqa: E402
from gan.sampling import generate  # noqa: E402

SHIPPED_28 = REPO / "models" / "fashion-mnist"


def generator_for(size: int, width: int) -> Generator:
    if size == 28 and SHIPPED_28.is_dir():
        return load_generator(SHIPPED_28)
    return Generator(ModelConfig(image_size=size, channels=1 if size == 28 else 3, g_width=width)).eval()


PATHS = {"eager": False, "library": True}  # name -> generate(..., fast=)
BLOCK = 5  # calls of one path in a row (after one uncounted call) with --order blocks


def paired_times(generator: Generator, count: int, repeats: int, order: str = "blocks") -> dict[str, list[float]]:
    """Seconds per `generate` call of `count` images on each path. order "blocks": the paths take turns in blocks
    of BLOCK calls, the first call of each block not counted, so each path is timed in the steady state a script
    calling it repeatedly has, while slow drifts of the machine's load still fall on both alike. "alternate": they
    take turns call by call, so every timed call follows the other path's (which evicts the caches and returns
    buffers the next pass faults in again: ~10% slower for the fast path here)."""
    num_classes = generator.model_config.num_classes
    classes, seeds = [i % num_classes for i in range(count)], list(range(count))
    for fast in PATHS.values():
        for _ in range(3):
            generate(generator, classes, seeds, fast=fast)  # warm-up: allocator, oneDNN kernels, the cached copy
    times: dict[str, list[float]] = {name: [] for name in PATHS}
    block = BLOCK if order == "blocks" else 1
    while min(len(values) for values in times.values()) < repeats:
        for name, fast in PATHS.items():
            for call in range(block + (block > 1)):
                start = time.perf_counter()
                generate(generator, classes, seeds, fast=fast)
                if block == 1 or call > 0:
                    times[name].append(time.perf_counter() - start)
    return {name: values[:repeats] for name, values in times.items()}


def measure(size: int, counts: list[int], repeats: int, width: int, order: str) -> list[dict]:
    eager = generator_for(size, width)
    rows = []
    for count in counts:
        times = paired_times(eager, count, repeats, order)
        row = {"image_size": size, "channels": eager.model_config.channels, "images": count,
               "parameters": sum(p.numel() for p in eager.parameters())}
        for name, values in times.items():
            row[f"{name}_median_ms"] = round(statistics.median(values) * 1000, 2)
            row[f"{name}_best_ms"] = round(min(values) * 1000, 2)
        row["speedup"] = round(row["eager_median_ms"] / row["library_median_ms"], 2)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 32, 64])
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--width", type=int, default=32, help="generator width of the unshipped sizes (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--quick", action="store_true", help="2 repeats: checks the benchmark runs")
    parser.add_argument("--system-malloc", action="store_true", help="keep glibc's allocator defaults (app.py tunes them)")
    parser.add_argument("--order", choices=["blocks", "alternate"], default="blocks",
                        help=f"blocks: each path {BLOCK} calls in a row, taking turns (default); alternate: call by call")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    tuned_malloc = not args.system_malloc and tune_malloc_for_serving()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    results = {"threads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu", "repeats": repeats,
               "order": args.order,
               "malloc": "tuned for serving" if tuned_malloc else "system defaults",
               "runs": [row for size in args.sizes for row in measure(size, args.counts, repeats, args.width, args.order)]}
    report(results, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
