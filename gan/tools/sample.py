"""Generate labeled images from a model: `python -m gan.sample --out samples.npz` or `--out DIR` (an imagefolder).

Every image is addressed by (class, seed, truncation): class c with seed s is the same picture in the CLI, the
Python API and the app. `--per-class N` means seeds 0..N-1 for every class; `--seeds 5,7,10-19` lists them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from ..errors import GanError, reports_errors
from ..model_files import model_or_default
from ..models import load_generator
from ..sampling import check_seed, check_truncation, generate, image_grid, resolve_class, save_png
from ..version import add_version_flag

def parse_seeds(text: str) -> list[int]:
    """'1,2,10-12' -> [1, 2, 10, 11, 12]; every seed an integer in [0, 2**32)."""
    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        match = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if match:
            first, last = int(match[1]), int(match[2])
            if last < first:
                raise GanError(f"seed range {part!r} runs backwards")
            if last - first >= 1_000_000:
                raise GanError(f"seed range {part!r} is too long (at most 1,000,000 seeds)")
            seeds.extend(range(check_seed(first), check_seed(last) + 1))
        elif re.fullmatch(r"\d+", part):
            seeds.append(check_seed(int(part)))
        else:
            raise GanError(f"seeds must be integers or ranges like 10-19, got {part!r}")
    return seeds


def parse_classes(text: str | None, class_names: list[str]) -> list[int]:
    """'Sneaker,0,bag' -> class indices; None -> every class."""
    if text is None:
        return list(range(len(class_names)))
    return [resolve_class(part, class_names) for part in text.split(",") if part.strip()]


def folder_name(class_name: str) -> str:
    """A class name made safe as a folder name ('T-shirt/top' -> 'T-shirt-top')."""
    return re.sub(r"[\\/:*?\"<>|]+", "-", class_name).strip(" .") or "class"


def write_npz(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """x: uint8 (N, H, W) for grey or (N, H, W, 3); y: int64 class indices."""
    x = images[..., 0] if images.shape[-1] == 1 else images
    np.savez_compressed(path, x=x, y=labels.astype(np.int64))


def write_imagefolder(folder: Path, images: np.ndarray, labels: np.ndarray, seeds: list[int],
                      class_names: list[str]) -> None:
    """One subfolder per class name, one PNG per (class, seed): `datasets.load_dataset("imagefolder", ...)` reads it."""
    for image, label, seed in zip(images, labels, seeds):
        target = folder / folder_name(class_names[label])
        target.mkdir(parents=True, exist_ok=True)
        save_png(image, target / f"seed{seed:010d}.png")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gan.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(p)
    p.add_argument("--model", default=None,
                   help="model folder or Hub repo id (default: models/fashion-mnist of a checkout)")
    p.add_argument("--classes", default=None, help="comma-separated class names or indices (default: all)")
    p.add_argument("--seeds", default=None, help="seeds for every class: list and ranges, e.g. 0-99 or 3,5,8")
    p.add_argument("--per-class", type=int, default=None, help="images per class, seeds 0..N-1 (default 10)")
    p.add_argument("--truncation", type=float, default=None, help="psi in (0, 1] (default: the model's)")
    p.add_argument("--out", default=None, help="FILE.npz (arrays x, y) or a folder (labeled imagefolder of PNGs)")
    p.add_argument("--grid", default=None, help="also write FILE.png with one row per requested class")
    p.add_argument("--batch-size", type=int, default=256, help="images per generator call")
    return p


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.out is None and args.grid is None:
        raise GanError("nothing to write: give --out FILE.npz, --out DIR and/or --grid FILE.png")
    if args.seeds is not None and args.per_class is not None:
        raise GanError("give either --seeds or --per-class, not both")
    if args.per_class is not None and not 1 <= args.per_class <= 1_000_000:
        raise GanError(f"--per-class must be between 1 and 1000000, got {args.per_class}")
    generator = load_generator(model_or_default(args.model))
    config = generator.model_config
    seeds = parse_seeds(args.seeds) if args.seeds is not None else list(range(args.per_class or 10))
    classes = parse_classes(args.classes, config.class_names)
    psi = check_truncation(config.default_truncation if args.truncation is None else args.truncation)
    labels = np.repeat(np.array(classes, dtype=np.int64), len(seeds))
    all_seeds = seeds * len(classes)
    images = generate(generator, labels.tolist(), all_seeds, psi, batch_size=args.batch_size)
    if args.out is not None:
        out = Path(args.out)
        if out.suffix.lower() == ".npz":
            out.parent.mkdir(parents=True, exist_ok=True)
            write_npz(out, images, labels)
        else:
            write_imagefolder(out, images, labels, all_seeds, config.class_names)
    if args.grid is not None:
        save_png(image_grid(images, rows=len(classes)), args.grid, scale=max(1, 64 // config.image_size))
    print(f"wrote {len(images)} images ({len(classes)} classes x {len(seeds)} seeds, psi {psi})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
