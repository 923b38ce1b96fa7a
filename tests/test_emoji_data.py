"""scripts/emoji_from_npm.py on small stand-ins of the npm packages: classes, white compositing, the split by emoji,
licences, and what it refuses."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from gan.data import load_image_data

sys.path.insert(0, str(REPO / "scripts"))
import emoji_from_npm  # noqa: E402


def png(colour: tuple[int, int, int, int], size: int = 64) -> bytes:
    """A transparent square with a coloured disc in the middle."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    image.paste(Image.new("RGBA", (size // 2, size // 2), colour), (size // 4, size // 4))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def entry(code: str, category: str, vendor: str, tones: int = 0, has_image: bool = True) -> dict:
    variations = {f"1F3F{b}": {"unified": f"{code}-1F3F{b}", "image": f"{code.lower()}-1f3f{b}.png",
                               f"has_img_{vendor}": True} for b in "BCDEF"[:tones]}
    return {"unified": code, "image": f"{code.lower()}.png", "category": category,
            f"has_img_{vendor}": has_image, "skin_variations": variations or None}


def package(folder: Path, vendor: str, entries: list[dict], missing: tuple[str, ...] = ()) -> Path:
    """An npm tarball laid out as emoji-datasource-<vendor>@16.0.0: package/emoji.json, package/img/<vendor>/64/."""
    path = folder / f"emoji-datasource-{vendor}-16.0.0.tgz"
    with tarfile.open(path, "w:gz") as archive:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        add("emoji.json", json.dumps(entries).encode())
        colours = iter([(220, 20, 30, 255), (30, 160, 40, 255), (20, 40, 220, 255), (250, 200, 30, 255)] * 50)
        for e in entries:
            for variant in [e, *(e.get("skin_variations") or {}).values()]:
                if variant.get(f"has_img_{vendor}") and variant["image"] not in missing:
                    add(f"img/{vendor}/64/{variant['image']}", png(next(colours)))
    return path


@pytest.fixture
def packages(tmp_path):
    def entries(vendor):
        return [entry("1F600", "Smileys & Emotion", vendor), entry("1F601", "Smileys & Emotion", vendor),
                entry("1F44B", "People & Body", vendor, tones=5), entry("1F44C", "People & Body", vendor, tones=5),
                entry("1F436", "Animals & Nature", vendor), entry("1F431", "Animals & Nature", vendor),
                entry("1F3FB", "Component", vendor), entry("1F34E", "Food & Drink", vendor, has_image=False)]
    return [package(tmp_path, "twitter", entries("twitter"), missing=("1f601.png",)),
            package(tmp_path, "google", entries("google"))]


def test_both_vendors_become_an_image_folder_of_categories_on_white(packages, tmp_path):
    out = tmp_path / "emoji"
    assert emoji_from_npm.main([*sum((["--package", str(p)] for p in packages), []), "--output", str(out),
                                "--test-fraction", "0.3"]) == 0
    train, test = (load_image_data(str(out), split=s, image_size=32) for s in ("train", "test"))
    # Component left out; an emoji without this vendor's image, or whose file the tarball lacks, skipped.
    assert train.class_names == test.class_names == ["Animals & Nature", "People & Body", "Smileys & Emotion"]
    assert len(train.labels) + len(test.labels) == 2 * (2 + 12 + 2) - 1
    # 64 px RGB PNGs composited on white: the transparent corners are white, the disc keeps its colour.
    first = Image.open(next((out / "train").rglob("*.png")))
    assert (first.size, first.mode) == ((64, 64), "RGB") and first.getpixel((0, 0)) == (255, 255, 255)
    centre = np.asarray(first)[32, 32].astype(int)
    assert centre.max() - centre.min() > 100  # a saturated colour, not grey or white
    assert "CC-BY 4.0" in (out / "LICENSES.md").read_text() and "Apache License 2.0" in (out / "LICENSES.md").read_text()


def test_an_emojis_tones_and_both_drawings_stay_on_one_side_of_the_split(packages, tmp_path):
    out = tmp_path / "emoji"
    emoji_from_npm.main([*sum((["--package", str(p)] for p in packages), []), "--output", str(out),
                         "--test-fraction", "0.3", "--seed", "1"])
    sides = {split: {p.name.split("-", 1)[1].split("-")[0] for p in (out / split).rglob("*.png")}
             for split in ("train", "test")}
    assert sides["test"] and not sides["train"] & sides["test"]  # no emoji (code point) on both sides
    for split in ("train", "test"):  # every class is held out in part, and trained on in part
        assert len(list((out / split).iterdir())) == 3


def test_other_packages_and_a_used_folder_are_refused(packages, tmp_path, capsys):
    apple = tmp_path / "emoji-datasource-apple-16.0.0.tgz"
    apple.write_bytes(packages[0].read_bytes())
    with pytest.raises(SystemExit, match="not openly licensed"):
        emoji_from_npm.main(["--package", str(apple), "--output", str(tmp_path / "out")])
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("x")
    with pytest.raises(SystemExit):
        emoji_from_npm.main(["--package", str(packages[0]), "--output", str(used)])
    assert "not empty" in capsys.readouterr().err
