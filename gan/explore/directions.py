"""The main directions of variation of a generator in z (GANSpace, Härkönen et al. 2020), for sliders that edit.

    python -m gan.directions compute --model MODEL [--count K] [--grid FILE.png]   # writes directions.safetensors

GANSpace takes the PCA of an early layer's activations over many random z. For BigGAN, whose z enters through a
linear layer, it does the PCA at that layer's output and carries the components back to z by linear regression. Our
generator's `stem` is that kind of layer: h = W z + b, affine, and it never sees the class. For an affine map and
z ~ N(0, I) the activations' covariance is W W^T, so their principal components are W's left singular vectors u_i
with variances s_i^2, and the regression of z on the PCA coordinates returns the right singular vectors v_i
(W v_i = s_i u_i). The exact answer is therefore the SVD of W: milliseconds, with none of the sampling error that
10,000 random z would add, orthonormal in z by construction, and the same for every class (mixing classes in the
samples would change nothing, as the stem ignores them), which is what sliders that must work in every class want.
A deeper, class-conditioned layer would give per-class, non-linear directions that no single z vector carries.

An amount is in standard deviations of the noise along the direction (1 for z ~ N(0, I)): +-3 spans the training
noise. Directions are saved beside the model with a fingerprint of the stem they came from, so a retrained model
never reuses stale ones.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from ..errors import GanError, reports_errors
from ..model_files import read_safetensors, weights_metadata
from ..models import load_generator
from ..sampling import generate_from_latents, image_grid, latent_from_seed, save_png
from ..version import command_parser

DIRECTIONS_NAME = "directions.safetensors"
DEFAULT_COUNT = 16  # directions kept: the shipped models' first 16 carry ~70% of the stem's variance
SLIDER_RANGE = 3.0  # amounts beyond +-3 standard deviations leave the noise the model was trained on


@dataclass
class Directions:
    """Orthonormal directions in z, largest variance first, and the share of the stem's variance along each."""

    vectors: torch.Tensor  # (k, latent_dim), orthonormal rows
    explained_variance: torch.Tensor  # (k,) shares of the total variance, decreasing
    fingerprint: str = ""  # hash of the stem weights they were computed from


def stem_fingerprint(generator: nn.Module) -> str:
    """A short hash of the stem's weights: directions computed from other weights are stale."""
    weight = generator.stem.weight.detach().cpu().float().contiguous().numpy()
    return hashlib.sha256(weight.tobytes()).hexdigest()[:16]


@torch.no_grad()
def compute_directions(generator: nn.Module, count: int = DEFAULT_COUNT) -> Directions:
    """The top `count` principal directions of the stem's activations, carried back to z (see the module notes)."""
    weight = generator.stem.weight.detach().cpu().double()  # (C0*s*s, latent_dim)
    count = min(count, weight.shape[1])
    if count < 1:
        raise GanError(f"the number of directions must be at least 1, got {count}")
    _, singular, vh = torch.linalg.svd(weight, full_matrices=False)  # vh (latent_dim, latent_dim), rows = v_i
    variance = singular.square() / singular.square().sum()
    vectors = vh[:count]
    # An SVD's signs are arbitrary: fix each so its largest component is positive, so files and sliders are stable.
    signs = torch.sign(vectors.gather(1, vectors.abs().argmax(dim=1, keepdim=True)))
    return Directions(vectors=(vectors * signs).float(), explained_variance=variance[:count].float(),
                      fingerprint=stem_fingerprint(generator))


def save_directions(directions: Directions, path: str | Path) -> Path:
    """Write the directions as a small safetensors file (vectors and explained variance, fingerprint in metadata)."""
    path = Path(path)
    save_file({"directions": directions.vectors.contiguous(),
               "explained_variance": directions.explained_variance.contiguous()}, path,
              metadata={"method": "svd of the stem (GANSpace)", "stem_fingerprint": directions.fingerprint})
    return path


def load_directions(path: str | Path) -> Directions:
    """Read a directions file written by `save_directions`."""
    path = Path(path)
    tensors = read_safetensors(path)
    if set(tensors) != {"directions", "explained_variance"} or tensors["directions"].dim() != 2:
        raise GanError(f"{path} does not hold 'directions' (k, latent_dim) and 'explained_variance'")
    return Directions(vectors=tensors["directions"], explained_variance=tensors["explained_variance"],
                      fingerprint=weights_metadata(path).get("stem_fingerprint", ""))


def directions_for(generator: nn.Module, folder: str | Path | None = None) -> Directions:
    """The model's directions: from folder/directions.safetensors if it matches these weights, else computed (and
    saved there when the folder is writable; a read-only one, like the Hub cache, just means computing again)."""
    path = Path(folder) / DIRECTIONS_NAME if folder is not None else None
    if path is not None and path.is_file():
        try:
            stored = load_directions(path)
            if stored.fingerprint == stem_fingerprint(generator):
                return stored
        except GanError:
            pass  # unreadable: replaced below
    directions = compute_directions(generator)
    if path is not None and path.parent.is_dir():
        try:
            save_directions(directions, path)
        except OSError:
            pass
    return directions


def edited_latent(z: torch.Tensor, directions: Directions, amounts: Sequence[float]) -> torch.Tensor:
    """z (latent_dim,) moved by amounts[i] standard deviations along direction i (missing amounts are 0)."""
    amounts = torch.as_tensor(list(amounts), dtype=torch.float32)
    if amounts.numel() > len(directions.vectors):
        raise GanError(f"got {amounts.numel()} amounts for {len(directions.vectors)} directions")
    if not torch.isfinite(amounts).all():
        raise GanError("direction amounts must be finite numbers")
    return z.float() + amounts @ directions.vectors[: amounts.numel()]


def edit(generator: nn.Module, z: torch.Tensor, class_weights: torch.Tensor | int, directions: Directions,
         amounts: Sequence[float]) -> np.ndarray:
    """The image (H, W, C) uint8 of z moved along the directions, with a class index or mixture (K,)."""
    if isinstance(class_weights, (int, np.integer)):
        labels = torch.tensor([int(class_weights)])  # (1,) class index
    else:
        labels = torch.as_tensor(class_weights, dtype=torch.float32)[None]  # (1, K) mixture
    return generate_from_latents(generator, edited_latent(z, directions, amounts)[None], labels)[0]


def direction_grid(generator: nn.Module, directions: Directions, *, seed: int = 0, label: int = 0,
                   steps: int = 7) -> np.ndarray:
    """One row per direction, amounts -SLIDER_RANGE..SLIDER_RANGE across, for one (class, seed): uint8 image."""
    z = latent_from_seed(seed, generator.model_config.latent_dim)
    rows = [edit(generator, z, label, directions, [0.0] * i + [float(a)])
            for i in range(len(directions.vectors)) for a in np.linspace(-SLIDER_RANGE, SLIDER_RANGE, steps)]
    return image_grid(np.stack(rows), rows=len(directions.vectors))


@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser, commands = command_parser("python -m gan.directions", __doc__)
    compute = commands.add_parser("compute", help=f"compute the directions and write {DIRECTIONS_NAME}")
    compute.add_argument("--model", required=True, help="model folder or Hub repo id")
    compute.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"directions kept (default {DEFAULT_COUNT})")
    compute.add_argument("--out", help=f"file to write (default: MODEL/{DIRECTIONS_NAME} for a folder)")
    compute.add_argument("--grid", help="also write a PNG: one row per direction, amounts -3..3, class 0, seed 0")
    args = parser.parse_args(argv)
    generator = load_generator(args.model)
    if args.out is None and not Path(args.model).is_dir():
        raise GanError("--model is not a local folder: give --out FILE for the directions")
    out = Path(args.out) if args.out else Path(args.model) / DIRECTIONS_NAME
    directions = compute_directions(generator, args.count)
    save_directions(directions, out)
    shares = ", ".join(f"{v:.3f}" for v in directions.explained_variance.tolist())
    print(f"wrote {len(directions.vectors)} directions to {out}; explained variance: {shares} "
          f"(total {float(directions.explained_variance.sum()):.3f})")
    if args.grid:
        save_png(direction_grid(generator, directions), args.grid, scale=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
