"""Every feature of the app on a colour model: a tiny 32 px RGB export served and called through gradio_client, as
API users call it (generation, interpolation, copy check, inversion, directions, the quiz and its stats)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import TRAINING_COPY, decode_images, free_port, images_of, tiny_export, tiny_neighbour_index
from gan.serve.demo import ModelRegistry
from gan.models import load_generator
from gan.quiz import JudgmentStore
from gan.quiz.tells import pixel_statistics
from gan.sampling import generate

SIZE = 32


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colour_model")
    generator = tiny_export(folder, channels=3, image_size=SIZE)
    tiny_neighbour_index(folder, generator)
    return folder


@pytest.fixture(scope="module")
def client(model_dir, tmp_path_factory):
    from gradio_client import Client

    from app import build_demo, serve

    store = JudgmentStore(tmp_path_factory.mktemp("colour_quiz") / "judgments.sqlite")
    demo = build_demo(ModelRegistry([str(model_dir)]), store)
    port = free_port()
    serve(demo, prevent_thread_lock=True, server_port=port, quiet=True)
    yield Client(f"http://127.0.0.1:{port}/", verbose=False,
                 download_files=str(tmp_path_factory.mktemp("colour_downloads")))
    demo.close()


def rgb(path) -> np.ndarray:
    image = Image.open(path)
    assert image.mode == "RGB", f"{path} is {image.mode}, not colour"
    return np.asarray(image).astype(int)


def test_generated_images_are_the_models_colour_pixels(client, model_dir):
    result = client.predict(str(model_dir), "b", 10, 3, 0.8, api_name="/generate")
    images = images_of(result)
    expected = generate(load_generator(model_dir), [1] * 3, [10, 11, 12], 0.8)  # (3, 32, 32, 3)
    assert all(a.shape == (SIZE, SIZE, 3) and np.abs(a.astype(int) - e).max() <= 1 for a, e in zip(images, expected))
    info = client.predict(str(model_dir), api_name="/model_info")
    assert (info["channels"], info["image_size"]) == (3, SIZE) and "RGB" in info["description"]


def test_interpolation_frames_are_in_colour(client, model_dir):
    frames, gif = client.predict(str(model_dir), "a", 1, "c", 2, 4, "slerp", 1.0, api_name="/interpolate")
    first = rgb(frames[0]["image"])
    scale = first.shape[0] // SIZE
    expected = generate(load_generator(model_dir), [0], [1])[0]
    assert np.abs(first[::scale, ::scale] - expected).max() <= 1
    assert Image.open(gif).n_frames > 2


def test_copy_check_finds_a_colour_training_copy(client, model_dir):
    picture, summary, record = client.predict(str(model_dir), "b", TRAINING_COPY[1], 1.0, api_name="/nearest_real")
    assert record["looks_copied"] and record["by_pixels"][0]["pixel_distance"] < 0.5
    assert rgb(picture).shape[2] == 3 and "levels per colour channel" in summary and "grey" not in summary


def test_inversion_of_a_colour_picture_keeps_its_colours(client, model_dir, tmp_path):
    from gradio_client import handle_file

    path = tmp_path / "red-disc.png"
    picture = Image.new("RGBA", (90, 90), (0, 0, 0, 0))
    ImageDraw.Draw(picture).ellipse((20, 20, 70, 70), fill=(220, 20, 30, 255))
    picture.save(path)
    seen, found, summary, morphs, walk, record = client.predict(
        str(model_dir), {"background": handle_file(str(path)), "layers": [], "composite": None}, 3, api_name="/invert")
    as_seen = rgb(seen)
    centre = as_seen[as_seen.shape[0] // 2, as_seen.shape[1] // 2]
    assert centre[0] > 150 and centre[1] < 80 and centre[2] < 80  # the model sees a red disc, not a grey one
    assert rgb(found).shape == as_seen.shape and len(record["class_weights"]) == 3


def test_directions_edit_a_colour_image(client, model_dir):
    plain = rgb(client.predict(str(model_dir), "a", 3, 1.0, 0, 0, 0, 0, 0, api_name="/directions"))
    scale = plain.shape[0] // SIZE
    expected = generate(load_generator(model_dir), [0], [3])[0]
    assert np.abs(plain[::scale, ::scale] - expected).max() <= 1
    moved = rgb(client.predict(str(model_dir), "a", 3, 1.0, 2.5, 0, 0, 0, 0, api_name="/directions"))
    assert np.abs(moved - plain).mean() > 1


def test_quiz_rounds_show_colour_images_real_and_fake_alike(client, model_dir):
    kinds: dict[str, set] = {"real": set(), "fake": set()}
    for _ in range(12):
        round_id, html, *_ = client.predict(str(model_dir), "single", api_name="/quiz_round")
        (data,) = decode_images(html)
        image = Image.open(io.BytesIO(data))
        feedback = client.predict(str(model_dir), round_id, "real", api_name="/quiz_answer")
        kinds["real" if feedback.startswith("Right") else "fake"].add((image.size, image.mode))
    assert kinds["real"] and kinds["real"] == kinds["fake"] and {mode for _, mode in kinds["real"]} == {"RGB"}
    summary, table, _ = client.predict(str(model_dir), api_name="/quiz_stats")
    assert "judgments" in summary and table["data"]


def test_pixel_tells_read_each_colour_channel():
    images = np.zeros((2, 4, 4, 3), np.uint8)
    images[0, ..., 0] = 255  # pure red: its red channel saturates, its mean over all values does not
    stats = pixel_statistics(images)
    assert stats["red_white_pixels"].tolist() == [16, 0] and stats["green_max"].tolist() == [0, 0]
    assert stats["white_pixels"].tolist() == [16, 0] and stats["mean"][0] == pytest.approx(85)

