"""Images addressed by (class, seed, truncation psi): the same address gives the same picture everywhere.

Noise comes from NumPy's legacy `RandomState`, whose stream NumPy guarantees never to change, so a seed means the
same z on every machine, OS and library version. Truncation: each component of z is drawn from a standard normal
truncated to [-3, 3] (resampled from the same stream; at 3 sigma this touches 0.3% of components, so psi = 1 is the
untruncated model for every practical purpose), then multiplied by psi in (0, 1]. Smaller psi trades variety for
typical, cleaner images, and images change smoothly as psi moves (BigGAN's truncation trick, continuous in psi).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .errors import GanError
from .inference import can_optimize, optimized

TRUNCATION_BOUND = 3.0  # components of z beyond this many standard deviations are resampled
MAX_SEED = 2**32 - 1  # RandomState accepts seeds in [0, 2**32)


def check_seed(seed: object) -> int:
    """Return the seed as an int, or raise GanError if it is not an integer in [0, 2**32)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        else:
            raise GanError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise GanError(f"seed must lie in [0, {MAX_SEED}], got {seed}")
    return int(seed)


def check_truncation(psi: object) -> float:
    """Return psi as a float, or raise GanError if it is not in (0, 1]."""
    try:
        value = float(psi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise GanError(f"truncation must be a number in (0, 1], got {psi!r}") from None
    if not 0.0 < value <= 1.0:
        raise GanError(f"truncation must be in (0, 1], got {psi}")
    return value


def resolve_class(name_or_index: object, class_names: Sequence[str]) -> int:
    """Map a class name (case-insensitive) or index (int or digit string) to its index."""
    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        index = int(name_or_index)
    else:
        text = str(name_or_index).strip()
        lowered = [name.lower() for name in class_names]
        if text.lower() in lowered:
            return lowered.index(text.lower())
        if not text.lstrip("-").isdigit():
            raise GanError(f"unknown class {text!r}; known classes: {', '.join(class_names)}")
        index = int(text)
    if not 0 <= index < len(class_names):
        raise GanError(f"class index {index} is out of range; this model has classes 0-{len(class_names) - 1}")
    return index


_streams = threading.local()


def seeded_stream(seed: int) -> np.random.RandomState:
    """This thread's RandomState, reseeded: the same stream as RandomState(seed) (reseeding also clears the cached
    Gaussian), but ~1.5 us instead of ~100 us, which made seeds cost more than the forward pass of a served grid."""
    rng = getattr(_streams, "rng", None)
    if rng is None:
        rng = _streams.rng = np.random.RandomState()
    rng.seed(seed)
    return rng


def latent_from_seed(seed: int, latent_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """The noise vector z (latent_dim,) of a seed: truncated standard normal scaled by psi."""
    rng = seeded_stream(check_seed(seed))
    z = rng.standard_normal(latent_dim)
    outside = np.abs(z) > TRUNCATION_BOUND
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > TRUNCATION_BOUND
    return torch.from_numpy(check_truncation(truncation) * z).float()


def latents_from_seeds(seeds: Sequence[int], latent_dim: int, truncation: float = 1.0) -> torch.Tensor:
    """Stack the z of each seed: (N, latent_dim)."""
    return torch.stack([latent_from_seed(seed, latent_dim, truncation) for seed in seeds])


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) floats in [-1, 1] -> (B, H, W, C) uint8."""
    scaled = ((images.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255)
    return np.ascontiguousarray(scaled.to(torch.uint8).permute(0, 2, 3, 1).numpy())


@torch.no_grad()
def generate(
    generator: nn.Module,
    classes: Sequence[int] | torch.Tensor,
    seeds: Sequence[int],
    truncation: float = 1.0,
    *,
    batch_size: int = 64,
    fast: bool = True,
) -> np.ndarray:
    """Images (N, H, W, C) uint8 for N (class, seed) pairs; classes may be indices or (N, K) class mixtures.
    fast: run the inference-optimised copy of the generator (gan/inference.py; same pixels within one grey level,
    built once per weights) where it applies; False runs the generator's own forward."""
    if len(classes) != len(seeds):
        raise GanError(f"got {len(classes)} classes for {len(seeds)} seeds; give one class per seed")
    config = generator.model_config
    z = latents_from_seeds(seeds, config.latent_dim, truncation)
    labels = classes if isinstance(classes, torch.Tensor) else torch.tensor(list(classes), dtype=torch.long)
    return generate_from_latents(generator, z, labels, batch_size=batch_size, fast=fast)


@torch.no_grad()
def generate_from_latents(
    generator: nn.Module, z: torch.Tensor, labels: torch.Tensor, *, batch_size: int = 64, fast: bool = True
) -> np.ndarray:
    """Run the generator in eval mode (so an image never depends on its batch) in chunks; uint8 (N, H, W, C).
    fast: as in `generate`."""
    config = generator.model_config
    if len(z) == 0:
        return np.zeros((0, config.image_size, config.image_size, config.channels), dtype=np.uint8)
    if fast and can_optimize(generator):
        generator = optimized(generator)  # always in eval form; the caller's generator keeps its mode
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        chunks = [
            to_uint8(generator(z[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)))
            for i in range(0, len(z), batch_size)
        ]
    finally:
        generator.train(was_training)
    return np.concatenate(chunks)


def class_grid(generator: nn.Module, seeds: Sequence[int], truncation: float = 1.0) -> np.ndarray:
    """One row per class, one column per seed: the fixed-noise grid that training saves and the model card shows."""
    num_classes = generator.model_config.num_classes
    classes = [c for c in range(num_classes) for _ in seeds]
    images = generate(generator, classes, list(seeds) * num_classes, truncation)
    return image_grid(images, rows=num_classes)


def image_grid(images: np.ndarray, *, rows: int, padding: int = 2, fill: int = 0) -> np.ndarray:
    """Tile (N, H, W, C) images into one (rows*(H+p)+p, cols*(W+p)+p, C) image, row by row."""
    n, h, w, c = images.shape
    cols = max(1, -(-n // rows))
    grid = np.full((rows * (h + padding) + padding, cols * (w + padding) + padding, c), fill, dtype=np.uint8)
    for i, image in enumerate(images):
        top, left = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def to_pil(image: np.ndarray, scale: int = 1) -> Image.Image:
    """(H, W, C) uint8 -> PIL image ("L" or "RGB"), optionally upscaled with nearest neighbour (crisp pixels)."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    return pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST) if scale > 1 else pil


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write an (H, W, C) uint8 image as PNG."""
    to_pil(image, scale).save(path, format="PNG")
    return Path(path)


def save_gif(frames: Sequence[np.ndarray], path: str | Path, *, duration_ms: int | Sequence[int] = 200,
             scale: int = 1) -> Path:
    """Write (H, W, C) uint8 frames as a looping GIF; duration_ms may give one duration per frame."""
    if not frames:
        raise GanError("no frames to write to a GIF")
    pils = [to_pil(frame, scale) for frame in frames]
    durations = list(duration_ms) if not isinstance(duration_ms, int) else duration_ms
    pils[0].save(path, format="GIF", save_all=True, append_images=pils[1:], duration=durations, loop=0)
    return Path(path)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two vectors at fractions t (T,) -> (T, D); falls back to lerp if parallel."""
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:
        return torch.lerp(z0, z1, t[:, None])
    return (torch.sin((1 - t)[:, None] * omega) * z0 + torch.sin(t[:, None] * omega) * z1) / torch.sin(omega)


def interpolate(
    generator: nn.Module,
    start: tuple[int, int],
    end: tuple[int, int],
    steps: int,
    *,
    mode: str = "slerp",
    truncation: float = 1.0,
    fast: bool = True,
) -> np.ndarray:
    """Frames (steps, H, W, C) walking from (class, seed) `start` to `end`; the class condition is blended too.
    fast: as in `generate`."""
    if mode not in ("slerp", "lerp"):
        raise GanError(f"interpolation mode must be 'slerp' or 'lerp', not {mode!r}")
    if not 2 <= steps <= 256:
        raise GanError(f"steps must be between 2 and 256, got {steps}")
    config = generator.model_config
    (class0, seed0), (class1, seed1) = start, end
    z0, z1 = (latent_from_seed(s, config.latent_dim, truncation) for s in (seed0, seed1))
    t = torch.linspace(0.0, 1.0, steps)
    z = slerp(z0, z1, t) if mode == "slerp" else torch.lerp(z0, z1, t[:, None])
    z[0], z[-1] = z0, z1  # exact endpoints: the first and last frames equal generate()'s images
    onehot = torch.eye(config.num_classes)
    mixtures = torch.lerp(onehot[class0], onehot[class1], t[:, None])  # (steps, K): class weights blend linearly
    return generate_from_latents(generator, z, mixtures, fast=fast)
