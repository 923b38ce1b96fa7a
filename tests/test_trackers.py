"""--log-with, --tracker-project and the sample grids sent to trackers, checked in this process (no training run;
tests/test_train.py reads a real run's TensorBoard events)."""

from __future__ import annotations

import json
import shlex
from types import SimpleNamespace

import numpy as np
import pytest
from accelerate import tracking
from accelerate.utils import LoggerType
from PIL import Image

from gan.config import TrainConfig
from gan.errors import GanError
from gan.train.export import log_sample_grid
from gan.train.loop import resolve_trackers
from train import build_parser, config_from_args, main


def config(*flags: str) -> TrainConfig:
    return config_from_args(build_parser().parse_args(["--dataset", "d", "--output-dir", "o", *flags]))


@pytest.fixture
def only_tensorboard_installed(monkeypatch):
    """This machine's trackers as accelerate sees them, made independent of what happens to be installed."""
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: [LoggerType.TENSORBOARD])


def test_log_with_takes_a_comma_separated_list_stored_as_one_string(only_tensorboard_installed):
    assert config("--log-with", " TensorBoard, tensorboard ").log_with == "tensorboard"
    assert config().log_with is None and config("--log-with", "").log_with is None
    assert config("--log-with", "all").log_with == "all"  # resolved when training starts, on that machine
    assert resolve_trackers("all") == ["tensorboard"]
    assert resolve_trackers(None) == []


@pytest.mark.parametrize("log_with,message", [
    ("wandb", "--log-with wandb: wandb is not installed; pip install wandb"),
    ("tensorboard,wandb", "--log-with tensorboard,wandb: wandb is not installed; pip install wandb"),
    ("wandb,comet_ml", "wandb and comet_ml are not installed; pip install wandb comet-ml"),
    ("aim", "aim is not installed; pip install 'aim<4'"),  # accelerate supports aim 3 only
    ("tensorbord", "unknown tracker tensorbord; choose from aim, comet_ml, mlflow, tensorboard, wandb"),
])
def test_missing_and_unknown_trackers_are_refused_with_what_to_do(only_tensorboard_installed, log_with, message):
    with pytest.raises(GanError) as error:
        config("--log-with", log_with)
    assert message in str(error.value)


def test_all_with_no_tracker_installed_is_refused(monkeypatch):
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: [])
    with pytest.raises(GanError, match="--log-with all: no tracker is installed; pip install tensorboard"):
        resolve_trackers("all")


def test_a_missing_tracker_stops_train_py_with_one_line_before_any_work(only_tensorboard_installed, tmp_path,
                                                                         capsys):
    out = tmp_path / "run"
    assert main(["--dataset", str(tmp_path / "no-data"), "--output-dir", str(out), "--log-with", "wandb"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --log-with wandb: wandb is not installed; pip install wandb"]
    assert not out.exists()  # refused before the data, the folder and the trackers


def test_tracker_project_is_a_plain_name_used_with_log_with(only_tensorboard_installed):
    assert config().tracker_project == "gan"
    assert config("--log-with", "tensorboard", "--tracker-project", "shapes").tracker_project == "shapes"
    with pytest.raises(GanError, match="set --log-with too"):
        config("--tracker-project", "shapes")
    for bad in ["a/b", "..", " ", "a\\b"]:
        with pytest.raises(GanError, match="--tracker-project must be a plain name"):
            config("--log-with", "tensorboard", "--tracker-project", bad)


def test_old_training_configs_still_load_and_new_ones_round_trip_through_the_command(monkeypatch):
    monkeypatch.setattr(tracking, "get_available_trackers", lambda: [LoggerType.TENSORBOARD, LoggerType.WANDB])
    # training_config.json of a version with one tracker and without --tracker-project or --mixed-precision
    old = {"dataset": "d", "output_dir": "o", "log_with": "tensorboard", "max_steps": 10}
    cfg = TrainConfig(**old)
    assert (cfg.log_with, cfg.tracker_project, cfg.mixed_precision) == ("tensorboard", "gan", None)
    assert "--log-with tensorboard" in cfg.to_command() and "--tracker-project" not in cfg.to_command()

    new = config("--log-with", "tensorboard,wandb", "--tracker-project", "shapes", "--mixed-precision", "bf16")
    saved = json.loads(json.dumps(new.to_dict()))  # as training_config.json keeps it: plain types for trackers
    assert all(isinstance(v, (bool, str, int, float, type(None))) for v in saved.values())
    command = TrainConfig(**saved).to_command("train.py")
    assert "--log-with 'tensorboard,wandb' --tracker-project shapes --mixed-precision bf16" in command
    assert config(*shlex.split(command)[1:]) == new


def test_mixed_precision_takes_only_what_accelerate_offers(capsys):
    assert config().mixed_precision is None  # accelerate's own choice: `accelerate launch`/config, else "no"
    assert config("--mixed-precision", "fp16").mixed_precision == "fp16"
    with pytest.raises(SystemExit):
        config("--mixed-precision", "fp8")
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


class RecordingTracker:
    def __init__(self, name: str):
        self.name, self.calls = name, []

    def log_images(self, values, step=None, **kwargs):
        self.calls.append((values, step, kwargs))


def test_sample_grids_go_to_each_tracker_in_the_shape_it_takes(tmp_path):
    grid = np.random.default_rng(0).integers(0, 255, (20, 30), dtype=np.uint8)  # grey, as 1-channel data makes it
    path = tmp_path / "step_00000004.png"
    Image.fromarray(grid).save(path)
    trackers = {name: RecordingTracker(name) for name in ["tensorboard", "wandb", "swanlab", "aim", "clearml",
                                                          "mlflow"]}
    log_sample_grid(SimpleNamespace(trackers=list(trackers.values())), path, step=4)
    rgb = np.repeat(grid[..., None], 3, axis=2)  # (H, W, 3)
    (values, step, kwargs), = trackers["tensorboard"].calls
    assert step == 4 and kwargs == {"dataformats": "NHWC"} and np.array_equal(values["samples"], rgb[None])
    for name in ["wandb", "swanlab"]:  # a list of images
        (values, step, _), = trackers[name].calls
        assert step == 4 and len(values["samples"]) == 1 and np.array_equal(values["samples"][0], rgb)
    for name in ["aim", "clearml"]:  # one image
        (values, step, _), = trackers[name].calls
        assert step == 4 and np.array_equal(values["samples"], rgb)
    assert trackers["mlflow"].calls == []  # accelerate's MLflow tracker has no log_images
    log_sample_grid(SimpleNamespace(trackers=[]), tmp_path / "absent.png", step=5)  # no tracker: nothing is read
