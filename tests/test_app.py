"""The Gradio app, launched in-process and called through gradio_client as API users call it."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import numpy as np
import pytest
from PIL import Image

from conftest import TRAINING_COPY, decode_images, free_port, images_of, tiny_export, tiny_neighbour_index
from gan.serve.demo import (ALL_CLASSES, ModelRegistry, SharedView, check_int, generate_images, model_label, seed_range,
                            shared_view, tile_at)
from gan.serve.display import enlarge
from gan.errors import GanError
from gan.models import load_generator
from gan.quiz import JudgmentStore
from gan.sampling import generate

SECOND_CLASSES = ["x", "y", "z"]  # the second model's classes: class inputs must follow the chosen model
METRICS = {"num_samples": 30, "truncation": 1.0, "class_accuracy": {"overall": 0.9}, "evaluator_test_accuracy": 0.92,
           "fd": 0.3, "fd_train_test": 0.05}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("app_model")
    generator = tiny_export(folder)
    (folder / "metrics.json").write_text(json.dumps(METRICS))
    Image.new("L", (40, 40)).save(folder / "samples.png")
    tiny_neighbour_index(folder, generator)
    return folder


@pytest.fixture(scope="module")
def app(model_dir, tmp_path_factory):
    """The app serving the tiny model and a second one (for the picker), and a client of it."""
    from gradio_client import Client

    from app import build_demo, serve

    second = tmp_path_factory.mktemp("second_model")
    tiny_export(second, seed=1)
    config = json.loads((second / "config.json").read_text())
    (second / "config.json").write_text(json.dumps({**config, "class_names": SECOND_CLASSES}))
    store = JudgmentStore(tmp_path_factory.mktemp("quiz") / "judgments.sqlite")
    demo = build_demo(ModelRegistry([str(model_dir), str(second)]), store)
    port = free_port()
    serve(demo, prevent_thread_lock=True, server_port=port, quiet=True, state_session_capacity=4)
    # Downloads go under pytest's temporary folder, not the system's (a test run leaves /tmp as it found it).
    client = Client(f"http://127.0.0.1:{port}/", verbose=False,
                    download_files=str(tmp_path_factory.mktemp("client_downloads")))
    yield demo, client, str(model_dir), str(second)
    demo.close()


def test_every_event_has_an_api_name(app):
    _, client, *_ = app
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/generate", "/interpolate", "/model_info", "/random_seed", "/quiz_round", "/quiz_answer",
            "/quiz_stats", "/nearest_real", "/invert", "/invert_image", "/directions", "/images", "/image",
            "/truncation_sweep"} <= set(endpoints)
    # The score and the answer are not inputs anywhere: they live in the server-side session state only.
    assert [p["parameter_name"] for p in endpoints["/quiz_answer"]["parameters"]] == ["model_name", "round_id", "guess"]


def test_generate_returns_one_png_of_the_images_asked_for_and_their_layout(app, model_dir):
    _, client, model, _ = app
    result = client.predict(model, "b", 10, 5, 0.8, api_name="/generate")
    grid, layout = Image.open(result[0]), result[1]
    assert layout["scale"] == 4 and grid.format == "PNG"  # enlarged 4x: 4 x 152 px fits a page
    assert grid.size == (4 * (2 + 5 * 30), 4 * (2 + 30))  # one row of five 28 px images, 2 px apart
    assert [(t["class"], t["class_index"], t["seed"]) for t in layout["tiles"]] == [("b", 1, s) for s in range(10, 15)]
    images = images_of(result)
    expected = generate(load_generator(model_dir), [1] * 5, [10, 11, 12, 13, 14], 0.8)
    # The served model is the optimised, batched copy: the same pixels within one grey level.
    assert len(images) == 5 and all(np.abs(a.astype(int) - e[..., 0]).max() <= 1 for a, e in zip(images, expected))


def test_images_come_at_their_own_pixels_one_by_one_or_as_a_zip(app, model_dir):
    import zipfile

    _, client, model, _ = app
    generator = load_generator(model_dir)
    archive = zipfile.ZipFile(client.predict(model, "c", 4, 3, 0.6, api_name="/images"))
    names = archive.namelist()
    assert names == ["000_c_seed4.png", "001_c_seed5.png", "002_c_seed6.png", "layout.json"]
    layout = json.loads(archive.read("layout.json"))
    assert layout["truncation"] == 0.6 and [t["seed"] for t in layout["tiles"]] == [4, 5, 6]
    expected = generate(generator, [2, 2, 2], [4, 5, 6], 0.6, fast=False)
    for name, image in zip(names, expected):
        with archive.open(name) as member:
            png = Image.open(member)
            png.load()
        assert png.size == (28, 28) and np.abs(np.asarray(png).astype(int) - image[..., 0]).max() <= 1
    # One image, with keyword arguments and the default model (as against a deployed Space): its own 28x28 pixels.
    path = client.predict(class_choice="b", seed=9, truncation=0.5, api_name="/image")
    assert "_b_seed9_psi0.5" in path and Image.open(path).size == (28, 28)
    one = generate(generator, [1], [9], 0.5, fast=False)[0, ..., 0]
    assert np.abs(np.asarray(Image.open(path)).astype(int) - one).max() <= 1


def test_a_truncation_sweep_shows_one_seed_from_small_psi_to_one(app, model_dir):
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    strip, psis, caption = client.predict(model, "a", 3, 4, api_name="/truncation_sweep")
    assert psis == [0.25, 0.5, 0.75, 1.0] and "0.25, 0.5, 0.75, 1" in caption
    layout = {"scale": 4, "tile_size": 28, "padding": 2, "columns": 4, "tiles": [0] * 4}
    images = images_of((strip, layout))
    generator = load_generator(model_dir)
    for image, psi in zip(images, psis):
        assert np.abs(image.astype(int) - generate(generator, [0], [3], psi, fast=False)[0, ..., 0]).max() <= 1
    assert not (images[0] == images[-1]).all()
    for steps in (1, 17, "ten"):
        with pytest.raises(AppError):
            client.predict(model, "a", 3, steps, api_name="/truncation_sweep")


def test_equal_inputs_give_equal_images_and_other_seeds_differ(app):
    _, client, model, _ = app
    first = images_of(client.predict(model, "a", 7, 3, 1.0, api_name="/generate"))
    again = images_of(client.predict(model, "a", 7, 3, 1.0, api_name="/generate"))
    other = images_of(client.predict(model, "a", 8, 3, 1.0, api_name="/generate"))
    assert all((x == y).all() for x, y in zip(first, again))
    assert (first[1] == other[0]).all()  # seeds run on: seed 8 is the second image of seed 7's row
    assert not (first[0] == other[0]).all()


def test_all_classes_gives_one_row_per_class(app):
    _, client, model, _ = app
    result = client.predict(model, ALL_CLASSES, 0, 4, 1.0, api_name="/generate")
    layout = result[1]
    assert (layout["rows"], layout["columns"]) == (3, 4)
    assert Image.open(result[0]).size == (4 * (2 + 4 * 30), 4 * (2 + 3 * 30))
    assert [t["class"] for t in layout["tiles"]] == ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    assert [t["seed"] for t in layout["tiles"]] == [0, 1, 2, 3] * 3


def test_interpolation_returns_frames_and_an_animated_gif(app, model_dir):
    _, client, model, _ = app
    frames, gif = client.predict(model, "a", 1, "c", 2, 6, "slerp", 1.0, api_name="/interpolate")
    assert len(frames) == 6
    animation = Image.open(gif)
    assert animation.format == "GIF" and animation.n_frames == 10  # forth and back
    first = np.asarray(Image.open(frames[0]["image"])).astype(int)
    assert np.abs(first[::6, ::6] - generate(load_generator(model_dir), [0], [1])[0][..., 0]).max() <= 1


def test_a_shared_link_names_exactly_the_images_and_bad_links_are_refused(app):
    demo, _, model, second = app
    registry = ModelRegistry([model, second])
    view = shared_view({"model": second, "class": "Y", "seed": "42", "n": "3", "psi": "0.5"}, registry)
    assert view == SharedView(second, "y", 42, 3, 0.5)  # class names as the model spells them
    assert shared_view(dict(parse_qsl(view.query()[1:])), registry) == view  # the link reads back as itself
    assert shared_view({}, registry) is None and shared_view({"utm_source": "x"}, registry) is None
    assert shared_view({"seed": "7"}, registry) == SharedView(model, ALL_CLASSES, 7, 8, 1.0)  # the defaults
    for params, message in (({"model": "nope"}, "unknown model"), ({"class": "hat"}, "unknown class 'hat'"),
                            ({"seed": "-1"}, "seed must lie in"), ({"n": "65"}, "number of images"),
                            ({"psi": "2"}, "truncation must be in"), ({"seed": "x"}, "whole numbers")):
        with pytest.raises(GanError, match=message):
            shared_view(params, registry)


def test_the_picker_names_models_and_keeps_their_sources_as_values(app, model_dir):
    demo, _, model, second = app
    picker = next(block for block in demo.blocks.values() if getattr(block, "label", None) == "Model")
    assert [value for _, value in picker.choices] == [model, second]  # what API calls send
    assert picker.choices[0][0] == f"{model_dir.name}: 28 px grey, 3 classes ({model})"
    assert model_label("user/some-repo") == "user/some-repo"  # a Hub repo is not downloaded to be named


def test_model_info_describes_the_model_and_switches_models(app):
    _, client, model, second = app
    info = client.predict(model, api_name="/model_info")  # plain JSON, no Gradio update dicts
    assert "a, 1 b, 2 c" in info["description"].replace("0 a", "a") and "0.900" in info["description"]
    assert (info["classes"], info["image_size"], info["channels"], info["source"]) == (["a", "b", "c"], 28, 1, model)
    assert info["metrics"]["class_accuracy"]["overall"] == 0.9 and "__type__" not in json.dumps(info)
    other = client.predict(second, api_name="/model_info")
    assert other["description"].startswith(f"**Model** `{second}`") and other["classes"] == SECOND_CLASSES


@pytest.mark.parametrize(
    "args,message",
    [
        (("hat", 0, 4, 1.0), "unknown class 'hat'; known classes: a, b, c"),
        (("x", 0, 4, 1.0), "unknown class 'x'"),  # the second model's class, asked of the first
        (("7", 0, 4, 1.0), "class index 7 is out of range"),
        (("a", -1, 4, 1.0), "less than minimum"),
        (("a", 0, 65, 1.0), "greater than maximum"),
        (("a", 0, 4, 0.0), "less than minimum"),
        (("a", "seven", 4, 1.0), "Seed \\(first of consecutive seeds\\) must be a whole number, got 'seven'"),
        (("a", 2.5, 4, 1.0), "Seed .* must be a whole number, got 2.5"),
        (("a", None, 4, 1.0), "Seed .* must be a whole number, got None"),
        (("a", [1], 4, 1.0), "Seed .* must be a whole number, got \\[1\\]"),
        (("a", 0, "four", 1.0), "Images .* must be a whole number, got 'four'"),
        (("a", 0, None, 1.0), "Images .* must be a whole number, got None"),
        (("a", 0, [4], 1.0), "Images .* must be a whole number, got \\[4\\]"),
        (("a", 0, 4.5, 1.0), "Images .* must be a whole number, got 4.5"),
        (("a", 0, 10**200, 1.0), "Images .* is out of range"),
        (("a", 10**200, 4, 1.0), "Seed .* is out of range"),
        (("a", 0, 4, "high"), "Truncation ψ .* must be a number, got 'high'"),
        (("a", 0, 4, None), "Truncation ψ .* must be a number, got None"),
        ((["a"], 0, 4, 1.0), "unknown class"),
        ((None, 0, 4, 1.0), "unknown class 'None'"),
    ],
)
def test_bad_input_is_an_error_and_the_next_call_works(app, args, message):
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    with pytest.raises(AppError, match=message):
        client.predict(model, *args, api_name="/generate")
    assert len(client.predict(model, "a", 0, 2, 1.0, api_name="/generate")[1]["tiles"]) == 2


def test_class_inputs_take_exactly_the_chosen_models_classes(app, model_dir):
    from gradio_client.exceptions import AppError

    _, client, model, second = app
    assert [t["class"] for t in client.predict(second, "y", 3, 2, 1.0, api_name="/generate")[1]["tiles"]] == ["y"] * 2
    assert [t["class"] for t in client.predict(second, "2", 3, 2, 1.0, api_name="/generate")[1]["tiles"]] == ["z"] * 2
    with pytest.raises(AppError, match="unknown class 'b'; known classes: x, y, z"):
        client.predict(second, "b", 3, 2, 1.0, api_name="/generate")
    frames, _ = client.predict(second, "x", 1, "z", 2, 3, "slerp", 1.0, api_name="/interpolate")
    assert len(frames) == 3
    with pytest.raises(AppError, match="unknown class 'a'"):
        client.predict(second, "a", 1, "z", 2, 3, "slerp", 1.0, api_name="/interpolate")
    assert client.predict(second, api_name="/model_info")["classes"] == SECOND_CLASSES
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert "class name or index of the chosen model" in api["/generate"]["description"]


def test_the_api_speaks_integers_and_names_its_outputs(app):
    _, client, *_ = app
    api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    types = {p["parameter_name"]: p["python_type"]["type"] for p in api["/generate"]["parameters"]}
    assert types["seed"] == "int"
    assert {p["parameter_name"]: p["python_type"]["type"] for p in api["/interpolate"]["parameters"]}["end_seed"] == "int"
    for name in ("/quiz_round", "/quiz_answer", "/quiz_stats", "/model_info"):
        labels = [r["label"] for r in api[name]["returns"]]
        assert not [label for label in labels if label.startswith("value_")], (name, labels)
    for name, endpoint in api.items():  # every input has a name a script can pass as a keyword
        names = [p["parameter_name"] for p in endpoint["parameters"]]
        assert not [n for n in names if n.startswith("param_")], (name, names)
    assert [p["parameter_name"] for p in api["/directions"]["parameters"]][-5:] == [
        f"direction_{i}" for i in range(1, 6)]


def test_module_level_demo_is_built_on_first_use(monkeypatch, tmp_path):
    import gradio as gr

    import app as app_module

    monkeypatch.setenv("QUIZ_DB", str(tmp_path / "quiz.sqlite"))
    monkeypatch.delenv("GAN_MODELS", raising=False)
    monkeypatch.delenv("GAN_MODEL", raising=False)
    assert "demo" not in vars(app_module)  # importing the module loads no model
    demo = app_module.demo  # what `gradio app.py` and Spaces look up
    monkeypatch.delitem(vars(app_module), "demo")  # built once per process: this test's copy goes with it
    assert isinstance(demo, gr.Blocks) and app_module.demo is not demo
    monkeypatch.delitem(vars(app_module), "demo")
    with pytest.raises(AttributeError):
        app_module.no_such_thing  # noqa: B018


def test_bad_interpolation_and_unknown_model(app):
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    with pytest.raises(AppError):
        client.predict(model, "a", 1, "c", 2, 1, "slerp", 1.0, api_name="/interpolate")
    with pytest.raises(AppError):
        client.predict(model, "a", 1, "c", 2, 4, "cubic", 1.0, api_name="/interpolate")
    with pytest.raises(AppError):
        client.predict("/not/a/model", "a", 0, 2, 1.0, api_name="/generate")


def test_concurrent_clients_all_get_their_images(app):
    _, client, model, _ = app
    jobs = [client.submit(model, "c", seed, 4, 1.0, api_name="/generate") for seed in range(8)]  # queued at once
    results = [job.result(timeout=120) for job in jobs]
    assert [[t["seed"] for t in result[1]["tiles"]] for result in results] == [list(range(s, s + 4)) for s in range(8)]
    # Each client got its own seeds' images (their forward passes may have been shared): seed s+1 is the second
    # image of seed s's request and the first of seed s+1's.
    images = [images_of(result) for result in results]
    assert all((images[s][1] == images[s + 1][0]).all() and not (images[s][0] == images[s + 1][0]).all()
               for s in range(7))


def test_random_seed_button_gives_a_seed(app):
    _, client, *_ = app
    assert 0 <= int(client.predict(api_name="/random_seed")) < 1_000_000


def test_nearest_real_finds_a_training_copy_and_says_so(app):
    _, client, model, _ = app
    picture, summary, record = client.predict(model, "b", TRAINING_COPY[1], 1.0, api_name="/nearest_real")
    assert record["by_pixels"][0]["training_index"] == 60 and record["by_pixels"][0]["pixel_distance"] < 0.5
    assert record["looks_copied"] and summary.startswith(f"**b, seed {TRAINING_COPY[1]}") and "Looks copied" in summary
    # The image and its 5 neighbours by features, then by pixels: 2 rows of 6, enlarged 4x.
    assert Image.open(picture).size == (4 * (2 + 6 * 30), 4 * (2 + 2 * 30))
    _, summary, record = client.predict(model, "c", 11, 1.0, api_name="/nearest_real")
    assert not record["looks_copied"] and len(record["by_features"]) == 5


def test_invert_projects_an_upload_and_bad_uploads_are_refused(app, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    path = tmp_path / "drawing.png"
    Image.fromarray(np.pad(np.full((60, 30), 255, np.uint8), 40)).convert("RGBA").save(path)
    seen, found, summary, morphs, walk, record = client.predict(
        model, {"background": handle_file(str(path)), "layers": [], "composite": None}, 4, api_name="/invert")
    assert Image.open(seen).size == Image.open(found).size == (168, 168)  # 28 px, shown 6x
    assert Image.open(morphs).size == (4 * (2 + 6 * 30), 4 * (2 + 3 * 30))  # a row per class, 6 frames each, 4x
    assert Image.open(walk).n_frames > 2 and record["class"] in ("a", "b", "c") and len(record["z"]) == 16
    assert abs(sum(record["class_weights"]) - 1) < 1e-4 and 0 < record["steps"] <= 150
    # JPEGs as scripts send them (Gradio's editor cannot write its RGBA layer back as JPEG): RGB, grey and CMYK.
    shape = np.pad(np.full((60, 30), 255, np.uint8), 40)
    for mode in ("RGB", "L", "CMYK"):
        jpeg = tmp_path / f"photo-{mode}.jpg"
        Image.fromarray(shape).convert(mode).save(jpeg, quality=90)
        seen, *_, record = client.predict(
            model, {"background": handle_file(str(jpeg)), "layers": [], "composite": None}, 4, api_name="/invert")
        assert Image.open(seen).size == (168, 168) and record["class"] in ("a", "b", "c"), mode
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    for bad, message in (({"background": None, "layers": [], "composite": None}, "no picture given"),
                         ({"background": handle_file(str(broken)), "layers": [], "composite": None},
                          "damaged|not an image")):
        with pytest.raises(AppError, match=message):
            client.predict(model, bad, 4, api_name="/invert")


def test_invert_image_takes_every_common_image_file(app, tmp_path, monkeypatch):
    """/invert_image: a plain file, as scripts have them; each kind inverts, a broken one gets a sentence."""
    import gan.serve.explorer
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    monkeypatch.setattr(gan.serve.explorer, "INVERT_STEPS", 2)  # the files are the point here, not the search
    _, client, model, _ = app
    shape = np.pad(np.full((60, 30), 255, np.uint8), 40)  # a white bar on black, 140 x 110
    files = {}
    for name, mode, options in (("plain.png", "L", {}), ("photo.jpg", "RGB", {"quality": 90}),
                                ("cmyk.jpg", "CMYK", {}), ("pic.webp", "RGB", {}), ("anim.gif", "P", {}),
                                ("old.bmp", "RGB", {}), ("scan.tiff", "RGB", {}), ("deep.png", "I;16", {}),
                                ("clear.png", "RGBA", {})):
        image = Image.fromarray(shape).convert(mode) if mode != "I;16" else Image.fromarray(shape.astype(np.uint16) * 257)
        image.save(tmp_path / name, **options)
        files[name] = tmp_path / name
    rotated = Image.fromarray(shape).convert("RGB").rotate(90, expand=True)  # stored on its side...
    exif = Image.Exif()
    exif[0x0112] = 8  # ...with the EXIF tag that turns it upright: the bar stands tall again
    rotated.save(tmp_path / "phone.jpg", exif=exif.tobytes())
    files["phone.jpg"] = tmp_path / "phone.jpg"
    seen = {}
    for name, path in files.items():
        picture, found, summary, morphs, walk, record = client.predict(model, handle_file(str(path)), 4,
                                                                       api_name="/invert_image")
        assert Image.open(picture).size == (168, 168) and record["class"] in ("a", "b", "c"), name
        seen[name] = np.asarray(Image.open(picture).convert("L")).astype(int)
    # The phone's photo is seen upright, as the plain one (JPEG noise aside), not on its side.
    assert np.abs(seen["phone.jpg"] - seen["photo.jpg"]).mean() < 8
    assert np.abs(seen["phone.jpg"] - np.rot90(seen["photo.jpg"])).mean() > 30
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff" + b"\0" * 40)
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    for bad in (broken, text):
        with pytest.raises(AppError, match="damaged|not an image"):
            client.predict(model, handle_file(str(bad)), 4, api_name="/invert_image")


class NotUploaded(dict):
    """File metadata gradio_client does not upload (it reads .get("_type")) but sends as {"_type": "gradio.FileData"}:
    a path on the server that no one uploaded, as a hostile caller sends it."""

    def get(self, key, default=None):
        return None if key == "_type" else super().get(key, default)


def test_pictures_gradio_cannot_take_in_are_refused_by_name(app):
    """Payloads that fail inside Gradio, before any of the app's code (found by bench/app_fuzz.py)."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    server_file = {"path": "/etc/hostname", "meta": NotUploaded(_type="gradio.FileData")}
    for bad in ("/etc/hostname", 3, True, [1, 2],  # not an editor value at all
                {"background": "/etc/hostname", "layers": [], "composite": None},  # a bare path
                {"background": {"path": "/etc/hostname"}, "layers": [], "composite": None},  # no file metadata
                {"background": None, "layers": "none", "composite": 5},  # wrong types inside
                {"background": server_file, "layers": [], "composite": None},  # never uploaded
                {"background": handle_file("http://127.0.0.1:9/x.png"), "layers": [], "composite": None}):  # a URL
        with pytest.raises(AppError, match="'Your picture': not a file this app can take"):
            client.predict(model, bad, 4, api_name="/invert")
    assert client.predict(model, "a", 1, 1, 1.0, api_name="/generate")  # and the server goes on


def test_directions_edit_the_image_and_zero_leaves_it(app, model_dir):
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    plain = np.asarray(Image.open(client.predict(model, "a", 3, 1.0, 0, 0, 0, 0, 0, api_name="/directions")))
    moved = np.asarray(Image.open(client.predict(model, "a", 3, 1.0, 2.5, 0, 0, 0, 0, api_name="/directions")))
    expected = generate(load_generator(model_dir), [0], [3])[0][..., 0]
    assert plain.shape == (168, 168) and np.abs(plain[::6, ::6].astype(int) - expected).max() <= 1
    assert np.abs(moved.astype(int) - plain).mean() > 1
    with pytest.raises(AppError, match="greater than maximum"):
        client.predict(model, "a", 3, 1.0, 9, 0, 0, 0, 0, api_name="/directions")


# -------------------------------------------------------------------------------------- the service, directly


def test_service_validates_and_caps(model_dir):
    model = ModelRegistry([str(model_dir)]).get(None)
    grid = generate_images(model, ALL_CLASSES, 2**32 - 1, 64, 1.0)
    assert len(grid.seeds) == 3 * 64 and grid.image.shape[0] == 3 * 30 + 2 and grid.seeds[:2] == [2**32 - 1, 0]
    layout = {**grid.layout(model.class_names), "scale": 1}  # 64 columns: too wide to enlarge
    assert grid.layout(model.class_names)["scale"] == 1 and tile_at({**layout, "scale": 3}, 6, 6) == 0
    assert tile_at(layout, 2, 2) == 0 and tile_at(layout, 2 + 30 + 27, 2 + 30) == 64 + 1
    assert tile_at(layout, 1, 5) is None and tile_at(layout, 30, 5) is None  # padding
    assert tile_at(layout, 2, 3 * 30 + 1) is None and tile_at({"rows": "x"}, 2, 2) is None  # below; not a layout
    assert seed_range(2**32 - 1, 3) == [2**32 - 1, 0, 1]
    with pytest.raises(GanError, match="unknown model"):
        ModelRegistry([str(model_dir)]).get("other")
    with pytest.raises(GanError, match="whole number"):
        check_int("3", 1, 64, "count")
    with pytest.raises(GanError, match="between 1 and 64"):
        check_int(0, 1, 64, "count")
    assert check_int(4.0, 1, 64, "count") == 4
    assert enlarge(np.zeros((28, 28, 1), np.uint8)).shape == (168, 168)
    assert enlarge(np.zeros((64, 64, 3), np.uint8)).shape == (128, 128, 3)
    assert enlarge(np.zeros((256, 256, 3), np.uint8)).shape == (256, 256, 3)


def test_model_sources_come_from_flags_then_environment(monkeypatch):
    from app import DEFAULT_MODEL, model_sources, shipped_model_source

    monkeypatch.delenv("GAN_MODELS", raising=False)
    monkeypatch.delenv("GAN_MODEL", raising=False)
    # every shipped model, the default first
    assert model_sources() == [DEFAULT_MODEL, shipped_model_source("emoji"), shipped_model_source("mnist")]
    assert DEFAULT_MODEL.endswith("models/fashion-mnist")
    monkeypatch.setenv("GAN_MODEL", "user/one")
    assert model_sources() == ["user/one"]
    monkeypatch.setenv("GAN_MODELS", "user/a, user/b")
    assert model_sources() == ["user/a", "user/b"]
    assert model_sources(["x"]) == ["x"]


# -------------------------------------------------------------------------------------------------- the quiz


def png_chunks(data: bytes) -> list[str]:
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        chunks.append(data[at + 4:at + 8].decode("ascii"))
        at += 12 + length
    return chunks


def test_quiz_rounds_leak_nothing_and_real_and_fake_look_alike(app):
    import io

    _, client, model, _ = app
    import re

    by_kind: dict[str, list[tuple]] = {"real": [], "fake": []}
    templates: dict[str, set[str]] = {"real": set(), "fake": set()}
    for _ in range(24):
        result = client.predict(model, "single", api_name="/quiz_round")
        round_id, html = result[0], result[1]
        # Everything but the pixels, the round id and the round number must be the same for both kinds.
        template = json.dumps(result).replace(round_id, "ID")
        template = re.sub(r"data:image/png;base64,[^\"\\]+", "IMAGE", re.sub(r"Round \d+", "Round N", template))
        (image,) = decode_images(html)
        assert set(png_chunks(image)) <= {"IHDR", "IDAT", "IEND", "PLTE"}  # no text, time or other metadata
        feedback = client.predict(model, round_id, "real", api_name="/quiz_answer")
        kind = "real" if feedback.startswith("Right") else "fake"
        pil = Image.open(io.BytesIO(image))
        by_kind[kind].append((pil.size, pil.mode, pil.format))
        templates[kind].add(template)
    assert by_kind["real"] and by_kind["fake"]  # both kinds came up (p of missing one in 24 rounds: 1e-7)
    assert set(by_kind["real"]) == set(by_kind["fake"])  # same size, mode and format for both
    assert len(templates["real"] | templates["fake"]) == 1  # byte for byte the same payload around the pixels


def test_quiz_pair_rounds_show_two_images(app):
    _, client, model, _ = app
    round_id, html, prompt, *_ = client.predict(model, "pair", api_name="/quiz_round")
    assert len(decode_images(html)) == 2 and "Which is real" in prompt
    feedback = client.predict(model, round_id, "left", api_name="/quiz_answer")
    assert "discriminator" in feedback.lower()


def test_quiz_rejects_replays_stale_rounds_and_bad_guesses(app):
    from gradio_client.exceptions import AppError

    _, client, model, _ = app
    first, *_ = client.predict(model, "single", api_name="/quiz_round")
    second, *_ = client.predict(model, "single", api_name="/quiz_round")
    with pytest.raises(AppError, match="not the current round|no round|current"):
        client.predict(model, first, "real", api_name="/quiz_answer")
    with pytest.raises(AppError):
        client.predict(model, second, "maybe", api_name="/quiz_answer")
    client.predict(model, second, "fake", api_name="/quiz_answer")
    with pytest.raises(AppError, match="already answered"):
        client.predict(model, second, "fake", api_name="/quiz_answer")
    third, *_ = client.predict(model, "single", api_name="/quiz_round")
    assert client.predict(model, third, "real", api_name="/quiz_answer")  # the game goes on


def test_quiz_stats_count_what_was_played(app):
    _, client, model, _ = app
    round_id, *_ = client.predict(model, "single", api_name="/quiz_round")
    client.predict(model, round_id, "fake", api_name="/quiz_answer")
    summary, table, chart = client.predict(model, api_name="/quiz_stats")
    assert "judgments" in summary and table["data"] and table["headers"][0] == "model"
    # The tiny test model has no metrics: the machine judge line says so instead of inventing a figure.
    assert "No machine two-sample test was measured" in summary
    assert "human error rate" in {row[1] for row in chart["data"]}


def test_the_shipped_model_is_named_as_the_readme_calls_it(monkeypatch):
    import importlib

    from conftest import REPO

    monkeypatch.chdir(REPO)
    import app as app_module

    assert importlib.reload(app_module).DEFAULT_MODEL == "models/fashion-mnist"
    assert 'model_name="models/mnist"' in (REPO / "README.md").read_text()  # how README names another local model


def start_app_process(command: list[str], tmp_path, env: dict):
    """Start the app as its own process and wait until it answers; returns (process, client)."""
    import signal
    import subprocess
    import time

    from gradio_client import Client

    def as_from_a_terminal():
        # A test runner started in the background (CI) ignores SIGINT, and a child inherits that: give the app the
        # default a person's terminal gives it, so Ctrl-C (SIGINT) means what it means there.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True,  # its own process group: children stop with it
                              preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 180  # a generous bound for a busy machine, not a speed check
    while True:
        try:
            return server, Client(f"http://127.0.0.1:{env['GRADIO_SERVER_PORT']}/", verbose=False,
                                  download_files=str(tmp_path / "dl"))
        except Exception:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError(server.stdout.read()[-3000:]) from None
            time.sleep(0.5)


def app_env(tmp_path, temp) -> dict:
    from conftest import child_env

    return {**child_env(), "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio"),
            "QUIZ_DB": str(tmp_path / "quiz.sqlite"), "GRADIO_SERVER_PORT": str(free_port())}


def test_gradio_reload_mode_finds_the_module_level_demo(tmp_path, model_dir):
    """`gradio app.py`, as Spaces' developers run it, serves the same app (app.demo)."""
    import os
    import shutil
    import signal
    import sys
    from pathlib import Path

    from conftest import REPO

    gradio_cli = Path(sys.executable).parent / "gradio"
    temp = tmp_path / "temp"
    temp.mkdir()
    shutil.copyfile(REPO / "app.py", tmp_path / "app.py")  # its folder is watched: a copy, away from the checkout
    env = {**app_env(tmp_path, temp), "GAN_MODEL": str(model_dir), "PYTHONPATH": str(REPO)}
    server, client = start_app_process([str(gradio_cli), "app.py"], tmp_path, env)
    try:
        assert len(client.predict(str(model_dir), "b", 3, 2, 1.0, api_name="/generate")[1]["tiles"]) == 2
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the CLI and the app process it runs
        server.wait(timeout=60)


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_the_app_removes_its_scratch_folder_when_it_stops(tmp_path, model_dir, stop):
    """`python app.py` as a Space runs it: serve one request (which writes scratch files), stop it as a Space does
    (SIGTERM) or as a person does (Ctrl-C), and nothing of it is left in the temp folder."""
    import signal
    import sys

    from conftest import REPO

    temp = tmp_path / "temp"
    temp.mkdir()
    env = app_env(tmp_path, temp)
    server, client = start_app_process([sys.executable, str(REPO / "app.py"), "--model", str(model_dir),
                                        "--port", env["GRADIO_SERVER_PORT"]], tmp_path, env)
    try:
        assert len(client.predict(str(model_dir), "a", 0, 2, 1.0, api_name="/generate")[1]["tiles"]) == 2
        assert [p.name for p in temp.glob("gan-demo-*")]  # the scratch folder exists while serving
        server.send_signal(getattr(signal, stop))
        server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    assert not list(temp.glob("gan-demo-*")), list(temp.iterdir())


def test_sessions_scratch_files_and_cache_folders_stay_bounded(app, model_dir, tmp_path, tmp_path_factory):
    """What grew under many calls (bench/app_memory.py): Gradio's per-session records, scratch files, and the empty
    folders Gradio's cache cleanup leaves."""
    import os
    import time

    from gradio_client import Client

    from gan.serve.housekeeping import SESSION_CAPACITY, remove_empty_folders
    from gan.serve.scratch import Scratch

    demo, client, model, _ = app
    assert SESSION_CAPACITY <= 1000
    downloads = str(tmp_path_factory.mktemp("visitors"))
    for _ in range(7):  # seven visitors, each with a quiz round held in session state
        visitor = Client(client.src, verbose=False, download_files=downloads)
        visitor.predict(model, "single", api_name="/quiz_round")
    assert len(demo.state_holder.session_data) <= 4  # the fixture's capacity: the oldest sessions went

    now = [1000.0]
    scratch = Scratch(tmp_path / "scratch", max_age_s=120, prune_every_s=30, clock=lambda: now[0])
    old, fresh = scratch.path(".png"), scratch.path(".png")
    for path in (old, fresh):
        path.write_bytes(b"x")
    os.utime(old, (now[0] - 200, now[0] - 200))
    os.utime(fresh, (now[0] - 10, now[0] - 10))
    (scratch.folder / "models").mkdir()
    scratch.path(".png")  # not yet 30 s since the last prune: nothing goes
    assert old.exists()
    now[0] += 31
    scratch.path(".png")
    assert not old.exists() and fresh.exists() and (scratch.folder / "models").is_dir()

    cache = tmp_path / "cache"
    for name in ("empty-old", "empty-new", "full-old"):
        (cache / name).mkdir(parents=True)
    (cache / "full-old" / "image.png").write_bytes(b"x")
    for name in ("empty-old", "full-old"):
        os.utime(cache / name, (time.time() - 600, time.time() - 600))
    assert remove_empty_folders(cache) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["empty-new", "full-old"]


@pytest.mark.slow
def test_the_readmes_api_examples_run_as_written(tmp_path, monkeypatch):
    """README's gradio_client block, run as it stands against the app on the shipped default model (keyword
    arguments and defaults only, as against a Space): every call answers."""
    import ast
    import re
    from pathlib import Path

    from app import build_demo, serve

    repo = Path(__file__).resolve().parents[1]
    block = re.search(r"```python\n(from gradio_client import Client, handle_file\n.*?)```",
                      (repo / "README.md").read_text(), re.S).group(1)
    demo = build_demo(ModelRegistry([str(repo / "models" / "fashion-mnist")]),
                      JudgmentStore(tmp_path / "judgments.sqlite"))
    port = free_port()
    serve(demo, prevent_thread_lock=True, server_port=port, quiet=True)
    try:
        monkeypatch.chdir(repo)  # where README's commands run (the copy check finds evaluators/ there)
        boot = tmp_path / "boot.jpg"
        Image.fromarray(np.pad(np.full((50, 20), 255, np.uint8), 30)).convert("RGB").save(boot)
        block = block.replace("http://127.0.0.1:7860/", f"http://127.0.0.1:{port}/").replace('"boot.jpg"', repr(str(boot)))
        scope = {}
        for statement in ast.parse(block).body:
            code = ast.get_source_segment(block, statement)
            # The copy check needs the model's training data to build its index (minutes, and a download on a fresh
            # machine): its own tests use a tiny model; here it only has to be valid Python (parsed above).
            if "/nearest_real" not in code and 'record["verdict"]' not in code:
                exec(compile(ast.Module([statement], []), "README.md", "exec"), scope)
        assert Image.open(scope["png"]).size == (28, 28) and scope["psis"][-1] == 1.0
        assert scope["info"]["classes"][7] == "Sneaker" and scope["inversion"]["class"] in scope["info"]["classes"]
    finally:
        demo.close()
