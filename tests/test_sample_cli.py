"""`python -m gan.sample`: npz and imagefolder outputs that `datasets` reads, grids, and clear errors."""

import numpy as np
import pytest
import torch

from gan.config import ModelConfig
from gan.model_files import save_model
from gan.models import Generator
from gan.tools.sample import main, parse_seeds
from gan.sampling import generate

NAMES = ["T-shirt/top", "Trouser", "Bag"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    generator = Generator(ModelConfig(num_classes=3, class_names=NAMES, g_width=8, latent_dim=16)).eval()
    folder = tmp_path_factory.mktemp("model")
    save_model(generator, folder)
    return folder


def test_npz_holds_uint8_images_and_int64_labels_in_class_then_seed_order(model_dir, tmp_path, capsys):
    out = tmp_path / "s.npz"
    assert main(["--model", str(model_dir), "--classes", "bag,0", "--seeds", "3,5-6", "--truncation", "0.7",
                 "--out", str(out)]) == 0
    data = np.load(out)
    assert data["x"].shape == (6, 28, 28) and data["x"].dtype == np.uint8
    assert data["y"].dtype == np.int64 and data["y"].tolist() == [2, 2, 2, 0, 0, 0]
    from gan.models import load_generator

    expected = generate(load_generator(model_dir), [2, 0], [5, 3], 0.7)[..., 0]
    assert (data["x"][1] == expected[0]).all() and (data["x"][3] == expected[1]).all()
    assert "wrote 6 images" in capsys.readouterr().out


def test_imagefolder_loads_with_datasets_and_the_right_labels(model_dir, tmp_path):
    import datasets

    out = tmp_path / "folder"
    grid = tmp_path / "grid.png"
    assert main(["--model", str(model_dir), "--per-class", "4", "--out", str(out), "--grid", str(grid)]) == 0
    ds = datasets.load_dataset("imagefolder", data_dir=str(out), split="train")
    names = ds.features["label"].names
    assert sorted(names) == sorted(["T-shirt-top", "Trouser", "Bag"])
    assert len(ds) == 12
    counts = {name: 0 for name in names}
    for label in ds["label"]:
        counts[names[label]] += 1
    assert set(counts.values()) == {4}
    bag = out / "Bag" / "seed0000000002.png"
    from PIL import Image

    from gan.models import load_generator

    expected = generate(load_generator(model_dir), [2], [2])[0, ..., 0]
    assert (np.asarray(Image.open(bag)) == expected).all()
    assert Image.open(grid).size == ((4 * 30 + 2) * 2, (3 * 30 + 2) * 2)


def test_seed_parsing():
    assert parse_seeds("1, 2,10-12") == [1, 2, 10, 11, 12]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--classes", "hat"], "unknown class 'hat'"),
        (["--seeds", "1,x"], "seeds must be integers"),
        (["--seeds", "-3"], "seeds must be integers"),
        (["--seeds", "9-3"], "runs backwards"),
        (["--truncation", "2"], "truncation must be in (0, 1]"),
        (["--seeds", "1", "--per-class", "2"], "either --seeds or --per-class"),
    ],
)
def test_bad_input_gives_one_clear_line(model_dir, tmp_path, capsys, args, message):
    assert main(["--model", str(model_dir), "--out", str(tmp_path / "x.npz"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_a_path_that_is_not_a_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path), "--out", str(tmp_path / "x.npz")]) == 2
    assert "holds no model.safetensors" in capsys.readouterr().err
