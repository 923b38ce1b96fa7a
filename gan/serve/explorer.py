"""What the app's exploring features do, without Gradio: is a generated image a copy of a training image, what the
model makes of a visitor's picture, and editing an image along the model's main directions.

Each function takes a `DemoModel` and raw inputs (as an API caller may send anything), checks them, and returns
uint8 images and plain data. Per-model helpers (the neighbour index, the evaluator, the directions, the dataset's
framing) are made on first use and kept: the index is built from the training data the first time anyone asks
(gan/explore/neighbours.py caches it on disk), the rest in milliseconds.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..errors import GanError
from ..explore.directions import SLIDER_RANGE, Directions, directions_for, edit
from ..explore.invert import Framing, Inversion, class_morphs, invert, load_user_image, measure_framing, walk_to_seed
from ..explore.neighbours import NearestReal, NeighbourIndex, index_for_model, nearest_real
from ..model_files import read_json
from ..quality.evaluator import Evaluator, open_evaluator
from ..quality.metrics import check_evaluator_fits
from ..sampling import check_seed, check_truncation, generate, image_grid, latent_from_seed, resolve_class
from .demo import DemoModel, check_int

NEIGHBOURS = 5  # training images shown per kind of distance
DIRECTION_SLIDERS = 5  # the main directions offered as sliders (the first five carry most of the variance)
INVERT_STEPS, INVERT_SECONDS = 150, 8.0  # per request: a visitor never holds the server longer than this
MORPH_FRAMES = 6
WALK_FRAMES = 24


@dataclass
class _Helpers:
    lock: threading.Lock
    index: NeighbourIndex | None = None
    evaluator: Evaluator | None = None
    evaluator_checked: bool = False
    directions: Directions | None = None
    framing: Framing | None = None


_helpers_lock = threading.Lock()


def helpers(model: DemoModel) -> _Helpers:
    """This model's helpers, made empty on first use (each filled under its own lock, when first needed)."""
    with _helpers_lock:
        if model.extras is None:
            model.extras = _Helpers(threading.Lock())
        return model.extras


def neighbour_index(model: DemoModel, log: Callable[[str], None] | None = None) -> NeighbourIndex:
    """The model's index of its training images: shipped, cached, or built now from its training data."""
    kept = helpers(model)
    with kept.lock:
        if kept.index is None:
            kept.index = index_for_model(model.folder, log=log)
        return kept.index


def evaluator_of(model: DemoModel) -> Evaluator | None:
    """The evaluator of the model's dataset (its features guide inversion), or None when there is none here."""
    kept = helpers(model)
    with kept.lock:
        if not kept.evaluator_checked:
            dataset = (read_json(model.folder / "training_config.json") or {}).get("dataset")
            try:
                kept.evaluator = open_evaluator(dataset)[0] if dataset else None
                if kept.evaluator is not None:
                    check_evaluator_fits(kept.evaluator, model.generator.model_config)
            except GanError:  # none for this dataset, or one of other images or classes: invert on pixels alone
                kept.evaluator = None
            kept.evaluator_checked = True
        return kept.evaluator


# ---------------------------------------------------------------------------------------------- is it copying?


@dataclass
class CopyCheck:
    """A generated image beside its nearest training images, and what the distances say."""

    picture: np.ndarray  # uint8: row 1 the image then its nearest by features, row 2 the image then by pixels
    result: NearestReal
    summary: str  # Markdown


def check_copy(model: DemoModel, class_choice: object, seed: object, truncation: object,
               log: Callable[[str], None] | None = None) -> CopyCheck:
    """The nearest training images of the generated image (class, seed, psi), in evaluator features and in pixels,
    and where its distance falls among real unseen images' distances to the training set."""
    class_index = resolve_class(class_choice, model.class_names)
    seed, psi = check_seed(seed), check_truncation(truncation)
    image = generate(model.fast, [class_index], [seed], psi)[0]
    result = nearest_real(neighbour_index(model, log), image, NEIGHBOURS)
    size = image.shape[0]

    def row(neighbours):
        thumbs = [_fit(n.thumbnail, size) for n in neighbours]
        return [image, *thumbs]

    picture = image_grid(np.stack(row(result.by_features) + row(result.by_pixels)), rows=2, fill=128)
    return CopyCheck(picture, result, copy_summary(model, class_index, seed, psi, result))


def _fit(thumbnail: np.ndarray, size: int) -> np.ndarray:
    """A thumbnail at the generated image's size (nearest-neighbour: thumbnails of large images are smaller)."""
    if thumbnail.shape[0] == size:
        return thumbnail
    factor = max(1, size // thumbnail.shape[0])
    grown = thumbnail.repeat(factor, axis=0).repeat(factor, axis=1)
    padded = np.zeros((size, size, thumbnail.shape[2]), np.uint8)
    padded[: grown.shape[0], : grown.shape[1]] = grown[:size, :size]
    return padded


def levels(model: DemoModel) -> str:
    """The unit of a pixel difference: grey levels, or levels per colour channel."""
    return "grey levels" if model.generator.model_config.channels == 1 else "levels per colour channel"


def copy_summary(model: DemoModel, class_index: int, seed: int, psi: float, result: NearestReal) -> str:
    lines = [f"**{model.class_names[class_index]}, seed {seed}, ψ {psi:g}.** {result.verdict}", "",
             "Top row: the image, then its nearest training images by the evaluator's features; bottom row: by "
             "pixels.", "", "| | nearest by features | nearest by pixels |", "| --- | --- | --- |"]
    for rank, (f, p) in enumerate(zip(result.by_features, result.by_pixels), start=1):
        lines.append(f"| {rank} | {f.class_name} #{f.training_index}: {f.feature_distance:.2f} "
                     f"| {p.class_name} #{p.training_index}: {p.pixel_distance:.1f} {levels(model)} |")
    lines += ["", f"Real unseen images closer to the training set: {result.percentile:.1f}% (features), "
                  f"{result.pixel_percentile:.1f}% (pixels)."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- your own image


@dataclass
class Projection:
    """A visitor's picture, the model's closest image, and what can be done with it."""

    target: np.ndarray  # the picture as the model sees it (uint8 H, W, C)
    inversion: Inversion
    morphs: np.ndarray  # uint8 grid: one row per class, the reconstruction turning into that class
    walk: list[np.ndarray]  # frames from the reconstruction to (its class, walk_seed)
    summary: str  # Markdown


def project(model: DemoModel, picture: object, walk_seed: object,
            progress: Callable[[float], None] | None = None) -> Projection:
    """Invert a picture (any upload or drawing) into the model within INVERT_STEPS / INVERT_SECONDS, then morph the
    result into every class and walk from it to the image of walk_seed."""
    walk_seed = check_seed(walk_seed)
    generator = model.generator
    kept = helpers(model)
    with kept.lock:
        if kept.framing is None:
            kept.framing = measure_framing(model.fast)
    if isinstance(picture, dict) and picture.get("composite") is None:  # an API caller sent just the background
        picture = picture.get("background")
    target = load_user_image(picture, generator.model_config, framing=kept.framing)
    evaluator = evaluator_of(model)
    # Gradients flow through the eager model: the optimised one is inference-only.
    # Between its steps the search lets visitors' generation passes go first (gan/serve/batching.py, Turns).
    found = invert(generator, target, evaluator=evaluator, steps=INVERT_STEPS, max_seconds=INVERT_SECONDS,
                   progress=progress, pause=model.fast.turns.wait)
    morphs = class_morphs(model.fast, found, frames=MORPH_FRAMES)
    grid = image_grid(morphs.reshape(-1, *morphs.shape[2:]), rows=len(morphs))
    walk = list(walk_to_seed(model.fast, found, walk_seed, frames=WALK_FRAMES))
    return Projection(target, found, grid, walk, projection_summary(model, found, walk_seed))


def projection_summary(model: DemoModel, found: Inversion, walk_seed: int) -> str:
    names = model.class_names
    share = float(found.class_weights.max())
    verdict = "" if found.evaluator_class is None else (
        f" The evaluator, a classifier of the real data, sees a **{names[found.evaluator_class]}**.")
    return (f"The model's closest image is a **{names[found.mixture_class]}** ({share:.0%} of its class mixture)."
            f"{verdict} Mean difference from your picture: {found.pixel_error:.1f} {levels(model)} (0-255), after "
            f"{found.steps} steps in {found.seconds:.1f} s. Rows below: it turned into each class. The animation walks "
            f"from it to seed {walk_seed}.")


def projection_record(model: DemoModel, found: Inversion) -> dict[str, Any]:
    """The inversion as JSON for API callers: the latent and class mixture reproduce the reconstruction."""
    return {"class": model.class_names[found.mixture_class], "class_index": found.mixture_class,
            "evaluator_class": None if found.evaluator_class is None else model.class_names[found.evaluator_class],
            "class_weights": [round(float(w), 6) for w in found.class_weights],
            "z": [float(v) for v in found.z], "pixel_error": found.pixel_error, "steps": found.steps,
            "seconds": round(found.seconds, 3)}


# ---------------------------------------------------------------------------------------------- directions


def model_directions(model: DemoModel) -> Directions:
    kept = helpers(model)
    with kept.lock:
        if kept.directions is None:
            kept.directions = directions_for(model.generator, model.folder)
        return kept.directions


def check_amounts(amounts: list[object]) -> list[float]:
    """Slider values: numbers within +-SLIDER_RANGE standard deviations, else GanError."""
    checked = []
    for i, amount in enumerate(amounts, start=1):
        if isinstance(amount, bool) or not isinstance(amount, (int, float, np.integer, np.floating)) \
                or not np.isfinite(float(amount)) or abs(float(amount)) > SLIDER_RANGE:
            raise GanError(f"direction {i} must be a number between {-SLIDER_RANGE:g} and {SLIDER_RANGE:g}, "
                           f"got {amount!r}")
        checked.append(float(amount))
    return checked


def edit_along_directions(model: DemoModel, class_choice: object, seed: object, truncation: object,
                          amounts: list[object]) -> np.ndarray:
    """The image (class, seed, psi) with its noise moved amounts[i] standard deviations along direction i."""
    class_index = resolve_class(class_choice, model.class_names)
    z = latent_from_seed(check_seed(seed), model.generator.model_config.latent_dim, check_truncation(truncation))
    amounts = check_amounts(list(amounts))
    check_int(len(amounts), 0, DIRECTION_SLIDERS, "the number of direction amounts")
    with torch.inference_mode():
        return edit(model.fast, z, class_index, model_directions(model), amounts)


def directions_caption(model: DemoModel) -> list[str]:
    """Slider labels: each direction's share of the variance."""
    shares = model_directions(model).explained_variance[:DIRECTION_SLIDERS]
    return [f"Direction {i + 1} ({float(s):.0%} of the variance)" for i, s in enumerate(shares)]
