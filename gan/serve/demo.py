"""What the demo app does, without Gradio: load models, make grids and interpolations, describe a model.

Every function validates its inputs itself (the app's API can be called with anything) and raises GanError with a
sentence a visitor can act on. Images come back as uint8 (H, W, C) arrays, enlarged with nearest-neighbour
upscaling so small images stay crisp.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ModelConfig
from ..errors import GanError
from ..hub import resolve_model_folder
from ..inference import optimize
from ..model_files import (CONFIG_NAME, DISCRIMINATOR_FOLDER, WEIGHTS_NAME, load_model, load_real_pool,
                           looks_like_local_path, read_json)
from ..models import Discriminator, Generator
from ..quality.scores import Scores
from ..quiz.rounds import QuizModel
from ..sampling import MAX_SEED, check_seed, check_truncation, generate, image_grid, interpolate, resolve_class
from .batching import BatchedGenerator
from .display import DISPLAY_SIZE, enlarge, png_bytes
from .scratch import scratch, write_png, write_zip

ALL_CLASSES = "All classes"
MAX_IMAGES = 64  # images per request in single-class mode
MAX_GRID_IMAGES = 256  # images per "all classes" grid (columns shrink for models with many classes)
MAX_FRAMES = 64  # interpolation steps
GRID_WIDTH = 760  # grids are sent enlarged by the whole factor (at most 4) that keeps them within this many pixels


@dataclass
class DemoModel:
    """A loaded model and what the app shows about it."""

    source: str  # what was asked for: a Hub repo id or a folder
    folder: Path  # where its files are on disk
    generator: Generator  # the model as trained (eval mode): for anything that needs its modules
    discriminator: Discriminator | None
    metrics: dict[str, Any] | None = None  # its metrics.json as it is, which the API passes on
    hub_url: str | None = None
    # What serves images: the inference-optimised copy (gan/inference.py) behind a batcher that lets concurrent
    # visitors share forward passes (gan/serve/batching.py). Same pixels as `generator`, within one grey level.
    fast: BatchedGenerator | None = field(default=None, repr=False)
    extras: Any = field(default=None, repr=False)  # what gan/serve/explorer.py makes for this model on first use

    def __post_init__(self) -> None:
        if self.fast is None:
            self.fast = BatchedGenerator(optimize(self.generator), max_images=MAX_GRID_IMAGES)

    @property
    def class_names(self) -> list[str]:
        return self.generator.model_config.class_names


    @property
    def default_truncation(self) -> float:
        return self.generator.model_config.default_truncation


def load_demo_model(source: str) -> DemoModel:
    """Load a model folder or Hub repo with everything the app shows (samples, metrics, discriminator)."""
    folder = resolve_model_folder(source)
    generator = load_model(Generator, folder)
    discriminator = None
    if (folder / DISCRIMINATOR_FOLDER / WEIGHTS_NAME).is_file():
        discriminator = load_model(Discriminator, folder / DISCRIMINATOR_FOLDER)
    is_repo = not Path(source).expanduser().exists() and not looks_like_local_path(source)
    hub_url = None
    if is_repo:
        from huggingface_hub import constants

        hub_url = f"{constants.ENDPOINT}/{source}"
    model = DemoModel(source, folder, generator, discriminator, read_json(folder / "metrics.json"), hub_url)
    generate(model.fast, [0], [0])  # warm-up: the first visitor should not pay for lazy initialisation
    return model


class ModelRegistry:
    """The models an app serves, by name, each loaded once (the first lazily on start, the others on first use)."""

    def __init__(self, sources: list[str]):
        if not sources:
            raise GanError("no model given: pass --model PATH_OR_REPO or set GAN_MODEL")
        self.sources = list(dict.fromkeys(sources))
        self._loaded: dict[str, DemoModel] = {}
        self._lock = threading.Lock()

    @property
    def default(self) -> str:
        return self.sources[0]

    def get(self, name: str | None) -> DemoModel:
        """The model called `name` (default: the first), loading it on first use."""
        name = name or self.default
        if name not in self.sources:
            raise GanError(f"unknown model {name!r}; this app serves: {', '.join(self.sources)}")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = load_demo_model(name)
            return self._loaded[name]

    def quiz_model(self, name: str) -> QuizModel:
        """What the quiz of model `name` plays with (GanError for a model without a real-image pool)."""
        return quiz_model(self.get(name), name)


def model_label(source: str) -> str:
    """What a model picker shows: a local model's name and kind, with its folder as detail ("emoji: 32 px colour,
    9 classes (models/emoji)"); a Hub repo id as it is (reading its config would download it at page build)."""
    path = Path(source)
    try:
        config = ModelConfig.load(path / CONFIG_NAME) if (path / CONFIG_NAME).is_file() else None
    except GanError:
        config = None
    if config is None:
        return source
    kind = "grey" if config.channels == 1 else "colour"
    return f"{path.resolve().name}: {config.image_size} px {kind}, {config.num_classes} classes ({source})"


def quiz_model(model: DemoModel, name: str | None = None) -> QuizModel:
    """A served model as the quiz takes it: fakes from the batched, optimised generator (shared with the other
    tabs' requests), the discriminator, and the held-out real pool exported beside the weights."""
    images, labels = load_real_pool(model.folder)
    return QuizModel(name or model.source, model.fast, model.discriminator, images, labels)


def check_int(value: object, low: int, high: int, what: str) -> int:
    """An integer in [low, high] (whole floats accepted, as number inputs send them), else GanError."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise GanError(f"{what} must be a whole number between {low} and {high}, got {value!r}")
    if isinstance(value, (float, np.floating)) and not float(value).is_integer():
        raise GanError(f"{what} must be a whole number between {low} and {high}, got {value}")
    if not low <= int(value) <= high:
        raise GanError(f"{what} must be between {low} and {high}, got {int(value)}")
    return int(value)


def enlarge_factor(model: DemoModel, target: int = DISPLAY_SIZE) -> int:
    """The whole factor that brings the model's images closest to `target` pixels."""
    return max(1, round(target / model.generator.model_config.image_size))


def seed_range(seed: int, count: int) -> list[int]:
    """count consecutive seeds from seed, wrapping past the largest seed."""
    return [(seed + i) % (MAX_SEED + 1) for i in range(count)]


@dataclass
class Grid:
    """Generated images tiled row by row into one picture (one PNG serves them all), and what each tile is."""

    image: np.ndarray  # (H, W, C) uint8
    classes: list[int]  # per tile, row by row
    seeds: list[int]
    rows: int
    columns: int
    tile_size: int  # pixels of one image
    padding: int  # pixels between tiles and around the grid

    @property
    def scale(self) -> int:
        return grid_scale(self.image)

    def layout(self, class_names: list[str]) -> dict[str, Any]:
        """The tiles' positions and addresses, for API callers who cut the grid into images. In the PNG shrunk by
        `scale` (png[::scale, ::scale]), tile i (row-major) has its top-left corner at (padding + row * (tile_size
        + padding), padding + column * (tile_size + padding))."""
        return {"rows": self.rows, "columns": self.columns, "tile_size": self.tile_size, "padding": self.padding,
                "scale": self.scale, "tiles": [{"class": class_names[c], "class_index": c, "seed": s}
                          for c, s in zip(self.classes, self.seeds)]}


def grid_scale(image: np.ndarray) -> int:
    """How many times a grid's PNG enlarges it: a page shows it at about its PNG size (the app enlarges nothing in
    the browser, so a click lands on the right pixel), and a download keeps exact, blocky pixels."""
    return max(1, min(4, GRID_WIDTH // image.shape[1]))


def tile_at(layout: dict[str, Any], x: object, y: object) -> int | None:
    """The index of the tile under pixel (x, y) of a grid's PNG with this layout (Grid.layout), or None for padding,
    outside, or a layout that is not one."""
    try:
        size, padding, rows, columns = (int(layout[k]) for k in ("tile_size", "padding", "rows", "columns"))
        scale = max(1, int(layout.get("scale", 1)))
        count, x, y = len(layout.get("tiles") or []) or rows * columns, int(x) // scale, int(y) // scale
    except (TypeError, KeyError, ValueError, AttributeError):
        return None
    step = size + padding
    column, row = (x - padding) // step, (y - padding) // step
    inside = (x - padding) % step < size and (y - padding) % step < size
    if not (inside and 0 <= column < columns and 0 <= row < rows):
        return None
    index = row * columns + column
    return index if index < count else None


@dataclass(frozen=True)
class SharedView:
    """What a shared link asks the Generate tab to show: a model, a class (or all), a first seed, a count, a psi."""

    model: str
    class_choice: str
    seed: int
    count: int
    truncation: float

    def query(self) -> str:
        """The link's query string (?model=...&class=...&seed=...&n=...&psi=...): the page opens on these images."""
        from urllib.parse import urlencode

        return "?" + urlencode({"model": self.model, "class": self.class_choice, "seed": self.seed, "n": self.count,
                                "psi": f"{self.truncation:g}"})


def shared_view(params: dict[str, str], registry: ModelRegistry) -> SharedView | None:
    """The view a link's query parameters ask for (None when the link has none), checked as every input is:
    an unknown model, class, or a seed, count or psi out of range is a GanError naming it."""
    if not {"model", "class", "seed", "n", "psi"} & set(params):
        return None
    model = registry.get(params.get("model") or registry.default)
    choice = params.get("class", ALL_CLASSES)
    if choice != ALL_CLASSES:
        choice = model.class_names[resolve_class(choice, model.class_names)]
    try:
        seed, count = int(params.get("seed", "0")), int(params.get("n", "8"))
    except ValueError:
        raise GanError(f"the link's seed and n must be whole numbers, got {params.get('seed')!r}, "
                       f"{params.get('n')!r}") from None
    return SharedView(params.get("model") or registry.default, choice, check_seed(seed),
                      check_int(count, 1, MAX_IMAGES, "the link's number of images"),
                      check_truncation(params.get("psi", model.default_truncation)))


def generate_images(model: DemoModel, class_choice: object, seed: object, count: object,
                    truncation: object) -> Grid:
    """Images of one class (seeds seed..seed+count-1, 8 to a row), or one row per class (seeds seed..), as a Grid."""
    seed = check_seed(seed)
    count = check_int(count, 1, MAX_IMAGES, "the number of images")
    psi = check_truncation(truncation)
    num_classes = len(model.class_names)
    if str(class_choice) == ALL_CLASSES:
        columns = max(1, min(count, MAX_GRID_IMAGES // num_classes))
        classes = [c for c in range(num_classes) for _ in range(columns)]
        seeds, rows = seed_range(seed, columns) * num_classes, num_classes
    else:
        classes = [resolve_class(class_choice, model.class_names)] * count
        seeds, rows = seed_range(seed, count), math.ceil(count / min(count, 8))
    images = generate(model.fast, classes, seeds, psi, batch_size=MAX_GRID_IMAGES)
    padding = 2
    return Grid(image_grid(images, rows=rows, padding=padding), classes, seeds, rows, -(-len(images) // rows),
                images.shape[1], padding)


def file_stem(*parts: object) -> str:
    """A download's name from what it shows ("emoji_Flags_seed3_psi0.7"): letters, digits, dots and dashes only."""
    words = ("".join(ch if ch.isalnum() or ch in ".-" else "-" for ch in str(part)).strip("-") for part in parts)
    return "_".join(word for word in words if word)[:100] or "image"


def model_name(model: DemoModel) -> str:
    """A model's short name for file names: its folder's or repo's last part."""
    return Path(model.source.rstrip("/")).name


def single_image(model: DemoModel, class_choice: object, seed: object, truncation: object) -> tuple[np.ndarray, str]:
    """One image at its own pixels (H, W, C) and a file stem naming it (model, class, seed, psi)."""
    index = resolve_class(class_choice, model.class_names)
    seed, psi = check_seed(seed), check_truncation(truncation)
    image = generate(model.fast, [index], [seed], psi)[0]
    return image, file_stem(model_name(model), model.class_names[index], f"seed{seed}", f"psi{psi:g}")


SWEEP_STEPS = (2, 16)  # a truncation sweep shows this many images at least and at most


def truncation_values(steps: object) -> list[float]:
    """psi from 1/steps up to 1 in equal steps: 10 steps give 0.1, 0.2, ..., 1.0."""
    steps = check_int(steps, *SWEEP_STEPS, "the number of psi values")
    return [round((i + 1) / steps, 4) for i in range(steps)]


def truncation_sweep(model: DemoModel, class_choice: object, seed: object, steps: object) -> tuple[Grid, list[float]]:
    """One seed's image at psi from small (typical, plain) to 1 (the model's full variety), left to right."""
    index = resolve_class(class_choice, model.class_names)
    seed, psis = check_seed(seed), truncation_values(steps)
    images = np.concatenate([generate(model.fast, [index], [seed], psi) for psi in psis])
    padding = 2
    return Grid(image_grid(images, rows=1, padding=padding), [index] * len(psis), [seed] * len(psis), 1, len(psis),
                images.shape[1], padding), psis


def images_archive(model: DemoModel, class_choice: object, seed: object, count: object, truncation: object) -> Path:
    """The images of `generate_images` as a zip: one PNG per image at its own pixels, named by position, class and
    seed, and layout.json (the grid's layout, the psi and the model)."""
    grid = generate_images(model, class_choice, seed, count, truncation)
    layout = grid.layout(model.class_names)
    psi = check_truncation(truncation)
    size = grid.tile_size + grid.padding
    members = {}
    for i, tile in enumerate(layout["tiles"]):
        row, column = divmod(i, grid.columns)
        top, left = grid.padding + row * size, grid.padding + column * size
        image = grid.image[top : top + grid.tile_size, left : left + grid.tile_size]
        members[f"{i:03d}_{file_stem(tile['class'], 'seed' + str(tile['seed']))}.png"] = png_bytes(image)
    members["layout.json"] = json.dumps({**layout, "model": model.source, "truncation": psi}, indent=1).encode()
    return write_zip(members, stem=file_stem(model_name(model), class_choice, f"seed{grid.seeds[0]}", f"psi{psi:g}"))


def interpolation_frames(model: DemoModel, start_class: object, start_seed: object, end_class: object,
                         end_seed: object, steps: object, mode: object, truncation: object) -> list[np.ndarray]:
    """Frames from (start class, seed) to (end class, seed), blending noise (slerp or lerp) and class condition."""
    start = (resolve_class(start_class, model.class_names), check_seed(start_seed))
    end = (resolve_class(end_class, model.class_names), check_seed(end_seed))
    steps = check_int(steps, 2, MAX_FRAMES, "the number of steps")
    frames = interpolate(model.fast, start, end, steps, mode=str(mode), truncation=check_truncation(truncation))
    return [enlarge(frame) for frame in frames]


def write_grid(grid: Grid) -> Path:
    """The grid as one PNG (enlarged by grid.scale): one small file per response, where a file per image cost each
    API client a download (and a TLS context) apiece."""
    return write_png(grid.image, scale=grid.scale)


def model_record(model: DemoModel) -> dict[str, Any]:
    """A model as plain data for API users: where it comes from, what it makes, its classes, its measured quality
    (metrics.json as it is, or None) and the description the page shows (Markdown)."""
    config = model.generator.model_config
    return {"source": model.source, "label": model_label(model.source), "hub_url": model.hub_url,
            "image_size": config.image_size, "channels": config.channels, "classes": list(config.class_names),
            "class_frequencies": list(config.class_frequencies) or None,
            "default_truncation": model.default_truncation, "metrics": model.metrics or None,
            "description": describe(model)}


def describe(model: DemoModel) -> str:
    """Markdown about a model: where it comes from, its classes, its measured quality."""
    config = model.generator.model_config
    where = f"[{model.source}]({model.hub_url})" if model.hub_url else f"`{model.source}`"
    lines = [
        f"**Model** {where}: {config.image_size}x{config.image_size} {'grey' if config.channels == 1 else 'RGB'} "
        f"images, {config.num_classes} classes, latent size {config.latent_dim}, "
        f"{sum(p.numel() for p in model.generator.parameters()) / 1e6:.2f} M generator parameters.",
        "",
        "**Classes**: " + ", ".join(f"{i} {name}" for i, name in enumerate(config.class_names)),
        "",
    ]
    scores = Scores.from_dict(model.metrics)
    if scores.accuracy is not None:
        lines += [
            f"**Measured** on {scores.num_samples} generated images (truncation {scores.truncation}), "
            f"by a classifier trained on the real data:",
            "",
            "| metric | value |", "| --- | --- |",
            f"| class accuracy of generated images | {scores.accuracy:.3f} |",
            f"| the classifier's accuracy on real test images | {_number(scores.evaluator_test_accuracy)} |",
            f"| Fréchet distance to real test images (its features) | {_number(scores.fd)} |",
            f"| the same for real train vs real test images (floor) | {_number(scores.fd_train_test)} |",
        ]
        if scores.c2st_accuracy is not None:
            lines.append(f"| a fresh real-vs-generated classifier's accuracy (C2ST; 0.5 = cannot tell) "
                         f"| {scores.c2st_accuracy:.3f} |")
    else:
        lines.append("No metrics were measured for this model.")
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3f}"


def machine_judge(model: DemoModel) -> str:
    """One Markdown line: how well a machine tells this model's images from real ones, to set beside people's."""
    scores = Scores.from_dict(model.metrics)
    if scores.c2st_accuracy is None:
        return f"No machine two-sample test was measured for `{model.source}`."
    c2st = scores.c2st
    low, high = c2st["interval_95"]
    judges = len(c2st.get("judges") or []) or 1
    who, they, take = (("a fresh classifier trained to tell its images from real ones is right", "it", "takes")
                       if judges == 1 else
                       (f"{judges} fresh classifiers (different seeds) trained to tell its images from real ones are "
                        "right, on average,", "they", "take"))
    return (f"**Machine judge** for `{model.source}`: {who} on {c2st['accuracy']:.1%} of images {they} did not train "
            f"on (95% interval {low:.1%}-{high:.1%}; 50% = no better than a coin) and {take} "
            f"{c2st['generated_taken_for_real']:.1%} of generated images for real. People's error rate, below, is the "
            "same test taken by eye: 50% = fooled as often as not.")


def samples_caption(model: DemoModel) -> str:
    """The label of a model's sample grid, from the run that drew it (training_config.json's sample_seeds)."""
    columns = (read_json(model.folder / "training_config.json") or {}).get("sample_seeds")
    seeds = f"seeds 0 to {columns - 1}" if isinstance(columns, int) and columns > 0 else "one seed per column"
    return f"Samples: one row per class, {seeds}, truncation 1"


def class_index_list(model: DemoModel) -> str:
    """The classes a class input of this model accepts, by index and name (for the API description)."""
    return ", ".join(f"{i} {name}" for i, name in enumerate(model.class_names))


def model_files(model: DemoModel) -> tuple[str | None, str | None]:
    """The model's sample grid and training timelapse, where it has them, as copies in the scratch folder: Gradio
    serves only files under the working directory or the temp folder, and a Hub model's files lie in the Hub cache.
    Copied once per model, into a subfolder that pruning leaves alone."""
    target = scratch().folder / "models" / hashlib.sha1(model.source.encode()).hexdigest()[:16]
    paths: list[str | None] = []
    for name in ("samples.png", "timelapse.gif"):
        source, copy = model.folder / name, target / name
        if source.is_file() and not copy.is_file():
            target.mkdir(parents=True, exist_ok=True)
            partial = target / f".{uuid.uuid4().hex}{copy.suffix}"
            shutil.copyfile(source, partial)
            os.replace(partial, copy)  # whole or absent, for a concurrent visitor
        paths.append(str(copy) if source.is_file() else None)
    return paths[0], paths[1]


def random_seed() -> int:
    """A fresh seed for the dice button (from the OS, so visitors do not share a sequence)."""
    return int.from_bytes(np.random.default_rng().bytes(4), "little") % 1_000_000
