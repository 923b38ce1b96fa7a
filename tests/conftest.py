"""Shared fixtures: a tiny labeled imagefolder and a way to run the real train.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.config import ModelConfig
from gan.model_files import save_real_pool
from gan.models import Discriminator, Generator

REPO = Path(__file__).resolve().parents[1]
_SESSION_TEMP: str | None = None


def pytest_configure(config):
    """Every temporary file of the run (Gradio's cache, gradio_client downloads, the app's scratch folders, any
    subprocess's) goes into one folder that is removed at the end, so a run leaves the system temp folder as it found
    it. pytest's own tmp_path folders stay where pytest keeps (and prunes) them."""
    global _SESSION_TEMP
    import tempfile

    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    _SESSION_TEMP = tempfile.mkdtemp(prefix="gan-tests-")
    # XDG_CACHE_HOME: caches the code keeps (e.g. neighbour indexes, gan/explore/neighbours.py) stay in the run's folder too.
    os.environ.update(TMPDIR=_SESSION_TEMP, GRADIO_TEMP_DIR=str(Path(_SESSION_TEMP) / "gradio"),
                      XDG_CACHE_HOME=str(Path(_SESSION_TEMP) / "cache"))
    tempfile.tempdir = _SESSION_TEMP
    pin_xdist_worker_to_one_core()


def pin_xdist_worker_to_one_core() -> None:
    """Under pytest-xdist (`-n N`), worker i runs on core i (mod the cores we have), and so do the processes it
    starts (affinity is inherited; the code sizes its torch threads by it): two workers each using every core
    made the training tests 3-4x slower than alone, more than the parallelism gained."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return
    os.sched_setaffinity(0, {cores[int(worker[2:]) % len(cores)]})
    import torch

    torch.set_num_threads(1)


def pytest_unconfigure(config):
    import shutil

    if _SESSION_TEMP:
        shutil.rmtree(_SESSION_TEMP, ignore_errors=True)

CLASS_NAMES = ["a", "b", "c"]  # classes of the tiny export
CLASSES = ("circle", "square", "stripes")  # sorted, as folder names are read

# The small flags every training test uses: a few-thousand-parameter model that trains in milliseconds a step.
TINY = ["--g-width", "8", "--d-width", "8", "--latent-dim", "16", "--batch-size", "8", "--sample-seeds", "2",
        "--ema-start", "2", "--log-every", "2"]


def pattern(kind: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """A grey image of one of three easily told-apart shapes, jittered."""
    image = np.zeros((size, size), dtype=np.float32)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.integers(10, 18, size=2)
    if kind == "circle":
        image[(yy - cy) ** 2 + (xx - cx) ** 2 < 36] = 1
    elif kind == "stripes":
        image[(yy // 3) % 2 == 0] = 1
    else:
        image[cy - 6 : cy + 6, cx - 6 : cx + 6] = 1
    noisy = np.clip(image * 220 + rng.normal(0, 12, image.shape), 0, 255)
    return noisy.astype(np.uint8)


@pytest.fixture(scope="session")
def tiny_imagefolder(tmp_path_factory) -> Path:
    """3 classes x 16 grey 28 px PNGs in class subfolders."""
    root = tmp_path_factory.mktemp("tiny_imagefolder")
    rng = np.random.default_rng(0)
    for name in CLASSES:
        (root / name).mkdir()
        for i in range(16):
            Image.fromarray(pattern(name, rng)).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread: two OpenMP threads that spin-wait are several times slower on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def free_port() -> int:
    """A TCP port nobody listens on right now, for an app a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(*, online: bool = False) -> dict[str, str]:
    """Environment for child processes: offline unless a test's local Hub is meant to be reached, unbuffered."""
    env = {**os.environ, "HF_HUB_OFFLINE": "0" if online else "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def launch_command(*args: str, processes: int = 1) -> list[str]:
    """`accelerate launch` of train.py with this interpreter: `--cpu` for one process; for several, torchrun's
    launcher (`--multi_gpu`), which train.py turns into a gloo group on the CPU when there is no GPU."""
    device = ["--cpu"] if processes == 1 else ["--multi_gpu", "--main_process_port", "0"]
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *device,
            str(REPO / "train.py"), *args]


def run(command: list[str], timeout: float = 240, *, online: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO, env=child_env(online=online), capture_output=True, text=True,
                          timeout=timeout)


def tiny_export(folder, seed: int = 0, *, channels: int = 1, image_size: int = 28):
    """A tiny export-shaped folder: generator at the root, discriminator below, a real pool and a training config
    (28 px grey unless told otherwise)."""
    torch.manual_seed(seed)
    config = ModelConfig(num_classes=3, class_names=CLASS_NAMES, g_width=8, d_width=8, latent_dim=16,
                         channels=channels, image_size=image_size)
    generator = Generator(config)
    generator(torch.randn(8, 16), torch.arange(8) % 3)  # non-default batch-norm statistics
    generator.eval().save_pretrained(folder)
    Discriminator(config).save_pretrained(folder / "discriminator")
    save_real_pool(torch.randint(0, 255, (6, channels, image_size, image_size), dtype=torch.uint8),
                   torch.tensor([0, 1, 2] * 2), folder,
                   split="test")
    (folder / "training_config.json").write_text(json.dumps({"dataset": "ylecun/mnist", "output_dir": "runs/x"}))
    return generator


TRAINING_COPY = (1, 5)  # (class, seed) of tiny_export's model whose image tiny_neighbour_index counts as "training"


def tiny_neighbour_index(folder, generator) -> None:
    """A neighbour index shipped in a tiny model's folder, with a tiny untrained evaluator. Its "training images" are
    60 of the model's own images plus the one of TRAINING_COPY (a copy to find), its "unseen" ones 20 others."""
    from gan.data import ImageData
    from gan.quality.evaluator import Evaluator, EvaluatorConfig
    from gan.explore.neighbours import INDEX_NAME, build_index, save_index
    from gan.sampling import generate

    def data(classes, seeds):
        images = torch.from_numpy(generate(generator, classes, seeds)).permute(0, 3, 1, 2).contiguous()
        return ImageData(images, torch.tensor(classes), list(CLASS_NAMES), "tiny")

    train = data([i % 3 for i in range(60)] + [TRAINING_COPY[0]], list(range(100, 160)) + [TRAINING_COPY[1]])
    test = data([i % 3 for i in range(20)], list(range(200, 220)))
    torch.manual_seed(0)
    config = generator.model_config
    evaluator = Evaluator(EvaluatorConfig(num_classes=3, class_names=list(CLASS_NAMES), width=4, feature_dim=16,
                                          image_size=config.image_size, channels=config.channels)).eval()
    save_index(build_index(evaluator, train, test, evaluator_source="evaluators/tiny"), folder / INDEX_NAME)


def images_of(result) -> list[np.ndarray]:
    """Cut /generate's grid PNG into its images, by the tile layout it returns beside it."""
    layout = result[1]
    grid = np.asarray(Image.open(result[0]))[::layout["scale"], ::layout["scale"]]
    size, pad, step = layout["tile_size"], layout["padding"], layout["tile_size"] + layout["padding"]
    return [grid[pad + (i // layout["columns"]) * step:][:size, pad + (i % layout["columns"]) * step:][:, :size]
            for i in range(len(layout["tiles"]))]


def decode_images(html: str) -> list[bytes]:
    """The PNG bytes of every data-URI image in a piece of HTML (the quiz's rounds)."""
    import base64
    import re

    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]
