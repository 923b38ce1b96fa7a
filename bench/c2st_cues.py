"""What does the two-sample classifier read? The same C2ST on both sets after one transform that removes one cue.

    python bench/c2st_cues.py --model models/fashion-mnist --dataset /usr/share/datasets/fashion-mnist \
        --out bench/results/c2st_cues_fashion-mnist.json

A transform applied to real and generated images alike removes one kind of evidence (blur: the finest detail; a
coarser grid: everything under 2 or 4 pixels; fewer grey levels: exact values; faint pixels made black: the
near-black halo; a little noise: flat areas). Where the accuracy falls to chance, the classifier was reading that
cue; where it stays, the cue it reads survives the transform. Generated images are the model's seeds 0..n-1 of each
class (truncation 1), real ones as many of the training split in the same class mix, as `gan.evaluate score` takes
them; the classifier is the saturating judge's, trained for a fixed --epochs (one budget) to keep the table cheap.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gan.data import class_counts, load_image_data, portable_source, stratified_subset  # noqa: E402
from gan.models import load_generator  # noqa: E402
from gan.quality.metrics import FLOOR_SEED, C2stSettings, c2st, generated_batches  # noqa: E402

BINOMIAL_3X3 = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16


def blur(images: torch.Tensor) -> torch.Tensor:
    """3x3 binomial blur of each channel, edges replicated (float)."""
    channels = images.shape[1]
    kernel = BINOMIAL_3X3.view(1, 1, 3, 3).repeat(channels, 1, 1, 1)
    return F.conv2d(F.pad(images.float(), (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


def coarser(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Each factor x factor cell replaced by its mean."""
    return F.interpolate(F.avg_pool2d(images.float(), factor), scale_factor=factor, mode="nearest")


def as_uint8(values: torch.Tensor) -> torch.Tensor:
    return values.round().clamp(0, 255).to(torch.uint8)


def small_noise(images: torch.Tensor) -> torch.Tensor:
    """Uniform integer noise in [-3, 3], the same draw for every call (one seed) so both sets get alike noise."""
    noise = torch.randint(-3, 4, images.shape, generator=torch.Generator().manual_seed(5))
    return as_uint8(images.float() + noise)


CUES: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = {
    "none": ("the images as they are", lambda x: x),
    "blur": ("3x3 binomial blur: the finest detail gone", lambda x: as_uint8(blur(x))),
    "grid2": ("2x2 cells averaged: detail under 2 pixels gone", lambda x: as_uint8(coarser(x, 2))),
    "grid4": ("4x4 cells averaged: only coarse shape left", lambda x: as_uint8(coarser(x, 4))),
    "levels8": ("8 grey levels: exact values gone", lambda x: as_uint8((x.float() / 32).floor() * 32 + 16)),
    "faint_to_black": ("values under 8 set to 0: the faint halo gone", lambda x: torch.where(x < 8, 0, x)),
    "white_plateau": ("values over 247 set to 255: the exact whites gone", lambda x: torch.where(x > 247, 255, x)
                      .to(torch.uint8)),
    "noise3": ("integer noise in [-3, 3]: flat areas gone", small_noise),
    "silhouette": ("values over 64 white, the rest black: only the shape", lambda x: torch.where(x > 64, 255, 0)
                   .to(torch.uint8)),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder")
    parser.add_argument("--dataset", required=True, help="the model's dataset (its training split is the real set)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--per-class", type=int, default=400, help="images a side per class")
    parser.add_argument("--epochs", type=int, default=40, help="the classifier's one training budget")
    parser.add_argument("--cues", nargs="+", choices=sorted(CUES), default=list(CUES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    generator = load_generator(args.model).eval()
    config = generator.model_config
    real = load_image_data(args.dataset, split=args.split, image_size=config.image_size, channels=config.channels)
    counts = class_counts(real.labels, config.num_classes, args.per_class * config.num_classes)
    generated = torch.cat([images for _, images in generated_batches(generator, per_class=counts, truncation=1.0)])
    real_images = stratified_subset(real, counts, seed=FLOOR_SEED).images
    settings = C2stSettings(budgets=(args.epochs,))
    results = []
    for cue in args.cues:
        description, transform = CUES[cue]
        started = time.perf_counter()
        scored = c2st(transform(real_images), transform(generated), settings=settings)
        results.append({"cue_removed": cue, "transform": description, "accuracy": round(scored["accuracy"], 4),
                        "interval_95": [round(v, 4) for v in scored["interval_95"]],
                        "minutes": round((time.perf_counter() - started) / 60, 2)})
        print(f"{cue:>15}  {results[-1]['accuracy']:.3f}  {description}", flush=True)
    report_ = {"model": args.model, "dataset": portable_source(args.dataset), "split": args.split,
               "images_per_set": len(real_images), "epochs": args.epochs, "threads": args.threads, "results": results}
    if args.out:
        args.out.write_text(json.dumps(report_, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
