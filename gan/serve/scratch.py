"""The files the app answers with: one scratch folder per process, fresh unguessable names, old files pruned.

Handlers return these paths rather than arrays: Gradio copies a file into its cache atomically, while arrays are
re-encoded into a content-addressed path that concurrent requests for the same image rewrite mid-download.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np

from ..sampling import save_gif, save_png


class Scratch:
    """Files written for one response each, under random names in one folder; old ones are pruned as new ones come.

    Handlers return these paths rather than arrays: Gradio copies a file into its cache atomically, while arrays are
    re-encoded into a content-addressed path that concurrent requests for the same image rewrite mid-download.
    A file is needed only until Gradio has copied it, before the response leaves, so two minutes is ample: at
    ~8 files a call, a 15-minute age let 75,000 files pile up at full load (bench/app_memory.py).
    """

    def __init__(self, folder: str | Path | None = None, *, max_age_s: float = 120.0, prune_every_s: float = 30.0,
                 clock=time.time):
        if folder is None:  # a folder of our own: removed when the process ends (app.py turns SIGTERM into an exit)
            folder = tempfile.mkdtemp(prefix="gan-demo-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_age_s, self.prune_every_s, self.clock = max_age_s, prune_every_s, clock
        self._last_prune, self._lock = clock(), threading.Lock()

    def path(self, suffix: str, *, stem: str = "") -> Path:
        """A fresh, unguessable file name, after `stem` if given (a download keeps its name: "emoji_Flags_seed3-<random>
        .png" says what it holds); prunes at most every prune_every_s."""
        with self._lock:  # only the decision is taken under the lock: writers never wait for a prune's stat calls
            due = self.clock() - self._last_prune >= self.prune_every_s
            if due:
                self._last_prune = self.clock()
        if due:
            self.prune()
        return self.folder / f"{stem + '-' if stem else ''}{uuid.uuid4().hex}{suffix}"

    def prune(self) -> None:
        """Delete files older than max_age_s (subfolders, such as the models' copies, stay)."""
        cutoff = self.clock() - self.max_age_s
        for entry in self.folder.iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime < cutoff:
                    entry.unlink()
            except OSError:  # taken by a concurrent prune
                pass


_scratch: Scratch | None = None


def scratch() -> Scratch:
    """The process's scratch folder, made on first use (never at import)."""
    global _scratch
    if _scratch is None:
        _scratch = Scratch()
    return _scratch


def write_png(image: np.ndarray, *, scale: int = 1, stem: str = "") -> Path:
    """Save an (H, W[, C]) uint8 image as a PNG (no metadata) under a fresh name; returns the path."""
    return save_png(image if image.ndim == 3 else image[..., None], scratch().path(".png", stem=stem), scale=scale)


def write_zip(members: dict[str, bytes], *, stem: str) -> Path:
    """Save named files (name -> bytes) as one zip archive (stored: PNGs do not compress further); one download."""
    path = scratch().path(".zip", stem=stem)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def write_pngs(images: list[np.ndarray]) -> list[str]:
    """One PNG per image, for a gallery."""
    return [str(write_png(image)) for image in images]


def write_gif(frames: list[np.ndarray], *, duration_ms: int = 120) -> Path:
    """Save frames as a looping GIF that plays forth and back, under a fresh name."""
    frames = [frame if frame.ndim == 3 else frame[..., None] for frame in frames]
    return save_gif(frames + frames[-2:0:-1], scratch().path(".gif"), duration_ms=duration_ms)
