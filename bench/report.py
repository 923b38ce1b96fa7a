"""What every benchmark script does with its results: print them as JSON and, with --out, write them there."""

from __future__ import annotations

import json
from pathlib import Path


def report(results: dict, out: Path | None) -> None:
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def save_figure(fig, axes, path: Path) -> None:
    """The plots' common finish: a light grid and a small legend on each axis, tight layout, a 110 dpi PNG."""
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
