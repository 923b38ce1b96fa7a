"""Bring your own image: uploads of any kind become model images, inversion finds them, directions edit them."""

import copy
import io
import sys
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import REPO, run, tiny_export
from gan.config import ModelConfig
from gan.explore.directions import (DIRECTIONS_NAME, compute_directions, directions_for, edit, load_directions,
                                    save_directions)
from gan.errors import GanError
from gan.quality.evaluator import Evaluator, EvaluatorConfig, predict, save_evaluator
from gan.explore.invert import Framing, class_morphs, invert, load_user_image, measure_framing, walk_to_seed
from gan.models import ConditionalBatchNorm2d, Generator
from gan.sampling import generate, generate_from_latents, latent_from_seed

GREY = ModelConfig()  # 28 px, 1 channel
COLOUR = ModelConfig(image_size=32, channels=3)
MNIST_LIKE = Framing(background=0, fill=1.0)


def class_aware(generator: Generator) -> Generator:
    """Random class embeddings: a fresh generator's conditional batch norms start at identity, ignoring the class."""
    for module in generator.modules():
        if isinstance(module, ConditionalBatchNorm2d):
            torch.nn.init.normal_(module.gain.weight, std=0.5)
            torch.nn.init.normal_(module.bias.weight, std=0.5)
    return generator


@pytest.fixture(scope="module")
def generator(one_thread):
    torch.manual_seed(0)
    model = class_aware(Generator(ModelConfig(num_classes=3, class_names=["a", "b", "c"], g_width=8, latent_dim=16)))
    model(torch.randn(8, 16), torch.arange(8) % 3)  # non-default batch-norm statistics
    return model.eval()


@pytest.fixture(scope="module")
def evaluator():
    torch.manual_seed(1)
    return Evaluator(EvaluatorConfig(num_classes=3, class_names=["a", "b", "c"], width=4, feature_dim=16)).eval()


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=options.pop("format", "PNG"), **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels, though its data holds one: a decompression bomb's header."""
    data = bytearray(png_bytes(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])  # width, height, then depth, colour, ... flags
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


# ----------------------------------------------------------------------------------------------- inversion

def test_inverting_a_generated_image_recovers_it_and_its_class(generator, evaluator):
    image = generate(generator, [1], [101])[0]  # not one of the start seeds (0-3 at psi 0.7)
    found = invert(generator, image, evaluator=evaluator, steps=100, max_seconds=120)
    unrelated = np.abs(generate(generator, [1], [151])[0].astype(float) - image).mean()
    assert found.steps == 100
    assert found.pixel_error < 0.35 * unrelated and found.pixel_error < 3.0
    assert found.mixture_class == 1 and found.class_weights[1] > 0.9
    assert found.evaluator_class == int(predict(evaluator, image[None])[0])
    assert found.reconstruction.shape == image.shape and found.reconstruction.dtype == np.uint8
    # The returned address reproduces the returned picture.
    again = generate_from_latents(generator, found.z[None], found.class_weights[None])[0]
    assert (again == found.reconstruction).all()
    assert torch.isclose(found.class_weights.sum(), torch.tensor(1.0))


def test_inversion_is_deterministic_and_the_seed_picks_the_start(generator):
    image = generate(generator, [2], [7])[0]
    a, b = (invert(generator, image, steps=5, max_seconds=120, seed=3) for _ in range(2))
    other = invert(generator, image, steps=5, max_seconds=120, seed=40)
    assert torch.equal(a.z, b.z) and (a.reconstruction == b.reconstruction).all()
    assert not torch.equal(a.z, other.z)


def test_the_step_and_time_caps_hold_and_progress_is_reported(generator):
    image = generate(generator, [0], [5])[0]
    fractions = []
    pauses = []
    assert invert(generator, image, steps=7, max_seconds=120, progress=fractions.append,
                  pause=lambda: pauses.append(1)).steps == 7
    assert len(pauses) == 8  # before the start candidates' pass and before each step: where a server lets others go
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert len(fractions) == 7 + 2  # start, one per step, end
    assert invert(generator, image, steps=0).steps == 0  # the best start alone
    # A time cap shorter than the start's own scoring leaves no time for any step.
    assert invert(generator, image, steps=50, max_seconds=1e-6).steps == 0


def test_invert_refuses_images_of_another_shape_and_bad_caps(generator):
    with pytest.raises(GanError, match="load_user_image"):
        invert(generator, np.zeros((32, 32, 3), dtype=np.uint8))
    with pytest.raises(GanError, match="steps"):
        invert(generator, np.zeros((28, 28, 1), dtype=np.uint8), steps=-1)


def test_morphs_and_walk_start_at_the_reconstruction(generator, tmp_path):
    found = invert(generator, generate(generator, [0], [9])[0], steps=3)
    morphs = class_morphs(generator, found, frames=4)
    assert morphs.shape == (3, 4, 28, 28, 1)
    for k in range(3):
        assert np.abs(morphs[k, 0].astype(int) - found.reconstruction).max() <= 1
        assert np.abs(morphs[k, -1].astype(int) - generate_from_latents(
            generator, found.z[None], torch.tensor([k]))[0]).max() <= 1
    assert not (morphs[1, -1] == morphs[2, -1]).all()
    walk = walk_to_seed(generator, found, seed=12, target_class=2, frames=5)
    assert walk.shape == (5, 28, 28, 1)
    assert np.abs(walk[0].astype(int) - found.reconstruction).max() <= 1
    assert np.abs(walk[-1].astype(int) - generate(generator, [2], [12])[0]).max() <= 1
    with pytest.raises(GanError, match="out of range"):
        walk_to_seed(generator, found, seed=1, target_class=3)


# ----------------------------------------------------------------------------------------------- uploads

def test_a_transparent_drawing_lands_on_the_datasets_black_background():
    drawing = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    drawing.paste((255, 255, 255, 255), (30, 10, 70, 90))  # a white bar on a transparent canvas
    image = load_user_image(png_bytes(drawing), GREY, framing=MNIST_LIKE)
    assert image.shape == (28, 28, 1) and image.dtype == np.uint8
    assert image[:, 0].max() < 20 and image[14, 14, 0] > 235  # black border, white bar
    # Black ink on a transparent canvas would vanish on black: it comes out as white on black too.
    ink = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    ink.paste((0, 0, 0, 255), (30, 10, 70, 90))
    assert (np.abs(load_user_image(png_bytes(ink), GREY, framing=MNIST_LIKE).astype(int) - image) <= 2).all()


def test_a_photo_on_white_is_negated_trimmed_and_centred_like_fashion_mnist():
    photo = np.full((300, 500), 255, dtype=np.uint8)
    photo[100:160, 50:350] = 0  # a dark object 300 wide, 60 high, left of centre, on white
    image = load_user_image(photo, GREY, framing=MNIST_LIKE)[..., 0]
    assert image[0].max() < 20 and image[-1].max() < 20  # white margins became the black background
    assert image[14, 0] > 200 and image[14, 27] > 200  # the object now spans the full width...
    assert image[14].mean() > 200 and image[:8].max() < 20  # ...centred vertically
    # Without a plain background (photo-like data) the loader only resizes and centre-crops, as the dataset does.
    plain = load_user_image(photo, GREY, framing=Framing(background=None))[..., 0]
    assert plain[0].min() > 200  # no negation


@pytest.mark.parametrize("make", [
    lambda: Image.new("P", (40, 30), 3),  # palette
    lambda: Image.fromarray(np.full((20, 20), 60000, dtype=np.uint16)),  # 16-bit grey
    lambda: Image.new("CMYK", (50, 20), (0, 200, 200, 0)),
    lambda: Image.new("RGB", (3, 2), (255, 255, 255)),  # tiny
    lambda: Image.new("1", (64, 64), 1),
    lambda: Image.new("LA", (64, 32), (200, 128)),
])
@pytest.mark.parametrize("config", [GREY, COLOUR], ids=["grey", "rgb"])
def test_any_colour_mode_and_size_becomes_the_models_shape(make, config):
    for source in (make(), png_bytes(make(), format="TIFF" if make().mode == "CMYK" else "PNG")):
        image = load_user_image(source, config, framing=MNIST_LIKE)
        assert image.shape == (config.image_size, config.image_size, config.channels)
        assert image.dtype == np.uint8


def test_sixteen_bit_values_are_scaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 28).astype(np.uint16), (28, 1))
    image = load_user_image(Image.fromarray(ramp), GREY, framing=Framing(background=None))[..., 0]
    assert image[:, 0].max() < 5 and image[:, -1].min() > 250 and 100 < image[14, 14] < 155


def test_a_huge_image_is_shrunk(tmp_path):
    path = tmp_path / "huge.png"
    huge = np.zeros((3000, 4000), dtype=np.uint8)
    huge[1000:2000, 1500:2500] = 255
    Image.fromarray(huge).save(path)
    image = load_user_image(path, GREY, framing=Framing(background=0, fill=0.5))[..., 0]
    assert image.shape == (28, 28)
    assert image[14, 14] > 240 and image[3, 3] < 10  # the square, trimmed and framed to span half the side


def test_an_animation_gives_its_first_frame(tmp_path):
    first, second = Image.new("L", (30, 30), 0), Image.new("L", (30, 30), 0)
    first.paste(255, (5, 5, 25, 25))
    path = tmp_path / "anim.gif"
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    image = load_user_image(path, GREY, framing=MNIST_LIKE)
    assert image.max() > 240  # the second frame is all black
    assert (image == load_user_image(first, GREY, framing=MNIST_LIKE)).all()


def test_arrays_of_floats_and_bools_are_read_in_their_own_range():
    floats = np.zeros((28, 28, 3), dtype=np.float32)
    floats[10:18, 10:18] = 1.0
    assert load_user_image(floats, GREY, framing=Framing(background=None)).max() == 255
    assert load_user_image(floats > 0.5, GREY, framing=Framing(background=None)).max() == 255
    assert load_user_image({"composite": floats, "layers": []}, GREY).shape == (28, 28, 1)  # a Gradio editor value


def test_measured_framing_sees_a_black_background():
    torch.manual_seed(0)
    black = Generator(ModelConfig(num_classes=3, g_width=8, latent_dim=16)).eval()
    torch.nn.init.constant_(black.out_conv.bias, -5.0)  # every pixel saturates at black...
    torch.nn.init.zeros_(black.out_conv.weight)
    assert measure_framing(black) == Framing(background=0, fill=1.0)  # ...so nothing but background
    torch.nn.init.normal_(black.out_conv.weight, std=3.0)  # noise everywhere: no plain background
    torch.nn.init.zeros_(black.out_conv.bias)
    assert measure_framing(black).background is None


@pytest.mark.parametrize("source, message", [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "damaged|not an image"),
    (png_bytes(Image.new("L", (64, 64), 128))[:60], "damaged"),  # truncated
    (b"hello, this is a text file\n" * 10, "not an image"),
    (png_claiming(50_000, 50_000), "too large"),  # past Pillow's own bomb limit
    (png_claiming(7_000, 7_000), "too large"),  # past ours
    (None, "no picture"),
    ({"composite": None}, "no picture"),
    (np.zeros((5, 5, 2)), "shape"),
])
def test_unusable_uploads_are_refused_with_advice(source, message):
    with pytest.raises(GanError, match=message):
        load_user_image(source, GREY)


def test_a_text_file_on_disk_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(GanError, match="not an image"):
        load_user_image(path, GREY)
    with pytest.raises(GanError, match="no file"):
        load_user_image(tmp_path / "missing.png", GREY)


# ----------------------------------------------------------------------------------------------- directions

def test_directions_are_orthonormal_and_sorted_by_explained_variance(generator):
    directions = compute_directions(generator, count=8)
    v = directions.vectors
    assert v.shape == (8, 16)
    assert torch.allclose(v @ v.T, torch.eye(8), atol=1e-5)
    shares = directions.explained_variance
    assert (shares[:-1] >= shares[1:]).all() and shares.sum() <= 1.0 + 1e-6 and shares[0] > 1 / 16


def test_directions_match_ganspace_pca_of_the_stem_carried_back_by_regression(generator):
    # A random stem's variances are nearly equal, so its principal axes are ill-defined: give it distinct ones,
    # along random (not axis-aligned) directions in z.
    torch.manual_seed(2)
    model = copy.deepcopy(generator)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16))
    with torch.no_grad():
        model.stem.weight.copy_(model.stem.weight @ rotation @ torch.diag(0.75 ** torch.arange(16.0)) @ rotation.T)
    # GANSpace's recipe on samples: PCA of the stem's activations, then regress z on the PCA coordinates.
    z = torch.randn(4000, 16)
    with torch.no_grad():
        h = model.stem(z)
    h = h - h.mean(dim=0)
    _, _, components = torch.linalg.svd(h, full_matrices=False)
    directions = compute_directions(model).vectors
    for i in range(3):
        coordinate = h @ components[i]  # (N,)
        regressed = z.T @ coordinate / coordinate.square().sum()  # least squares: z ~ coordinate * direction
        assert torch.nn.functional.cosine_similarity(regressed, directions[i], dim=0).abs() > 0.95


def test_editing_moves_the_image_and_amount_zero_leaves_it(generator):
    directions = compute_directions(generator)
    z = latent_from_seed(4, 16)
    original = generate(generator, [1], [4])[0]
    assert (edit(generator, z, 1, directions, [0.0] * 5) == original).all()
    weights = torch.tensor([0.0, 1.0, 0.0])
    assert (edit(generator, z, weights, directions, []) == original).all()
    moved = edit(generator, z, weights, directions, [3.0])
    assert np.abs(moved.astype(float) - original).mean() > 1.0
    with pytest.raises(GanError, match="amounts"):
        edit(generator, z, 1, directions, [0.0] * 17)


def test_directions_are_saved_once_and_recomputed_for_other_weights(generator, tmp_path):
    first = directions_for(generator, tmp_path)
    assert (tmp_path / DIRECTIONS_NAME).is_file()
    loaded = load_directions(tmp_path / DIRECTIONS_NAME)
    assert torch.equal(loaded.vectors, first.vectors) and loaded.fingerprint == first.fingerprint
    save_directions(compute_directions(generator, count=2), tmp_path / DIRECTIONS_NAME)  # a file with other content
    assert len(directions_for(generator, tmp_path).vectors) == 2  # matching fingerprint: read, not recomputed
    torch.manual_seed(5)
    retrained = Generator(generator.model_config).eval()
    assert not torch.equal(directions_for(retrained, tmp_path).vectors, first.vectors)
    assert load_directions(tmp_path / DIRECTIONS_NAME).fingerprint != first.fingerprint


@pytest.mark.parametrize("folder", ["fashion-mnist", "mnist"])
def test_shipped_directions_match_their_models(folder):
    from gan.explore.directions import stem_fingerprint
    from gan.models import load_generator

    path = REPO / "models" / folder / DIRECTIONS_NAME
    if not path.is_file():
        pytest.skip(f"models/{folder} ships no {DIRECTIONS_NAME}")
    assert load_directions(path).fingerprint == stem_fingerprint(load_generator(REPO / "models" / folder))


# ----------------------------------------------------------------------------------------------- command lines

def test_the_command_lines_write_their_files(tmp_path):
    model = tmp_path / "model"
    tiny_export(model)
    save_evaluator(Evaluator(EvaluatorConfig(num_classes=3, class_names=["a", "b", "c"], width=4, feature_dim=8)),
                   tmp_path / "evaluator")
    picture = tmp_path / "upload.png"
    Image.new("RGBA", (90, 60), (255, 255, 255, 255)).save(picture)
    out = tmp_path / "out"
    result = run([sys.executable, "-m", "gan.invert", str(picture), "--model", str(model), "--evaluator",
                  str(tmp_path / "evaluator"), "--steps", "3", "--seconds", "600", "--out", str(out)])
    # (a generous time cap: on a loaded machine the default 6 s could end the search before its 3 steps)
    assert result.returncode == 0, result.stderr
    assert "class " in result.stdout and "3 steps" in result.stdout and "pixel error" in result.stdout
    for name in ("target.png", "reconstruction.png", "morphs.png", "walk.gif"):
        assert (out / name).stat().st_size > 0
    assert Image.open(out / "walk.gif").n_frames > 1

    bad = run([sys.executable, "-m", "gan.invert", str(tmp_path / "evaluator" / "evaluator_config.json"),
               "--model", str(model), "--out", str(out)])
    assert bad.returncode == 2 and "not an image" in bad.stderr

    result = run([sys.executable, "-m", "gan.directions", "compute", "--model", str(model), "--count", "4"])
    assert result.returncode == 0, result.stderr
    assert load_directions(model / DIRECTIONS_NAME).vectors.shape == (4, 16)


EMOJI_LIKE = Framing(background=255, fill=0.9)  # colour icons on white, as the emoji data are composited


@pytest.mark.parametrize("backdrop", ["transparent", "white", "black"])
def test_a_colour_upload_keeps_its_colours_and_is_framed_on_the_datasets_white(backdrop):
    """A red disc becomes a red disc on white at the model's size: transparency is composited on the dataset's
    white, and a colour picture is never negated (its negative, a cyan disc, would be another object)."""
    fill = {"transparent": (0, 0, 0, 0), "white": (255, 255, 255, 255), "black": (0, 0, 0, 255)}[backdrop]
    picture = Image.new("RGBA", (120, 80), fill)
    ImageDraw.Draw(picture).ellipse((30, 10, 90, 70), fill=(220, 20, 30, 255))
    image = load_user_image(png_bytes(picture), COLOUR, framing=EMOJI_LIKE).astype(int)
    assert image.shape == (32, 32, 3)
    centre = image[16, 16]
    assert centre[0] > 180 and centre[1] < 60 and centre[2] < 60  # still red
    if backdrop != "black":  # a black photo background is part of the picture: kept, not whitened
        assert (image[0, 0] > 240).all() and (image[-1, -1] > 240).all()  # corners: the dataset's white
