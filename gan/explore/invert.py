"""Bring your own image: project a visitor's picture into the model (GAN inversion) and play with what comes back.

    python -m gan.invert IMAGE --model MODEL [--evaluator DIR] [--steps N] [--seconds S] [--seed N] [--out DIR]

`invert` looks for the noise z and the class mixture (softmax of learnable class logits) whose image is closest to
the picture, by Adam on a pixel loss plus, with an evaluator, a loss on the evaluator's features (which keeps the
class and the shape right where pixels alone would settle for a blurry average). It starts from the best of several
seeds x every class, scored in one batch by the same loss, and caps both steps and seconds. The same picture and seed
give the same answer (the learning-rate schedule counts steps, never the clock), unless the time cap cuts a run short. `load_user_image` turns any upload into the model's image format; `class_morphs` and
`walk_to_seed` animate the result.
"""

from __future__ import annotations

import argparse
import functools
import io
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import nn

from ..config import ModelConfig
from ..data import GREY_MODES, high_depth_to_grey, resize_and_crop, to_model_range
from ..errors import GanError, reports_errors
from ..model_files import model_or_default
from ..models import load_generator
from ..quality.evaluator import load_evaluator, predict
from ..quality.metrics import check_evaluator_fits
from ..sampling import check_seed, generate_from_latents, image_grid, latents_from_seeds, save_gif, save_png, slerp
from ..version import add_version_flag

MAX_PIXELS = 40_000_000  # ~7,700 x 5,200: more than any camera photo; anything bigger is a bomb or a mistake
MAX_FILE_BYTES = 50 * 2**20  # uploads bigger than this are refused before decoding
WORK_SIDE = 512  # big pictures are shrunk to this first, so trimming and filtering stay fast
TRIM_LEVEL = 48  # grey levels from the background that count as the object when trimming the margins
START_SEEDS = 4  # start candidates: these many seeds x every class, scored in one batch
START_TRUNCATION = 0.7  # candidates' psi: typical, clean images are better starting points than rare ones
RESTARTS = 2  # the best few candidates are optimised side by side (Adam is per element: no interaction)
START_LOGIT = 4.0  # the start class's logit; softmax gives it ~0.86 of the mixture with 10 classes
Z_LR, LOGIT_LR = 0.1, 0.1  # Adam learning rates (cosine-decayed to a tenth over the run)
FEATURE_WEIGHT = 0.5  # weight of the evaluator-feature loss next to the pixel MSE
LATENT_WEIGHT = 0.01  # pulls |z|^2 / latent_dim towards 1, where the training noise lives
DEFAULT_STEPS, DEFAULT_SECONDS = 150, 6.0


# ----------------------------------------------------------------------------------------------- pictures in

@dataclass(frozen=True)
class Framing:
    """How the dataset frames its objects, so an upload can be framed the same way before inversion."""

    background: int | None = 0  # grey level of the empty background (0 = black, as in MNIST); None = no uniform one
    fill: float = 1.0  # share of the side the object's longest edge spans (Fashion-MNIST ~1.0, MNIST ~0.7)


@torch.no_grad()
def measure_framing(generator: nn.Module, *, seeds: int = 8) -> Framing:
    """The framing of the model's own images (seeds x every class): the median of their 1-pixel border ring if
    three in four border pixels lie near it (a plain background, like MNIST's black), and the objects' median extent."""
    config = generator.model_config
    classes = torch.arange(config.num_classes).repeat_interleave(seeds)
    z = latents_from_seeds(range(seeds), config.latent_dim).repeat(config.num_classes, 1)
    grey = generate_from_latents(generator, z, classes).mean(axis=3)  # (N, H, W)
    ring = np.concatenate([grey[:, 0], grey[:, -1], grey[:, :, 0], grey[:, :, -1]], axis=1)
    level = float(np.median(ring))
    if np.mean(np.abs(ring - level) <= TRIM_LEVEL / 2) < 0.75:
        return Framing(background=None)
    boxes = [_object_box(image, level) for image in grey]
    extents = [max(bottom - top, right - left) for top, left, bottom, right in filter(None, boxes)]
    fill = float(np.median(extents or [config.image_size])) / config.image_size
    return Framing(background=round(level), fill=min(1.0, fill))


def load_user_image(source: object, config: ModelConfig, *, framing: Framing | None = None) -> np.ndarray:
    """Any picture (path, bytes, file object, NumPy array, PIL image, Gradio editor dict) as the model's uint8
    (H, W, C) image, framed like the dataset (see `Framing`); GanError with advice for anything unusable."""
    framing = framing or Framing()
    image = _open_picture(source)
    mode = "L" if config.channels == 1 else "RGB"
    image = _flatten(image, mode, framing.background)
    image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    if framing.background is None:
        # No plain background (photos, CIFAR-like data): resize and centre-crop exactly as the dataset loader does.
        image = resize_and_crop(image, config.image_size)
    else:
        if config.channels == 1:  # a colour picture's negative is another picture: only grey data are negated
            image = _match_polarity(image, framing.background)
        image = _frame_object(image, framing, config.image_size)
    array = np.array(image, dtype=np.uint8)  # a writable copy (np.asarray of a PIL image is read-only)
    return array[..., None] if array.ndim == 2 else array  # (H, W, C)


def _open_picture(source: object) -> Image.Image:
    """Decode the first frame of a picture, upright (EXIF), refusing bombs, corrupt files and non-images."""
    if isinstance(source, dict):  # gr.ImageEditor / gr.Sketchpad values: the flattened drawing is "composite"
        source = source.get("composite")
    if source is None:
        raise GanError("no picture given: upload an image or draw one first.")
    if isinstance(source, np.ndarray):
        return _array_to_picture(source)
    if isinstance(source, Image.Image):
        _check_pixels(*source.size)
        return source.copy()  # the current frame, and the caller's image stays untouched
    data = _read_bytes(source)
    try:
        image = Image.open(io.BytesIO(data))
        _check_pixels(*image.size)  # from the header alone, before anything is decompressed
        image.seek(0)  # animations: the first frame
        image.load()
        return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise GanError("this file is not an image this app can read; upload a PNG, JPEG, GIF, WebP or BMP.") from None
    except Image.DecompressionBombError:
        raise GanError(f"this image is too large (over {MAX_PIXELS // 1_000_000} megapixels); "
                       "shrink it and upload it again.") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as error:
        raise GanError(f"this image file is damaged or truncated ({error}); "
                       "open it in an image editor, save it again, and upload the copy.") from None


def _read_bytes(source: object) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise GanError(f"there is no file {path}; check the path.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise GanError(f"{path.name} is over {MAX_FILE_BYTES // 2**20} MB; upload a smaller image.")
        data = path.read_bytes()
    elif hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)
    else:
        raise GanError(f"cannot read a picture from a {type(source).__name__}; give a file, bytes or an array.")
    if len(data) > MAX_FILE_BYTES:
        raise GanError(f"this file is over {MAX_FILE_BYTES // 2**20} MB; upload a smaller image.")
    return data


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise GanError("this image is empty (0 pixels); upload a picture with something in it.")
    if width * height > MAX_PIXELS:
        raise GanError(f"this image is too large ({width} x {height} pixels, over {MAX_PIXELS // 1_000_000} "
                       "megapixels); shrink it and upload it again.")


def _array_to_picture(array: np.ndarray) -> Image.Image:
    """(H, W), (H, W, 1|3|4) arrays of bools, integers (8 or 16 bit) or floats in [0, 1] or [0, 255]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise GanError(f"an image array must be (H, W) or (H, W, 3|4), got shape {array.shape}.")
    _check_pixels(array.shape[1], array.shape[0])
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise GanError("the image array holds NaN or infinite values.")
    peak = values.max(initial=0.0)
    if array.dtype == bool or (array.dtype.kind == "f" and peak <= 1.0):
        values = values * 255.0
    elif peak > 255:
        values = values / 257.0  # 16-bit: 65535 -> 255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def _flatten(image: Image.Image, mode: str, background: int | None) -> Image.Image:
    """One grey or RGB layer: deep greys scaled to 8 bits, palettes and CMYK converted, transparency composited."""
    if image.mode in GREY_MODES - {"1", "L", "LA"}:
        image = high_depth_to_grey(image)  # 16-bit and float greys: scaled, not clipped
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = _backdrop(rgba, background) if mode == "L" else (255 if background is None else background,) * 3
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (*backdrop[:3], 255)), rgba)
    try:
        return image.convert(mode)
    except (ValueError, OSError) as error:
        raise GanError(f"images in colour mode {image.mode} cannot be converted ({error}); "
                       "save it as an RGB PNG or JPEG and upload that.") from None


def _backdrop(rgba: Image.Image, background: int | None) -> tuple[int, int, int, int]:
    """What transparent pixels of a grey model's upload become: the dataset's background, unless the drawing itself is
    in that colour (black ink on a transparent canvas would vanish on MNIST's black): then its opposite, and
    `_match_polarity` flips it. A colour model's uploads always get the dataset's background (emoji: white)."""
    if background is None:
        return (255, 255, 255, 255)  # as the dataset loader does: icons and sprites are drawn to be seen on white
    pixels = np.asarray(rgba, dtype=np.float64)
    alpha = pixels[..., 3] / 255.0
    ink = float((pixels[..., :3].mean(axis=2) * alpha).sum() / max(alpha.sum(), 1e-9))  # mean grey of the drawing
    level = background if abs(ink - background) >= 64 or alpha.sum() == 0 else 255 - background
    return (level, level, level, 255)


def _match_polarity(image: Image.Image, background: int) -> Image.Image:
    """Negate a picture whose border is the opposite of the dataset's background: a product photo on white becomes
    Fashion-MNIST's object on black (Zalando negated their photos the same way), black ink becomes MNIST's white."""
    grey = np.asarray(image.convert("L"), dtype=np.float64)
    ring = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return ImageOps.invert(image) if abs(float(np.median(ring)) - background) > 127 else image


def _object_box(grey: np.ndarray, background: float) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right), exclusive, of the pixels more than TRIM_LEVEL from the background; None if none."""
    rows, cols = np.nonzero(np.abs(grey - background) > TRIM_LEVEL)
    if rows.size == 0:
        return None
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def _frame_object(image: Image.Image, framing: Framing, size: int) -> Image.Image:
    """Trim the margins, then centre the object on a square of background whose side makes it span `fill`, as the
    datasets were made (Fashion-MNIST: longest edge to 28 px, shorter one padded; MNIST: digit in a 20 px box)."""
    box = _object_box(np.asarray(image.convert("L"), dtype=np.float64), framing.background)
    if box is not None:  # a blank picture has nothing to trim
        top, left, bottom, right = box
        image = image.crop((left, top, right, bottom))
    side = max(1, math.ceil(max(image.size) / framing.fill))
    fill_colour = framing.background if image.mode == "L" else (framing.background,) * 3
    canvas = Image.new(image.mode, (side, side), fill_colour)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    resample = Image.Resampling.LANCZOS if side > size else Image.Resampling.BICUBIC
    return canvas.resize((size, size), resample)


# ----------------------------------------------------------------------------------------------- inversion

@dataclass
class Inversion:
    """What `invert` found: the address (z, class mixture) of the closest image the model makes, and how close."""

    z: torch.Tensor  # (latent_dim,) noise
    class_weights: torch.Tensor  # (K,) class mixture: non-negative, sums to 1
    reconstruction: np.ndarray  # uint8 (H, W, C): the generator's image of (z, class_weights)
    mixture_class: int  # argmax of class_weights: the class the image lands in
    evaluator_class: int | None  # the evaluator's verdict on the reconstruction (None without an evaluator)
    pixel_error: float  # mean absolute difference from the target, in grey levels (0-255)
    steps: int  # optimisation steps taken (capped by `steps` and `max_seconds`)
    seconds: float  # wall time of the whole inversion


class _Objective:
    """Per-image loss (B,) of generated images (B, C, H, W) against one target: pixel MSE, plus the evaluator
    features' squared error relative to the target's feature energy (so the weight does not depend on its scale)."""

    def __init__(self, target: torch.Tensor, evaluator: nn.Module | None):
        self.target, self.evaluator = target, evaluator  # target (1, C, H, W) in [-1, 1]
        if evaluator is not None:
            with torch.no_grad():
                self.target_features = evaluator.features(target)  # (1, F)
            self.feature_scale = self.target_features.square().mean().clamp_min(1e-6)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        loss = (images - self.target).square().mean(dim=(1, 2, 3))
        if self.evaluator is not None:
            features = self.evaluator.features(images)
            loss = loss + FEATURE_WEIGHT * (features - self.target_features).square().mean(dim=1) / self.feature_scale
        return loss


def invert(generator: nn.Module, image: np.ndarray, *, evaluator: nn.Module | None = None,
           steps: int = DEFAULT_STEPS, max_seconds: float = DEFAULT_SECONDS, seed: int = 0,
           progress: Callable[[float], None] | None = None, pause: Callable[[], None] | None = None) -> Inversion:
    """Find the z and class mixture whose image is closest to `image` (uint8 (H, W, C), e.g. from
    `load_user_image`); at most `steps` Adam steps and about `max_seconds`; `progress(fraction)` as it goes;
    `pause()` before each step (a server lets its visitors' requests go first there; the time counts)."""
    _first_optimizer_imports()  # once per process, before the clock starts
    started = time.perf_counter()
    config = generator.model_config
    if image.shape != (config.image_size, config.image_size, config.channels) or image.dtype != np.uint8:
        raise GanError(f"the model inverts uint8 {config.image_size}x{config.image_size}x{config.channels} images, "
                       f"got {image.dtype} {image.shape}; convert it with load_user_image first.")
    if steps < 0 or max_seconds <= 0:
        raise GanError("steps must be at least 0 and max_seconds positive.")
    if evaluator is not None:
        check_evaluator_fits(evaluator, config)
    target = to_model_range(torch.tensor(image).permute(2, 0, 1)[None].contiguous())  # (1, C, H, W), a copy
    report = progress or (lambda fraction: None)
    pause = pause or (lambda: None)
    report(0.0)
    with _eval_mode(generator, evaluator):
        objective = _Objective(target, evaluator)
        pause()
        z, logits = _best_starts(generator, objective, check_seed(seed))
        z, logits, taken = _optimise(generator, objective, z, logits, steps=steps, deadline=started + max_seconds,
                                     started=started, report=report, pause=pause)
    weights = logits.softmax(dim=0)
    reconstruction = generate_from_latents(generator, z[None], weights[None])[0]
    verdict = None if evaluator is None else int(predict(evaluator, reconstruction[None])[0])
    report(1.0)
    return Inversion(z=z, class_weights=weights, reconstruction=reconstruction,
                     mixture_class=int(weights.argmax()), evaluator_class=verdict,
                     pixel_error=float(np.abs(reconstruction.astype(np.float64) - image).mean()),
                     steps=taken, seconds=time.perf_counter() - started)


@functools.cache
def _first_optimizer_imports() -> None:
    """The first torch.optim.Adam of a process imports torch._dynamo: ~2 s, and 30 s was seen on a busy machine, which
    would eat a whole time-capped search (0 steps). Paid here, outside the search's clock."""
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])


@torch.no_grad()
def _best_starts(generator: nn.Module, objective: _Objective, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The RESTARTS best of START_SEEDS seeds x every class by the objective: z (R, D) and class logits (R, K)."""
    config = generator.model_config
    k = config.num_classes
    seeds = [(seed + i) % 2**32 for i in range(START_SEEDS)]
    z = latents_from_seeds(seeds, config.latent_dim, START_TRUNCATION).repeat(k, 1)  # (S*K, D), class-major
    classes = torch.arange(k).repeat_interleave(len(seeds))  # (S*K,)
    losses = objective(generator(z, classes))
    best = losses.argsort()[:RESTARTS]  # argsort is stable on ties, so the choice is deterministic
    return z[best].clone(), START_LOGIT * F.one_hot(classes[best], k).float()


def _optimise(generator: nn.Module, objective: _Objective, z: torch.Tensor, logits: torch.Tensor, *, steps: int,
              deadline: float, started: float, report: Callable[[float], None], pause: Callable[[], None]):
    """Adam on z and the class logits of each start side by side; returns the best start's (z, logits), steps."""
    z, logits = z.clone().requires_grad_(), logits.clone().requires_grad_()
    optimizer = torch.optim.Adam([{"params": [z], "lr": Z_LR}, {"params": [logits], "lr": LOGIT_LR}])
    base_rates = [group["lr"] for group in optimizer.param_groups]
    taken, step_seconds = 0, 0.0
    for step in range(steps):
        pause()
        now = time.perf_counter()
        # Stop while one more step and the final pick (about another) still fit: the cap is on the whole request.
        if now + 2 * step_seconds >= deadline:
            break
        time_used = (now - started) / (deadline - started)
        # The schedule follows steps, never the clock, so the result does not depend on the machine's speed
        # (unless the time cap cuts the run short).
        for group, rate in zip(optimizer.param_groups, base_rates):
            group["lr"] = rate * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))  # cosine from 1x to 0.1x
        loss = _total_loss(generator, objective, z, logits).sum()
        # Gradients for z and the logits only: the generator's own parameters are shared with other requests.
        optimizer.zero_grad(set_to_none=True)
        z.grad, logits.grad = torch.autograd.grad(loss, [z, logits])
        optimizer.step()
        taken, step_seconds = step + 1, time.perf_counter() - now
        report(max(taken / steps, time_used))
    with torch.no_grad():
        best = int(_total_loss(generator, objective, z, logits).argmin())
    return z[best].detach().clone(), logits[best].detach().clone(), taken


def _total_loss(generator: nn.Module, objective: _Objective, z: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The objective plus a pull of |z|^2 / D towards 1: a real picture the model cannot make exactly would
    otherwise drive z far outside the noise it was trained on, where images turn to artefacts: (B,)."""
    prior = (z.square().mean(dim=1) - 1.0).square()
    return objective(generator(z, logits.softmax(dim=1))) + LATENT_WEIGHT * prior


@contextmanager
def _eval_mode(*models: nn.Module | None) -> Iterator[None]:
    """Eval mode (batch norm on running statistics: an image never depends on the rest of its batch) for the
    duration, then each model's mode as it was."""
    present = [model for model in models if model is not None]
    modes = [model.training for model in present]
    for model in present:
        model.eval()
    try:
        yield
    finally:
        for model, mode in zip(present, modes):
            model.train(mode)


# ----------------------------------------------------------------------------------------------- animations

def class_morphs(generator: nn.Module, inversion: Inversion, *, frames: int = 8) -> np.ndarray:
    """Frames (K, frames, H, W, C): the inverted image turning into each class (same z, the class weights moved
    linearly from the inversion's mixture to that class); the last frame of row k is the image as class k."""
    if not 2 <= frames <= 64:
        raise GanError(f"frames must be between 2 and 64, got {frames}")
    k = generator.model_config.num_classes
    t = torch.linspace(0.0, 1.0, frames)[None, :, None]  # (1, T, 1)
    mixtures = torch.lerp(inversion.class_weights[None, None], torch.eye(k)[:, None], t)  # (K, T, K)
    z = inversion.z[None].expand(k * frames, -1)
    images = generate_from_latents(generator, z, mixtures.reshape(k * frames, k))
    return images.reshape(k, frames, *images.shape[1:])


def walk_to_seed(generator: nn.Module, inversion: Inversion, seed: int, *, target_class: int | None = None,
                 frames: int = 16, truncation: float = 1.0) -> np.ndarray:
    """Frames (frames, H, W, C) walking from the inverted image to (target_class, seed): z by slerp, class weights
    linearly; target_class defaults to the class the inversion landed in. Write a GIF with sampling.save_gif."""
    if not 2 <= frames <= 256:
        raise GanError(f"frames must be between 2 and 256, got {frames}")
    config = generator.model_config
    end_class = inversion.mixture_class if target_class is None else target_class
    if not 0 <= end_class < config.num_classes:
        raise GanError(f"class {end_class} is out of range; this model has classes 0-{config.num_classes - 1}")
    z_end = latents_from_seeds([seed], config.latent_dim, truncation)[0]
    t = torch.linspace(0.0, 1.0, frames)
    z = slerp(inversion.z, z_end, t)
    z[0], z[-1] = inversion.z, z_end  # exact endpoints: the reconstruction and generate()'s image of the seed
    mixtures = torch.lerp(inversion.class_weights[None], torch.eye(config.num_classes)[end_class][None], t[:, None])
    return generate_from_latents(generator, z, mixtures)


# ----------------------------------------------------------------------------------------------- command line

@reports_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gan.invert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_flag(parser)
    parser.add_argument("image", help="the picture to invert: any common format, size or colour mode")
    parser.add_argument("--model", default=None,
                        help="model folder or Hub repo id (default: models/fashion-mnist of a checkout)")
    parser.add_argument("--evaluator", help="evaluator folder: adds its feature loss and its verdict (default: none)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"step cap (default {DEFAULT_STEPS})")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"time cap in seconds (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--seed", type=int, default=0, help="first seed of the start candidates (default 0)")
    parser.add_argument("--walk-seed", type=int, default=1, help="seed the walk GIF ends at (default 1)")
    parser.add_argument("--out", default="inversion",
                        help="folder for target.png, reconstruction.png, morphs.png and walk.gif (default ./inversion)")
    args = parser.parse_args(argv)
    generator = load_generator(model_or_default(args.model))
    evaluator = load_evaluator(args.evaluator) if args.evaluator else None
    target = load_user_image(args.image, generator.model_config, framing=measure_framing(generator))
    found = invert(generator, target, evaluator=evaluator, steps=args.steps, max_seconds=args.seconds,
                   seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scale = max(1, 128 // generator.model_config.image_size)
    save_png(target, out / "target.png", scale=scale)
    save_png(found.reconstruction, out / "reconstruction.png", scale=scale)
    morphs = class_morphs(generator, found)  # (K, T, H, W, C)
    save_png(image_grid(morphs.reshape(-1, *morphs.shape[2:]), rows=len(morphs)), out / "morphs.png", scale=2)
    save_gif(list(walk_to_seed(generator, found, check_seed(args.walk_seed))), out / "walk.gif", scale=scale)
    names = generator.model_config.class_names
    verdict = "" if found.evaluator_class is None else f"; the evaluator sees {names[found.evaluator_class]}"
    print(f"class {names[found.mixture_class]} ({float(found.class_weights.max()):.0%} of the mixture){verdict}; "
          f"pixel error {found.pixel_error:.1f} grey levels; {found.steps} steps in {found.seconds:.1f} s; "
          f"wrote {out}/target.png, reconstruction.png, morphs.png, walk.gif")
    return 0


if __name__ == "__main__":
    sys.exit(main())
