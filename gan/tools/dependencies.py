"""Optional dependency groups (pyproject.toml's extras): one clear line when a command's group is not installed."""

from __future__ import annotations

import importlib.util
import sys

EXTRAS = {
    "train": ("accelerate", "datasets", "torchmetrics", "tqdm"),  # train.py and the metrics of gan.tools.evaluate
    "app": ("gradio", "pandas"),  # app.py
}


def missing_modules(extra: str) -> list[str]:
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require_extra(extra: str, what: str) -> None:
    """Exit with one line naming the missing packages and the pip command, before an import would fail deep inside."""
    missing = missing_modules(extra)
    if missing:
        sys.exit(f"error: {what} needs the [{extra}] extras ({', '.join(missing)} not installed): "
                 f"pip install \"conditional-gan[{extra}]\" (or, in a checkout, pip install -r requirements.txt)")
