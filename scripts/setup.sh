#!/usr/bin/env bash
# Set up this project on a fresh Debian or Ubuntu machine: data package, a virtual environment in .venv, torch first
# (the CPU build where no NVIDIA GPU is present, so no CUDA libraries are pulled), then the requirements.
#   scripts/setup.sh [--test] [--dry-run]
# --test adds the test requirements and Chromium; --dry-run prints the plan (which torch build, from where) and
# changes nothing. Needs python3 (3.10+) with venv (Debian/Ubuntu: apt install python3-venv); apt-get for the data
# package. TORCH_INDEX_URL=URL picks torch's package index yourself. Safe to run again: finished steps are no-ops.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
with_tests=0 dry_run=0
for arg in "$@"; do
  case "$arg" in
    --test) with_tests=1 ;;
    --dry-run) dry_run=1 ;;
    *) echo "setup: unknown option $arg (use --test, --dry-run)" >&2; exit 2 ;;
  esac
done

# GAN_SETUP_GPU=yes|no overrides the detection (tests read the plan on either kind of machine).
has_nvidia_gpu() {
  case "${GAN_SETUP_GPU:-}" in yes) return 0 ;; no) return 1 ;; esac
  [ -e /proc/driver/nvidia/version ] || { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }
}

# The torch CPU wheel that pip can already install without any index (a wheel cache or --find-links folder of this
# machine), if there is one: its version, e.g. 2.13.0+cpu.
local_cpu_torch() {
  local python=python3
  [ -x .venv/bin/python ] && python=.venv/bin/python
  "$python" -m pip install --dry-run --no-index --no-deps --ignore-installed --quiet --report - \
      "torch==$TORCH_VERSION" 2>/dev/null \
    | "$python" -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["metadata"]["version"])' 2>/dev/null \
    | grep '+cpu' || true
}

# How torch gets installed: pip arguments after the requirement, and a sentence for the plan.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  torch_args=(--index-url "$TORCH_INDEX_URL") torch_plan="torch==$TORCH_VERSION from TORCH_INDEX_URL ($TORCH_INDEX_URL)"
elif has_nvidia_gpu; then
  torch_args=() torch_plan="torch==$TORCH_VERSION, the default (CUDA) build: an NVIDIA GPU is present"
elif [ -n "$(local_cpu_torch)" ]; then
  torch_args=() torch_plan="torch==$TORCH_VERSION, the CPU build $(local_cpu_torch) this machine's pip already has"
else
  torch_args=(--index-url "$TORCH_CPU_INDEX")
  torch_plan="torch==$TORCH_VERSION, the CPU build from $TORCH_CPU_INDEX: no NVIDIA GPU (the default build would pull GBs of CUDA libraries)"
fi
echo "setup: plan: $torch_plan; then requirements.txt$([ "$with_tests" = 1 ] && echo ' and requirements-test.txt')"
[ "$dry_run" = 1 ] && exit 0

if [ ! -x .venv/bin/python ]; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || { echo "setup: needs Python 3.10 or newer as python3" >&2; exit 1; }
  python3 -c 'import venv, ensurepip' 2>/dev/null \
    || { echo "setup: python3 cannot make virtual environments: apt install python3-venv, then run this again" >&2; exit 1; }
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_packages=()
[ -d /usr/share/datasets/fashion-mnist ] || apt_packages+=(dataset-fashion-mnist)
# The browser tests drive Debian's Chromium with Playwright (never `playwright install`: it downloads a browser).
[ "$with_tests" = 1 ] && ! command -v chromium >/dev/null && apt_packages+=(chromium)
if [ ${#apt_packages[@]} -gt 0 ]; then
  echo "setup: installing ${apt_packages[*]} with apt-get"
  as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq "${apt_packages[@]}" >/dev/null \
    || echo "setup: could not install ${apt_packages[*]}; tests that need them will be skipped" >&2
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
# Installed without byte-compiling, then compiled on every core at once: pip compiles one file at a time, and with
# PYTHONDONTWRITEBYTECODE set (as on many CI machines) nothing compiled later would be kept.
pip_install() { .venv/bin/python -m pip install -q --no-compile --disable-pip-version-check "$@"; }
pip_install --upgrade pip >/dev/null
pip_install "torch==$TORCH_VERSION" ${torch_args[@]+"${torch_args[@]}"}
requirements=(-r requirements.txt)
[ "$with_tests" = 1 ] && requirements+=(-r requirements-test.txt)
pip_install "${requirements[@]}"
# Some packages ship files for newer Pythons that cannot compile here (pip skips them too): not an error.
.venv/bin/python -m compileall -qq -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  || true
echo "setup: ready (.venv)"
