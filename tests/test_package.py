"""The distribution: build the wheel, install it into a fresh virtual environment (torch first, as a CPU user would),
and use it from another directory: load the shipped model by path and a model by Hub repo id, generate, run the
console scripts."""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, tiny_export
from gan import generate, load_generator
from gan.sharing.publish import publish_folder
from gan.version import __version__
from hub_server import TOKEN, USER, local_hub  # noqa: F401

pytestmark = pytest.mark.slow  # builds a wheel and a fresh venv

SHIPPED = REPO / "models" / "fashion-mnist"


def pip(python: Path, *args: str) -> None:
    # --no-compile: byte-compiling all of torch is 12 of the 17 s its install takes; run_in lets the environment's
    # first runs write the bytecode of what they import instead.
    result = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
                             *args],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the build writes build/ beside them, never into the checkout)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copyfile(REPO / name, source / name)
    shutil.copytree(REPO / "gan", source / "gan", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path_factory.mktemp("dist")
    # With build isolation, as `pip install .` builds: pyproject.toml's [build-system] must be enough on its own.
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "--disable-pip-version-check", "-w", str(dist), str(source)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = dist.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_python(wheel, tmp_path_factory) -> Path:
    """A new virtual environment with torch (the CPU build: pinned, so pip takes the local wheel) and the wheel's
    runtime dependencies only: no gradio, accelerate, datasets or torchmetrics."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip(python, f"torch=={importlib.metadata.version('torch').split('+')[0]}")
    pip(python, str(wheel))
    return python


def run_in(python: Path, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run in cwd with no PYTHONPATH, so only the installed package can be imported; bytecode is written (see pip)."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": "", "HF_HUB_OFFLINE": (env or {}).get("HF_HUB_OFFLINE", "1")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_wheel_holds_the_gan_package_and_its_metadata(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert wheel.name == f"conditional_gan-{__version__}-py3-none-any.whl"
    packages = {n.split("/")[0] for n in names if not n.startswith(f"conditional_gan-{__version__}.dist-info/")}
    assert packages == {"gan"}  # not bench, models, evaluators or tests
    assert {"gan/__init__.py", "gan/tools/space.py", "gan/quiz/rounds.py", "gan/hub/__main__.py"} <= set(names)
    metadata = zipfile.ZipFile(wheel).read(f"conditional_gan-{__version__}.dist-info/METADATA").decode()
    assert "Requires-Dist: torch>=" in metadata and "Requires-Dist: safetensors" in metadata
    assert 'Requires-Dist: gradio<7,>=6.0; extra == "app"' in metadata
    assert 'Requires-Dist: accelerate>=1.10; extra == "train"' in metadata
    assert "License-Expression: Apache-2.0" in metadata and 'Requires-Dist: pytest-xdist>=3.6; extra == "test"' in metadata
    assert f"conditional_gan-{__version__}.dist-info/licenses/LICENSE" in names
    entry_points = zipfile.ZipFile(wheel).read(f"conditional_gan-{__version__}.dist-info/entry_points.txt").decode()
    for script in ("gan-sample = gan.tools.sample:main", "gan-evaluate = gan.tools.evaluate:main", "gan-quiz = gan.quiz.cli:main",
                   "gan-hub = gan.sharing.publish:main", "gan-space = gan.tools.space:main", "gan-invert = gan.explore.invert:main",
                   "gan-neighbours = gan.tools.neighbours:main", "gan-directions = gan.explore.directions:main"):
        assert script in entry_points


def test_installed_package_loads_and_generates_from_another_directory(fresh_python, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import importlib.metadata, json, sys, numpy as np, gan\n"
        "from gan import Generator, generate, load_generator\n"
        f"g = load_generator({str(SHIPPED)!r})\n"
        f"h = Generator.from_pretrained({str(SHIPPED)!r}, local_files_only=True)\n"
        "a, b = generate(g, [0, 7, 9], [1, 2, 3]), generate(h, [0, 7, 9], [1, 2, 3])\n"
        "np.save('images.npy', a)\n"
        "print(json.dumps({'file': gan.__file__, 'version': gan.__version__, 'same': bool((a == b).all()),\n"
        "  'metadata': importlib.metadata.version('conditional-gan'),\n"
        "  'heavy': sorted(m for m in ('gradio', 'accelerate', 'datasets', 'torchmetrics') if m in sys.modules)}))\n"
    )
    result = run_in(fresh_python, elsewhere, "-c", script)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert "site-packages" in report["file"] and report["version"] == report["metadata"] == __version__
    assert report["same"] and report["heavy"] == []
    here = generate(load_generator(SHIPPED), [0, 7, 9], [1, 2, 3])
    assert np.array_equal(np.load(elsewhere / "images.npy"), here)  # same pixels as in this checkout


def test_console_scripts_say_their_version(fresh_python, tmp_path):
    for script in ("gan-sample", "gan-hub", "gan-invert", "gan-directions"):
        result = run_in(fresh_python, tmp_path, str(fresh_python.parent / script), "--version")
        assert result.returncode == 0 and result.stdout.strip().startswith(f"conditional-gan {__version__}"), (
            script, result.stdout, result.stderr[-2000:])


def test_installed_package_loads_a_model_by_repo_id_with_the_hub_arguments(fresh_python, local_hub, tmp_path):
    repo = f"{USER}/tiny"
    generator = tiny_export(tmp_path / "tiny")
    publish_folder(tmp_path / "tiny", repo, token=TOKEN)
    cache = tmp_path / "cache"
    script = (
        "import json, sys, numpy as np\n"
        "from gan import Generator, generate, load_generator\n"
        f"g = Generator.from_pretrained({repo!r}, revision='main', cache_dir={str(cache)!r}, force_download=True)\n"
        f"h = load_generator({repo!r}, cache_dir={str(cache)!r}, local_files_only=True)\n"
        "print(json.dumps(generate(g, [0, 1, 2], [5, 6, 7]).tolist() == generate(h, [0, 1, 2], [5, 6, 7]).tolist()))\n"
        "np.save('images.npy', generate(g, [0, 1, 2], [5, 6, 7]))\n"
    )
    result = run_in(fresh_python, tmp_path, "-c", script, env={"HF_HUB_OFFLINE": "0"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "true"
    assert np.array_equal(np.load(tmp_path / "images.npy"), generate(generator, [0, 1, 2], [5, 6, 7]))
    offline = run_in(fresh_python, tmp_path, "-c",
                     f"from gan import load_generator; load_generator({repo!r}, cache_dir={str(tmp_path / 'empty')!r}, "
                     "local_files_only=True)")
    assert offline.returncode == 1 and "is not in the local cache (local_files_only=True)" in offline.stderr


def test_console_scripts_work_and_say_which_extra_is_missing(fresh_python, tmp_path):
    bin_dir = fresh_python.parent
    result = run_in(fresh_python, tmp_path, str(bin_dir / "gan-sample"), "--model", str(SHIPPED), "--classes",
                    "Sneaker", "--per-class", "3", "--out", "s.npz")
    assert result.returncode == 0, result.stderr[-2000:]
    assert np.load(tmp_path / "s.npz")["x"].shape == (3, 28, 28)
    result = run_in(fresh_python, tmp_path, str(bin_dir / "gan-sample"), "--out", "s.npz")
    assert result.returncode == 2 and "no --model given" in result.stderr
    for script, extra in (("gan-evaluate", "train"), ("gan-space", "app")):
        args = ["score", "--model", "x", "--dataset", "y"] if script == "gan-evaluate" else ["deploy", "a/b"]
        result = run_in(fresh_python, tmp_path, str(bin_dir / script), *args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(lines) == 1, result.stderr[-2000:]
        expected = f"[{extra}] extras" if script == "gan-evaluate" else "deploy from a checkout"
        assert expected in lines[0]
    assert run_in(fresh_python, tmp_path, str(bin_dir / "gan-hub"), "push", "--help").returncode == 0
    # Inversion needs nothing beyond the runtime dependencies: a picture in, the closest image and animations out.
    from PIL import Image

    Image.new("L", (90, 60), 255).save(tmp_path / "picture.png")
    result = run_in(fresh_python, tmp_path, str(bin_dir / "gan-invert"), "picture.png", "--model", str(SHIPPED),
                    "--steps", "3", "--out", "inverted")
    assert result.returncode == 0, result.stderr[-2000:]
    assert {p.name for p in (tmp_path / "inverted").iterdir()} >= {"reconstruction.png", "morphs.png", "walk.gif"}


def test_requirements_txt_lists_what_pyproject_declares():
    """A checkout installs requirements.txt (scripts/setup.sh); it must be the runtime + train + app lists, unchanged."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {*project["dependencies"], *project["optional-dependencies"]["train"],
                *project["optional-dependencies"]["app"]}
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    assert {line for line in lines if line} == declared
