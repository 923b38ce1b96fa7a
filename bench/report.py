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
