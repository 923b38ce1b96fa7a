#!/usr/bin/env bash
# Set up this project on a fresh Debian machine: data package, a virtual environment in .venv, the CPU build of
# torch first (so no CUDA build is pulled), then the requirements. `--test` adds the test requirements.
# Safe to run again: finished steps are quick no-ops.
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

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
pip_install "torch==2.13.0"
requirements=(-r requirements.txt)
[ "$with_tests" = 1 ] && requirements+=(-r requirements-test.txt)
pip_install "${requirements[@]}"
# Some packages ship files for newer Pythons that cannot compile here (pip skips them too): not an error.
.venv/bin/python -m compileall -qq -j 0 "$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
  || true
echo "setup: ready (.venv)"
