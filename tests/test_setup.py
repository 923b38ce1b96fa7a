"""scripts/setup.sh picks torch's build for the machine: read from its --dry-run plan, never by downloading."""

from __future__ import annotations

import os
import subprocess

from conftest import REPO


def plan(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), "--dry-run", *args], cwd=REPO,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_without_an_nvidia_gpu_or_a_local_wheel_torch_comes_from_the_cpu_index(tmp_path):
    # No pip configuration and no --find-links folder: the machine has no CPU wheel at hand.
    result = plan(GAN_SETUP_GPU="no", PIP_CONFIG_FILE=os.devnull, PIP_FIND_LINKS="")
    assert result.returncode == 0, result.stderr
    assert "the CPU build from https://download.pytorch.org/whl/cpu: no NVIDIA GPU" in result.stdout


def test_with_an_nvidia_gpu_torch_is_the_default_build():
    result = plan("--test", GAN_SETUP_GPU="yes")
    assert result.returncode == 0, result.stderr
    assert "the default (CUDA) build: an NVIDIA GPU is present" in result.stdout
    assert "requirements-test.txt" in result.stdout


def test_an_explicit_index_wins_and_bad_options_are_refused():
    result = plan(TORCH_INDEX_URL="https://example.invalid/simple", GAN_SETUP_GPU="yes")
    assert "from TORCH_INDEX_URL (https://example.invalid/simple)" in result.stdout
    bad = plan("--bogus")
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr

