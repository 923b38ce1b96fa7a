"""Turn the emoji images of the npm packages `emoji-datasource-twitter` and `emoji-datasource-google` into a
class-labelled colour dataset (an image folder) that `train.py --dataset` takes.

    python scripts/emoji_from_npm.py --output data/emoji              # runs `npm pack` for both packages itself
    python scripts/emoji_from_npm.py --package emoji-datasource-twitter-16.0.0.tgz \\
        --package emoji-datasource-google-16.0.0.tgz --output data/emoji

Each package holds a 64 px RGBA PNG per emoji and skin-tone variant (img/<vendor>/64/) and emoji.json, whose
`category` is the class: 9 classes (`Component`, the bare skin-tone and hair swatches, is left out). Every image is
composited on a white background (how emoji are drawn to be seen) and written as a 64 px RGB PNG to
OUTPUT/<split>/<category>/<vendor>-<image>.png; training resizes it (64 -> 32 px by area averaging).

The held-out `test` split (for the evaluator's test set and the quiz's real pool) is stratified by class and drawn by
emoji, not by image: an emoji's skin tones and both vendors' drawings of it land in the same split, so near-copies
never sit on both sides. Licences: Twemoji graphics CC-BY 4.0 (Twitter, Inc. and other contributors), Noto Emoji
Apache-2.0 (Google); written to OUTPUT/LICENSES.md. Apple's and Facebook's images are never used (not openly
licensed).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

VERSION = "16.0.0"
VENDORS = {  # vendor -> (npm package, licence line for LICENSES.md)
    "twitter": ("emoji-datasource-twitter", "Twemoji graphics, (c) Twitter, Inc. and other contributors, licensed "
                "under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"),
    "google": ("emoji-datasource-google", "Noto Emoji, (c) Google Inc., licensed under the Apache License 2.0 "
               "(https://www.apache.org/licenses/LICENSE-2.0)"),
}
LEFT_OUT_CATEGORIES = {"Component"}  # skin-tone and hair swatches, not pictures of anything
IMAGE_SIZE = 64


@dataclass(frozen=True)
class Emoji:
    vendor: str
    image: str  # file name in img/<vendor>/64/
    category: str  # the class
    group: str  # the base emoji's code points: its skin tones share them, and so do both vendors' drawings


def catalogue(entries: list[dict], vendor: str) -> list[Emoji]:
    """Every image of one vendor that emoji.json lists, skin-tone variants included, Component left out."""
    has_image = f"has_img_{vendor}"
    emoji = []
    for entry in entries:
        if entry["category"] in LEFT_OUT_CATEGORIES:
            continue
        variants = [entry, *(entry.get("skin_variations") or {}).values()]
        emoji += [Emoji(vendor, v["image"], entry["category"], entry["unified"]) for v in variants if v.get(has_image)]
    return emoji


def read_package(package: Path, vendor: str) -> list[tuple[Emoji, Image.Image]]:
    """(emoji, RGB image composited on white) for every image of the package that emoji.json lists."""
    with tarfile.open(package) as archive:
        names = set(archive.getnames())
        if "package/emoji.json" not in names:
            raise SystemExit(f"error: {package} has no emoji.json; is it the npm package {VENDORS[vendor][0]}?")
        entries = json.load(archive.extractfile("package/emoji.json"))
        images = []
        for emoji in catalogue(entries, vendor):
            member = f"package/img/{vendor}/{IMAGE_SIZE}/{emoji.image}"
            if member in names:  # emoji.json flags an image the tarball lacks in a few versions: skip it
                images.append((emoji, on_white(archive.extractfile(member).read())))
    return images


def on_white(png: bytes) -> Image.Image:
    """A 64 px RGBA PNG composited on a white background, as RGB."""
    with Image.open(io.BytesIO(png)) as image:
        rgba = image.convert("RGBA")
    if rgba.size != (IMAGE_SIZE, IMAGE_SIZE):
        rgba = rgba.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def split_by_emoji(emoji: list[Emoji], test_fraction: float, seed: int) -> set[Emoji]:
    """The test split: in each class, whole emoji groups (all tones, both vendors) drawn at random until about
    test_fraction of the class's images (at least one group) are held out."""
    rng = np.random.default_rng(seed)
    groups: dict[str, dict[str, list[Emoji]]] = defaultdict(lambda: defaultdict(list))
    for e in emoji:
        groups[e.category][e.group].append(e)
    test = set()
    for category in sorted(groups):
        members = groups[category]
        target = test_fraction * sum(len(images) for images in members.values())
        held = 0
        for key in rng.permutation(sorted(members)):
            if held >= target or (held and held + len(members[key]) > 1.5 * target):
                continue  # a large group (a couple in 25 skin tones) would overshoot: try a smaller one
            test.update(members[key])
            held += len(members[key])
    return test


def fetch_packages(folder: Path) -> list[tuple[Path, str]]:
    packages = []
    for vendor, (name, _) in VENDORS.items():
        subprocess.run(["npm", "pack", f"{name}@{VERSION}", "--pack-destination", str(folder)],
                       check=True, capture_output=True)
        packages.append((next(folder.glob(f"{name}-*.tgz")), vendor))
    return packages


def vendor_of(package: Path) -> str:
    for vendor, (name, _) in VENDORS.items():
        if package.name.startswith(name):
            return vendor
    raise SystemExit(f"error: {package.name} is neither of {', '.join(n for n, _ in VENDORS.values())} "
                     "(Apple's and Facebook's images are not openly licensed)")


def write_dataset(images: list[tuple[Emoji, Image.Image]], test: set[Emoji], output: Path) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for emoji, image in images:
        split = "test" if emoji in test else "train"
        folder = output / split / emoji.category
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{emoji.vendor}-{emoji.image}", optimize=True)
        counts[split] += 1
    return counts


def write_licences(output: Path, vendors: list[str]) -> None:
    lines = ["# Licences of these images", "", "Made by scripts/emoji_from_npm.py from the npm packages "
             + ", ".join(f"{VENDORS[v][0]}@{VERSION}" for v in vendors) + " (64 px PNGs composited on white).", ""]
    lines += [f"- `{v}-*.png`: {VENDORS[v][1]}." for v in vendors]
    (output / "LICENSES.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, action="append", default=[],
                        help="an emoji-datasource-{twitter,google}-*.tgz (repeat; default: `npm pack` both)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the image folder (train/, test/)")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="held-out share of each class (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    args = parser.parse_args(argv)
    if not 0 < args.test_fraction < 1:
        parser.error(f"--test-fraction must be between 0 and 1, not {args.test_fraction}")
    if args.output.exists() and any(args.output.iterdir()):
        parser.error(f"{args.output} is not empty; give a new folder")
    with tempfile.TemporaryDirectory() as tmp:
        packages = [(p, vendor_of(p)) for p in args.package] or fetch_packages(Path(tmp))
        images = [pair for package, vendor in packages for pair in read_package(package, vendor)]
    test = split_by_emoji([e for e, _ in images], args.test_fraction, args.seed)
    counts = write_dataset(images, test, args.output)
    write_licences(args.output, [vendor for _, vendor in packages])
    classes = len({e.category for e, _ in images})
    print(f"wrote {counts['train']} train and {counts['test']} test images in {classes} classes to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
