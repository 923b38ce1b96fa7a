"""Is it copying? The nearest training images of any image, in evaluator features and in pixels.

A neighbour index is built once per (training set, evaluator) and saved as one safetensors file:
    features                      float16 (N, D)      evaluator features of every training image
    thumbnails                    uint8 (N, h, w, C)  the training images, block-averaged to at most 32 px
    labels                        int64 (N,)
    train_gaps                    float32 (N,)        feature distance of each training image to its nearest other one
    reference_feature_distances   float32 (M,)        sorted: how far each real held-out (test) image lies from its
    reference_pixel_distances     float32 (M,)        nearest training image, the yardstick of "close"
    evaluator.*                   the evaluator's weights, so queries are embedded by the network that made the index
plus JSON metadata in the file's header (format version, dataset, splits, evaluator, counts, class names).

Search is exact brute force (matrix products in float32 chunks, candidates re-ranked by direct differences), which
takes milliseconds for one image against 60,000 on a CPU. Feature distance is Euclidean in evaluator features;
pixel distance is the root-mean-square difference of thumbnails on the 0-255 scale (0 = identical). A query's
closeness is its percentile among real unseen images (the share of them lying closer to a training image); under
COPY_PERCENTILE it "looks copied". `index_for_model` takes a model folder's neighbours.safetensors, else the one
cached in ~/.cache/gan/neighbours/ (under $XDG_CACHE_HOME when set), else builds and caches it.

Its command line: gan/tools/neighbours.py (`python -m gan.neighbours build | query`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..config import ModelConfig
from ..data import KNOWN_DATASETS, ImageData, load_image_data, portable_source
from ..errors import GanError
from ..hub import resolve_model_folder
from ..model_files import CONFIG_NAME, INDEX_NAME, load_state_strictly, portable_path, read_json
from ..quality.evaluator import (Evaluator, EvaluatorConfig, as_image_tensor, check_images_fit,
                                 open_evaluator)
from ..quality.evaluator import WEIGHTS_NAME as EVALUATOR_WEIGHTS
from ..quality.knn import feature_vectors, nearest, squared_norms
from ..version import __version__

INDEX_FORMAT = "1.0"  # MAJOR.MINOR of the file layout; a newer major is refused
HEADER_KEY = "neighbour_index"  # the safetensors header entry holding the JSON metadata
MAX_THUMBNAIL = 32  # thumbnails are at most this many pixels wide: 28 px data is kept as is
REFERENCE_SPLIT = "test"  # real images the model never saw: the yardstick of how close "close" is
COPY_PERCENTILE = 1.0  # closer to the training set than 99% of real unseen images: looks copied
CLOSE_PERCENTILE = 10.0  # closer than 90% of them: close, but not a copy
LOCAL_DATA_ROOTS = (Path("data"), Path("/usr/share/datasets"))  # ./data (scripts/), Debian's dataset packages
TENSORS = ("features", "thumbnails", "labels", "train_gaps", "reference_feature_distances",
           "reference_pixel_distances")

Log = Callable[[str], None]


# ----------------------------------------------------------------------------------------------- what is compared

def thumbnail_size(image_size: int) -> int:
    """Thumbnail width: the image size divided by the smallest whole factor that brings it to MAX_THUMBNAIL or less."""
    return image_size // math.ceil(image_size / MAX_THUMBNAIL)


def thumbnails(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, h, w, C): the images themselves up to MAX_THUMBNAIL px, else block averages."""
    factor = math.ceil(images.shape[-1] / MAX_THUMBNAIL)
    if factor > 1:
        images = F.avg_pool2d(images.float(), factor).round().clamp(0, 255).to(torch.uint8)
    return images.permute(0, 2, 3, 1).contiguous()


def pixel_rows(thumbs: torch.Tensor) -> torch.Tensor:
    """uint8 thumbnails (N, h, w, C) as rows (N, h*w*C), still uint8."""
    return thumbs.reshape(len(thumbs), -1)


def rms(euclidean: torch.Tensor, values_per_row: int) -> torch.Tensor:
    """Root-mean-square difference on the 0-255 scale from the Euclidean distance of rows of values_per_row pixels."""
    return euclidean / math.sqrt(values_per_row)


# ----------------------------------------------------------------------------------------------- the index

@dataclass
class IndexInfo:
    """The metadata stored in an index file's header."""

    dataset: str  # the training images' source, as written down for others (portable_source)
    split: str  # the split the index holds: the model's training split
    reference_split: str  # the held-out real split whose distances are the yardstick
    evaluator: str  # where the evaluator came from; its weights travel inside the file
    evaluator_config: dict[str, Any]  # EvaluatorConfig of those weights
    class_names: list[str]  # name of each label value
    image_size: int  # size of the images the index compares (queries must have it)
    channels: int  # 1 = grey, 3 = RGB
    thumbnail_size: int  # width of the stored thumbnails
    train_images: int  # N
    reference_images: int  # M
    build_seconds: float  # how long building took, for the record
    package_version: str = __version__
    format_version: str = INDEX_FORMAT


@dataclass
class NeighbourIndex:
    """A training set searchable by evaluator features and by pixels; see the module docstring for the tensors."""

    features: torch.Tensor  # float16 (N, D)
    thumbnails: torch.Tensor  # uint8 (N, h, w, C)
    labels: torch.Tensor  # int64 (N,)
    train_gaps: torch.Tensor  # float32 (N,)
    reference_feature_distances: torch.Tensor  # float32 (M,), sorted
    reference_pixel_distances: torch.Tensor  # float32 (M,), sorted
    evaluator: Evaluator
    info: IndexInfo
    _search: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict, repr=False)

    def search_tensors(self) -> dict[str, torch.Tensor]:
        """float32 features and the norms of both spaces, made once: a query then takes milliseconds."""
        if not self._search:
            self._search.update(features=self.features.float(), feature_sq=squared_norms(self.features),
                                pixel_sq=squared_norms(pixel_rows(self.thumbnails)))
        return self._search


def build_index(evaluator: Evaluator, train: ImageData, reference: ImageData, *, evaluator_source: str,
                split: str = "train", reference_split: str = REFERENCE_SPLIT, log: Log | None = None
                ) -> NeighbourIndex:
    """Embed the training images, find each one's nearest other, and measure how far the reference images lie."""
    log = log or (lambda message: None)
    started = time.perf_counter()
    config = evaluator.evaluator_config
    for data, name in ((train, "training"), (reference, "reference")):
        check_images_fit(data.images, config)
        if len(data.labels) < (2 if data is train else 1):
            raise GanError(f"the {name} split holds {len(data.labels)} images; an index needs at least 2 training "
                           "images and 1 reference image")
    log(f"evaluator features of {len(train.labels)} training and {len(reference.labels)} reference images")
    features = feature_vectors(evaluator, train.images)  # (N, D)
    reference_features = feature_vectors(evaluator, reference.images)  # (M, D)
    log("nearest other training image of each training image")
    gaps = nearest(features, features, 1, exclude_self=True)[0][:, 0]
    log("nearest training image of each reference image, in features and in pixels")
    thumbs, reference_thumbs = thumbnails(train.images), thumbnails(reference.images)
    pixels = pixel_rows(thumbs)
    feature_distances = nearest(reference_features, features, 1)[0][:, 0]
    pixel_distances = rms(nearest(pixel_rows(reference_thumbs).float(), pixels, 1)[0][:, 0], pixels.shape[1])
    info = IndexInfo(dataset=portable_source(train.source), split=split, reference_split=reference_split,
                     evaluator=evaluator_source, evaluator_config=config.to_dict(),
                     class_names=list(train.class_names), image_size=config.image_size, channels=config.channels,
                     thumbnail_size=thumbs.shape[1], train_images=len(train.labels),
                     reference_images=len(reference.labels), build_seconds=round(time.perf_counter() - started, 1))
    return NeighbourIndex(features=features.half(), thumbnails=thumbs, labels=train.labels.long(), train_gaps=gaps,
                          reference_feature_distances=feature_distances.sort().values,
                          reference_pixel_distances=pixel_distances.sort().values, evaluator=evaluator, info=info)


def save_index(index: NeighbourIndex, path: str | Path) -> Path:
    """Write the index as one safetensors file, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: getattr(index, name).contiguous() for name in TENSORS}
    tensors.update({f"evaluator.{k}": v.detach().cpu().contiguous() for k, v in index.evaluator.state_dict().items()})
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    save_file(tensors, partial, metadata={"format": "pt", HEADER_KEY: json.dumps(dataclasses.asdict(index.info))})
    os.replace(partial, path)
    return path


def load_index(path: str | Path) -> NeighbourIndex:
    """Read an index file, checking its format and that its tensors agree; GanError naming the fix otherwise."""
    path = Path(path)
    if not path.is_file():
        raise GanError(f"no neighbour index at {path}; build one with `python -m gan.neighbours build --model DIR`")
    try:
        with safe_open(str(path), framework="pt") as handle:
            info = _read_info(handle.metadata() or {}, path)
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{path} is not a readable neighbour index ({error}); delete it and rebuild it with "
                       "`python -m gan.neighbours build --model DIR`") from None
    missing = [name for name in TENSORS if name not in tensors]
    if missing:
        raise GanError(f"{path} lacks {missing}; delete it and rebuild it with `python -m gan.neighbours build`")
    evaluator = Evaluator(EvaluatorConfig.from_dict(info.evaluator_config, source=f"{path} (evaluator)"))
    load_state_strictly(evaluator, {k.removeprefix("evaluator."): v for k, v in tensors.items()
                                    if k.startswith("evaluator.")}, source=str(path))
    index = NeighbourIndex(**{name: tensors[name] for name in TENSORS}, evaluator=evaluator.eval(), info=info)
    _check_consistent(index, path)
    index.search_tensors()  # now rather than in a visitor's first query (~0.2 s for 60,000 images)
    return index


def _read_info(metadata: dict[str, str], path: Path) -> IndexInfo:
    try:
        values = json.loads(metadata[HEADER_KEY])
        major = int(str(values.get("format_version", "")).split(".")[0])
    except (KeyError, ValueError, TypeError, AttributeError):
        raise GanError(f"{path} is not a neighbour index (no readable {HEADER_KEY} metadata); delete it and rebuild "
                       "it with `python -m gan.neighbours build`") from None
    if major != int(INDEX_FORMAT.split(".")[0]):
        raise GanError(f"{path} is a neighbour index of format {values['format_version']}, this package reads "
                       f"{INDEX_FORMAT}; rebuild it with this version (`python -m gan.neighbours build`)")
    known = {f.name for f in dataclasses.fields(IndexInfo)}
    try:
        return IndexInfo(**{k: v for k, v in values.items() if k in known})
    except TypeError as error:
        raise GanError(f"{path} has incomplete metadata ({error}); rebuild it") from None


def _check_consistent(index: NeighbourIndex, path: Path) -> None:
    n, info, feature_dim = len(index.labels), index.info, index.evaluator.evaluator_config.feature_dim
    shapes_agree = (
        index.features.dtype == torch.float16 and index.features.shape == (n, feature_dim)
        and index.thumbnails.dtype == torch.uint8
        and index.thumbnails.shape == (n, info.thumbnail_size, info.thumbnail_size, info.channels)
        and index.train_gaps.shape == (n,) and n == info.train_images
        and index.reference_feature_distances.shape == index.reference_pixel_distances.shape == (info.reference_images,)
        and (n == 0 or 0 <= int(index.labels.min()) <= int(index.labels.max()) < len(info.class_names)))
    if not shapes_agree:
        raise GanError(f"the tensors of {path} do not agree with each other or its metadata; delete it and rebuild it")


# ----------------------------------------------------------------------------------------------- queries

@dataclass
class Neighbour:
    """One training image near a query."""

    training_index: int  # row in the training split, as the dataset loader orders it
    label: int
    class_name: str
    feature_distance: float  # Euclidean, evaluator features
    pixel_distance: float  # root-mean-square difference of the thumbnails, 0-255 scale
    thumbnail: np.ndarray  # uint8 (h, w, C)


@dataclass
class NearestReal:
    """The nearest training images of one image, and how its closeness compares with real unseen images."""

    by_features: list[Neighbour]  # k nearest in evaluator features, nearest first
    by_pixels: list[Neighbour]  # k nearest in pixels, nearest first
    percentile: float  # % of real unseen images lying closer (in features) to their nearest training image
    pixel_percentile: float  # the same in pixels
    unauthentic: bool  # closer to its nearest training image than that image's nearest other is (Alaa et al. 2022)
    looks_copied: bool  # percentile below COPY_PERCENTILE
    verdict: str  # one sentence for people

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, without the thumbnails (an API returns those as images)."""
        def plain(n: Neighbour) -> dict[str, Any]:
            return {k: v for k, v in dataclasses.asdict(n).items() if k != "thumbnail"}
        return {**{k: v for k, v in dataclasses.asdict(self).items() if k not in ("by_features", "by_pixels")},
                "by_features": [plain(n) for n in self.by_features], "by_pixels": [plain(n) for n in self.by_pixels]}


def nearest_real(index: NeighbourIndex, image: np.ndarray, k: int = 5) -> NearestReal:
    """The k nearest training images of one uint8 image (H, W, C) (or (H, W) if grey), in features and in pixels,
    with its percentile among real unseen images and a verdict on whether it looks copied."""
    query = as_image_tensor(_one_image(image, index.info)[None])  # (1, C, H, W)
    search = index.search_tensors()
    features = feature_vectors(index.evaluator, query)  # (1, D)
    pixels = pixel_rows(thumbnails(query)).float()  # (1, P)
    values = pixels.shape[1]
    by_feature = nearest(features, search["features"], k, base_sq=search["feature_sq"])[1][0]
    by_pixel = nearest(pixels, pixel_rows(index.thumbnails), k, base_sq=search["pixel_sq"])[1][0]

    def neighbour(i: int) -> Neighbour:
        label, thumbnail = int(index.labels[i]), index.thumbnails[i]
        pixel_difference = (pixels[0] - thumbnail.reshape(-1).float()).norm()
        return Neighbour(training_index=i, label=label, class_name=index.info.class_names[label],
                         feature_distance=float((features[0] - search["features"][i]).norm()),
                         pixel_distance=float(rms(pixel_difference, values)), thumbnail=thumbnail.numpy())

    near_features = [neighbour(int(i)) for i in by_feature]
    near_pixels = [neighbour(int(i)) for i in by_pixel]
    closest = near_features[0]
    percentile = share_below(index.reference_feature_distances, closest.feature_distance)
    return NearestReal(by_features=near_features, by_pixels=near_pixels, percentile=percentile,
                       pixel_percentile=share_below(index.reference_pixel_distances, near_pixels[0].pixel_distance),
                       unauthentic=closest.feature_distance <= float(index.train_gaps[closest.training_index]),
                       looks_copied=percentile < COPY_PERCENTILE, verdict=verdict(percentile, closest, index.info))


def share_below(sorted_values: torch.Tensor, value: float) -> float:
    """% of sorted_values strictly below value (0 for a value of 0)."""
    if len(sorted_values) == 0:
        return float("nan")
    return 100.0 * int(torch.searchsorted(sorted_values, torch.tensor([value]), right=False)) / len(sorted_values)


def verdict(percentile: float, closest: Neighbour, info: IndexInfo) -> str:
    """One sentence: copied, close, or no closer to the training data than real unseen images are."""
    unseen = f"{info.reference_images:,} real unseen images"
    if percentile < COPY_PERCENTILE:
        than = "any of the" if percentile == 0 else f"{100 - percentile:.1f}% of the"
        return (f"Looks copied: it is closer to a training image (a {closest.class_name}, #{closest.training_index}) "
                f"than {than} {unseen} are to theirs.")
    if percentile < CLOSE_PERCENTILE:
        return (f"Close to the training data but not a copy: only {percentile:.1f}% of the {unseen} lie closer "
                "to a training image.")
    return (f"No sign of copying: {percentile:.0f}% of the {unseen} lie closer to a training image than this "
            "one does.")


def _one_image(image: Any, info: IndexInfo) -> np.ndarray:
    """A uint8 (H, W, C) array of the index's size and channels, or GanError saying what was wrong."""
    image = np.asarray(image)
    if image.ndim == 2 and info.channels == 1:
        image = image[:, :, None]
    expected = (info.image_size, info.image_size, info.channels)
    if image.dtype != np.uint8 or image.shape != expected:
        raise GanError(f"the neighbour index compares uint8 images of shape {expected} (height, width, channels), "
                       f"got {image.dtype} of shape {image.shape}; pass an image of the model it was built for")
    return image


# ----------------------------------------------------------------------------------------------- per model

_BUILD_LOCK = threading.Lock()  # two first visitors must not build the same index twice


@dataclass
class IndexPlan:
    """Where a model's index comes from: its data, evaluator and cache file."""

    model_folder: Path
    model_config: ModelConfig
    dataset: str  # where the images are read from (a local copy of a known Hub dataset when there is one)
    split: str  # the model's training split
    reference_split: str
    evaluator: Evaluator
    evaluator_dir: Path
    cache_path: Path  # where the index is cached for this (data, evaluator) pair


def plan_index(model: str | Path, *, data: str | None = None, evaluator: str | None = None,
               reference_split: str = REFERENCE_SPLIT) -> IndexPlan:
    """Resolve a model's training data (training_config.json unless data is given) and evaluator (the dataset's
    default unless given), the way `python -m gan.evaluate` does."""
    folder = model_folder(model)
    config = ModelConfig.load(folder / CONFIG_NAME)
    train_config = read_json(folder / "training_config.json") or {}
    source = data or train_config.get("dataset")
    if not source:
        raise GanError(f"{model} has no training_config.json naming its dataset; pass --data SRC")
    evaluator_model, evaluator_dir = open_evaluator(source, evaluator)
    split = train_config.get("split") or "train"
    dataset = local_copy(source)
    key = json.dumps([portable_source(dataset), split, reference_split, config.image_size, config.channels,
                      _file_digest(evaluator_dir / EVALUATOR_WEIGHTS), INDEX_FORMAT.split(".")[0]])
    slug = Path(portable_source(dataset).rstrip("/")).name.lower()
    cache_path = cache_folder() / f"{slug}-{split}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.safetensors"
    return IndexPlan(folder, config, dataset, split, reference_split, evaluator_model, evaluator_dir, cache_path)


def build_for_plan(plan: IndexPlan, log: Log | None = None) -> NeighbourIndex:
    """Load the planned splits at the model's size and channels and build their index."""
    options = dict(image_size=plan.model_config.image_size, channels=plan.model_config.channels)
    train = load_image_data(plan.dataset, split=plan.split, **options)
    reference = load_image_data(plan.dataset, split=plan.reference_split, **options)
    _check_fits(plan.model_config, train.class_names, plan.dataset)
    return build_index(plan.evaluator, train, reference, evaluator_source=portable_path(str(plan.evaluator_dir),
                       "evaluators"), split=plan.split, reference_split=plan.reference_split, log=log)


def index_for_model(model: str | Path, *, data: str | None = None, evaluator: str | None = None,
                    build: bool = True, log: Log | None = None) -> NeighbourIndex:
    """A model's neighbour index: the model folder's neighbours.safetensors, else the cached one, else built (and
    cached) now when build is true; data and evaluator override the model's defaults (and skip a shipped index)."""
    log = log or (lambda message: None)
    shipped = model_folder(model) / INDEX_NAME
    if shipped.is_file() and data is None and evaluator is None:
        return _fitting(load_index(shipped), ModelConfig.load(shipped.parent / CONFIG_NAME), shipped)
    try:
        plan = plan_index(model, data=data, evaluator=evaluator)
    except GanError as error:
        raise GanError(f"no copy check for {model}: it comes without {INDEX_NAME} (thumbnails of its training images "
                       "go up only when the model's owner allows it) and this machine cannot build one "
                       f"({error})") from None
    with _BUILD_LOCK:
        if plan.cache_path.is_file():
            try:
                return _fitting(load_index(plan.cache_path), plan.model_config, plan.cache_path)
            except GanError as error:  # the cache is ours: replace what is unreadable rather than fail forever
                log(f"rebuilding the cached index: {error}")
        if not build:
            raise GanError(f"no neighbour index for {model} yet; build it with "
                           f"`python -m gan.neighbours build --model {model}`")
        index = build_for_plan(plan, log)
        save_index(index, plan.cache_path)
        log(f"cached the neighbour index at {plan.cache_path}")
        return index


def model_folder(model: str | Path) -> Path:
    """A local model folder as is; of a Hub repo, only what an index needs (config, training config, index)."""
    return resolve_model_folder(model, allow_patterns=[CONFIG_NAME, "training_config.json", INDEX_NAME])


def _fitting(index: NeighbourIndex, config: ModelConfig, path: Path) -> NeighbourIndex:
    if (index.info.image_size, index.info.channels) != (config.image_size, config.channels):
        raise GanError(f"{path} indexes {index.info.image_size} px {index.info.channels}-channel images but the model "
                       f"makes {config.image_size} px {config.channels}-channel ones; rebuild it for this model")
    _check_fits(config, index.info.class_names, str(path))
    return index


def _check_fits(config: ModelConfig, class_names: list[str], source: str) -> None:
    if list(class_names) != list(config.class_names):
        raise GanError(f"{source} has classes {list(class_names)[:3]}... but the model makes "
                       f"{list(config.class_names)[:3]}...; give the dataset the model was trained on")


def local_copy(source: str) -> str:
    """A folder on this machine holding a known Hub dataset (gan.data.KNOWN_DATASETS), else source unchanged: the
    same images, read offline and faster."""
    names = [name for name, hub_id in KNOWN_DATASETS.items() if hub_id == source]
    for root in LOCAL_DATA_ROOTS:
        for name in names:
            if (root / name).is_dir():
                return str(root / name)
    return source


def cache_folder() -> Path:
    """$XDG_CACHE_HOME/gan/neighbours, else ~/.cache/gan/neighbours (beside the quiz's ~/.cache/gan)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "gan" / "neighbours"


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise GanError(f"cannot read the evaluator weights {path} ({error})") from None


# ----------------------------------------------------------------------------------------------- command line
