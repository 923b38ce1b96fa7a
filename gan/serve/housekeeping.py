"""The serving process's housekeeping, apart from the page: threads and allocator for a server that runs forward
passes all day, a clean exit on SIGTERM, a bounded number of sessions, limits on uploads, and a sweeper for the
empty folders Gradio's cache leaves. app.py calls these around `demo.launch`; nothing here imports Gradio.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import torch
from PIL import Image

SESSION_CAPACITY = 1000  # sessions whose state Gradio keeps (~130 KB each: a copy of the page's config); its default
#                         of 10,000 lets them grow to ~1.3 GB. The least recently active visitor beyond it starts over.
CACHE_SWEEP_S = 120  # how often empty folders are removed from Gradio's cache


def remove_empty_folders(root: Path, *, older_than_s: float = 60.0) -> int:
    """Remove empty subfolders of root not touched for older_than_s: Gradio makes one folder per file content and
    its cache cleanup deletes only the files (~8 folders a call were left forever). Returns how many went."""
    cutoff, removed = time.time() - older_than_s, 0
    for folder in root.glob("*/") if root.is_dir() else []:
        try:
            if folder.stat().st_mtime < cutoff:
                folder.rmdir()  # fails, harmlessly, if the folder is not empty (or was just reused)
                removed += 1
        except OSError:
            pass
    return removed


def sweep_empty_folders_forever(root: Path) -> None:
    while True:
        time.sleep(CACHE_SWEEP_S)
        remove_empty_folders(root)


def start_cache_sweeper(root: Path) -> threading.Thread:
    """Sweep `root` (Gradio's cache folder) for empty folders every CACHE_SWEEP_S, in a daemon thread."""
    sweeper = threading.Thread(target=sweep_empty_folders_forever, args=(root,), daemon=True, name="cache-sweeper")
    sweeper.start()
    return sweeper


def launch_limits(max_file_bytes: int, max_pixels: int) -> dict:
    """Options for `demo.launch` that bound what the server holds: sessions, upload size. Gradio decodes uploads
    before any handler sees them, so decompression bombs are refused there too: PIL warns above max_pixels // 2
    pixels and raises above twice that."""
    Image.MAX_IMAGE_PIXELS = max_pixels // 2
    return {"state_session_capacity": SESSION_CAPACITY, "max_file_size": max_file_bytes}


def prepare_serving_process() -> None:
    """Before the server's threads start: SIGTERM (a Space stopping, `docker stop`) exits normally instead of
    skipping atexit handlers, so the scratch folder is removed and the quiz store closes; the allocator is tuned
    and torch takes this process's cores."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tune_malloc_for_serving()
    set_threads_for_host()


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def tune_malloc_for_serving() -> bool:
    """Set glibc's allocator for a server that runs forward passes all day; returns whether it applied (glibc only).
    Must run before the server's worker threads start.
    - 2 arenas instead of one per thread: each of Gradio's worker threads kept freed image buffers in an arena of its
      own (~150 MB more RSS over 3,000 calls, bench/app_memory.py).
    - Buffers up to 32 MB from the heap and up to 64 MB of free heap top kept: a 64-image pass allocates and frees
      ~20 MB of activations, and when each big buffer is its own mmap every pass faults its pages in afresh (zeroed
      by the kernel, dear in a VM): 38 ms per 64-image pass with every buffer over 64 kB mmapped, 24 ms with them
      reused from the heap, 31 ms with glibc's own adaptive threshold (bench/generation.py, BENCHMARKS.md)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = [libc.mallopt(param, value) for param, value in (  # every one tried, even after a refusal
            (_M_ARENA_MAX, 2), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20))]
        return all(result == 1 for result in applied)
    except (OSError, AttributeError):
        return False


def set_threads_for_host() -> int:
    """Torch threads = the cores this process may run on (a container's CPU set, not the host's core count, which
    oversubscribes a 2-vCPU Space sitting on a large machine); returns the number."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores))
    return torch.get_num_threads()
