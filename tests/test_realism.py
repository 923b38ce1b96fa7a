"""Realism checks: the classifier two-sample test (calibrated on real data), the generator's output range, the
selection score that picks best/, and the pixel tells of the quiz."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import CLASSES, pattern
from gan.quality.intervals import binomial_p_value, wilson_interval
from gan.quality.metrics import C2ST_MIN_IMAGES, C2stSettings, c2st
from gan.config import ModelConfig
from gan.errors import GanError
from gan.data import white_plateau_shares
from gan.models import Generator, output_layer
from gan.quality.scores import Scores
from gan.train.monitor import selection_score
from gan.quiz.tells import best_rule, pixel_statistics, tell_accuracies
from gan.sampling import generate, to_uint8

FAST = C2stSettings(epochs=6, width=8, feature_dim=32)  # enough to find blur or noise, a few seconds on 1 thread


pytestmark = pytest.mark.usefixtures("one_thread")


def patterns(count: int, seed: int) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) circles, squares and stripes with noise: a stand-in for a real dataset."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([pattern(CLASSES[i % 3], rng) for i in range(count)])[:, None])


@pytest.fixture(scope="module")
def real_sets() -> tuple[torch.Tensor, torch.Tensor]:
    return patterns(600, seed=0), patterns(600, seed=1)


def blurred(images: torch.Tensor) -> torch.Tensor:
    kernel = torch.tensor([1.0, 2.0, 1.0])
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    return F.conv2d(images.float(), kernel, padding=1).round().clamp(0, 255).to(torch.uint8)


def test_c2st_of_two_real_sets_is_chance(real_sets):
    result = c2st(*real_sets, settings=FAST)
    low, high = result["interval_95"]
    assert abs(result["accuracy"] - 0.5) < 0.07 and low < 0.5 < high + 0.02
    assert result["images_per_set"] == 600 and result["tested_images"] == 600
    assert result["p_value"] > 0.01


@pytest.mark.parametrize("change", ["blur", "noise"])
def test_c2st_tells_blurred_or_noised_real_images_from_real(real_sets, change):
    real, other = real_sets
    if change == "blur":
        changed = blurred(other)
    else:
        noise = torch.from_numpy(np.random.default_rng(2).normal(0, 10, other.shape)).float()
        changed = (other.float() + noise).round().clamp(0, 255).to(torch.uint8)
    result = c2st(real, changed, settings=FAST)
    assert result["accuracy"] > 0.75 and result["interval_95"][0] > 0.7 and result["p_value"] < 1e-6


def test_a_saturating_c2st_trains_longer_only_while_it_gains_and_stays_calibrated(real_sets):
    """The saturating judge trains one-cycle runs of growing length while its validation split gains, and keeps the
    best: real vs real stays at chance (no gain: it stops after the first), blurred real is still caught."""
    real, other = real_sets
    saturating = dataclasses.replace(FAST, budgets=(6, 12, 24))  # its first run is the fixed FAST judge
    same = c2st(real, other, settings=saturating)
    assert abs(same["accuracy"] - 0.5) < 0.08 and same["epochs_to_plateau"] in (6, 12, 24)
    assert list(same["validation_curve"])[0] == "6"
    changed = c2st(real, blurred(other), settings=saturating)
    assert changed["accuracy"] > 0.75 and 0.5 < changed["validation_accuracy"] <= 1
    curve = list(changed["validation_curve"].values())
    # It went on exactly while a run gained min_gain over the best before it (the first always runs a second).
    gains = [curve[i + 1] - max(curve[: i + 1]) for i in range(len(curve) - 1)]
    assert len(curve) >= 2 and all(gain >= 0.01 for gain in gains[:-1])
    assert len(curve) == 3 or gains[-1] < 0.01
    assert "epochs_to_plateau" not in c2st(real, other, settings=FAST)


def test_several_c2st_judges_report_their_mean_and_each_verdict(real_sets):
    """judges=N runs N judges of consecutive seeds, each exactly the single judge of its seed, and reports their
    mean: one judge's figure hangs on its seed more than on its test size."""
    real, other = real_sets
    changed = blurred(other)
    single = [c2st(real, changed, settings=dataclasses.replace(FAST, seed=seed)) for seed in (3, 4)]
    both = c2st(real, changed, settings=dataclasses.replace(FAST, seed=3, judges=2))
    assert [judge["accuracy"] for judge in both["judges"]] == [verdict["accuracy"] for verdict in single]
    assert [judge["seed"] for judge in both["judges"]] == [3, 4] and both["settings"]["judges"] == 2
    assert both["accuracy"] == pytest.approx((single[0]["accuracy"] + single[1]["accuracy"]) / 2)
    assert both["judge_range"] == [min(v["accuracy"] for v in single), max(v["accuracy"] for v in single)]
    assert both["interval_95"][0] <= both["accuracy"] <= both["interval_95"][1] and both["p_value"] < 1e-6
    assert both["tested_images"] == single[0]["tested_images"]  # overlapping test halves are not pooled
    with pytest.raises(GanError, match="at least one judge"):
        c2st(real, other, settings=dataclasses.replace(FAST, judges=0))


def test_c2st_is_reproducible_and_takes_arrays(real_sets):
    real, other = real_sets
    as_array = other.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), as `generate` returns images
    first, second = c2st(real, blurred(other), settings=FAST), c2st(real, blurred(torch.from_numpy(
        as_array).permute(0, 3, 1, 2).contiguous()), settings=FAST)
    assert first["accuracy"] == second["accuracy"]


def test_c2st_refuses_too_few_images_or_mismatched_shapes(real_sets):
    real, _ = real_sets
    with pytest.raises(GanError, match=f"at least {C2ST_MIN_IMAGES} images"):
        c2st(real[:C2ST_MIN_IMAGES - 1], real[:C2ST_MIN_IMAGES - 1])
    with pytest.raises(GanError, match="images of one shape"):
        c2st(real, F.pad(real, (2, 2, 2, 2)))
    with pytest.raises(GanError, match="uint8"):
        c2st(real.float(), real)


def test_wilson_interval_and_p_value():
    low, high = wilson_interval(0.5, 1000)
    assert low < 0.5 < high and math.isclose(high - low, 2 * 1.96 * math.sqrt(0.25 / 1000), rel_tol=0.01)
    assert wilson_interval(1.0, 100)[1] == 1.0 and wilson_interval(0.0, 100)[0] == 0.0
    assert math.isclose(binomial_p_value(0.5, 1000), 0.5, abs_tol=0.02)
    assert binomial_p_value(0.6, 1000) < 1e-9 < binomial_p_value(0.52, 1000) < 0.15


@pytest.mark.parametrize("gain", [1.0, 1.1])
def test_the_output_layer_reaches_pure_white_and_black_only_with_a_gain(gain):
    generator = Generator(ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_gain=gain))
    x = torch.linspace(-6, 6, 1201)
    pixels = generator.to_pixels(x)
    assert pixels.min() >= -1 and pixels.max() <= 1
    saturated = (pixels == 1).float().mean() + (pixels == -1).float().mean()
    assert (saturated > 0.5) if gain > 1 else (saturated == 0)
    # Quantized to uint8 as every image leaves the package: plain tanh needs x > 3.1 for a 255, the gain x > 1.6.
    first_white = float(x[((pixels + 1) * 127.5).round() == 255].min())
    assert first_white < 1.6 if gain > 1 else first_white > 3.0
    # Between the clamps the layer is tanh scaled by the gain: smooth, with a gradient everywhere there.
    inside = (x.abs() < 1).nonzero().squeeze(1)
    assert torch.allclose(pixels[inside], gain * torch.tanh(x[inside]))


def test_a_white_gain_of_one_clamps_the_black_end_only():
    """MNIST's strokes peak below 255 while its background is exactly 0: a model may clamp the black end alone."""
    generator = Generator(ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_gain=1.1,
                                      white_gain=1.0))
    x = torch.linspace(-6, 6, 1201)
    pixels = generator.to_pixels(x)
    assert (pixels[x < -2] == -1).all() and (pixels < 1).all()
    negative = x < 0
    assert torch.allclose(pixels[~negative], torch.tanh(x[~negative]))
    assert torch.allclose(pixels[negative], (1.1 * torch.tanh(x[negative])).clamp(min=-1.0))
    with pytest.raises(GanError, match="white_gain"):
        ModelConfig(num_classes=3, white_gain=0.9)


def test_max_output_norm_makes_every_images_brightest_pixel_white():
    """Data whose every image was scaled to reach white (Fashion-MNIST: 94% hold a 255) can have a model that does."""
    torch.manual_seed(0)
    generator = Generator(ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_norm="max")).eval()
    with torch.no_grad():
        generator.out_conv.bias.fill_(-2.0)  # dark images: their brightest pixel is far from white before the norm
    images = generate(generator, [0, 1, 2] * 4, list(range(12)))
    assert (images.reshape(12, -1).max(1) == 255).all() and (images.reshape(12, -1).min(1) < 128).all()
    pixels = generator.to_pixels(torch.full((2, 1, 4, 4), -30.0))  # all black: stays black, no division blow-up
    assert torch.isfinite(pixels).all() and pixels.max() <= 1 and pixels.min() >= -1
    with pytest.raises(GanError, match="output_norm"):
        ModelConfig(num_classes=3, output_norm="mean")


def test_a_linear_white_end_saturates_only_the_brightest_pixels():
    """MNIST's digits reach 255 at about one pixel (strokes at 253-254): pushed to white, a tanh end clamps whole
    strokes to 255 while a linear one keeps them graded below the brightest pixel."""
    torch.manual_seed(0)
    counts = {}
    for norm in ("max", "max-linear"):
        generator = Generator(ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_norm=norm)).eval()
        with torch.no_grad():
            generator.out_conv.bias.fill_(4.0)  # far into tanh's plateau
        images = generate(generator, [0, 1, 2] * 4, list(range(12))).reshape(12, -1)
        assert (images.max(1) == 255).all()  # either way each image reaches white
        counts[norm] = float((images == 255).sum(1).mean())
    assert counts["max-linear"] < 3 and counts["max"] > 100
    pixels = generator.to_pixels(torch.full((2, 1, 4, 4), -30.0))  # all black: stays black, no division blow-up
    assert torch.isfinite(pixels).all() and pixels.max() <= 1 and pixels.min() >= -1
    with pytest.raises(GanError, match="white_gain has no meaning"):
        ModelConfig(num_classes=3, output_norm="max-linear", white_gain=1.0)


def test_a_white_dither_spreads_a_plateau_over_grey_levels_and_leaves_black_alone():
    """MNIST's stroke centres jitter over 252-255 with few pure whites; a saturated plateau is one value, 255 after
    the stretch. The dither (1.5 grey levels at the start) spreads it, keeps the background exactly black, and is a
    function of the seed: the same seed draws the same image at any truncation's scale of the noise."""
    config = ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_gain=1.1, white_gain=1.0,
                         output_norm="max", white_dither=1.5)
    torch.manual_seed(0)
    generator = Generator(config).eval()
    assert torch.allclose(generator.dither.strength * 127.5, torch.tensor([1.5]))
    with torch.no_grad():
        generator.out_conv.bias.fill_(4.0)  # far into tanh's plateau
        generator.out_conv.weight.zero_()
        generator.out_conv.weight[:, :, 1, 1] = 60.0  # a background: half the pixels black, half on the plateau
    classes, seeds = [0, 1, 2] * 4, list(range(12))
    images = generate(generator, classes, seeds).reshape(12, -1)
    with torch.no_grad():
        generator.dither.strength.zero_()
    plain = generate(generator, classes, seeds).reshape(12, -1)
    assert (plain == 255).sum(1).min() > 100  # without the dither: one value, all pure white
    bright = images[plain == 255]
    assert (images.max(1) == 255).all() and (images == 255).sum(1).mean() < 10
    assert len(np.unique(bright)) >= 5 and bright.min() >= 240
    assert np.array_equal(images[plain == 0], plain[plain == 0])  # black stays black
    with torch.no_grad():
        generator.dither.strength.fill_(1.5 / 127.5)
    assert np.array_equal(images, generate(generator, classes, seeds).reshape(12, -1))
    z = torch.randn(4, 16)
    assert torch.allclose(generator.dither(z), generator.dither(0.5 * z), atol=1e-6)
    with pytest.raises(GanError, match="white_dither"):
        ModelConfig(num_classes=3, output_norm="max-linear", white_dither=1.0)
    with pytest.raises(GanError, match="white_dither"):
        ModelConfig(num_classes=3, white_dither=-1.0)


def test_a_white_slope_keeps_a_plateau_rising_so_only_its_brightest_point_is_white():
    """Past tanh's knee every pixel of a saturating white end meets one value, 255 after the stretch: 20 pure whites
    a generated digit against the data's median of one. With a slope, x keeps counting there: the brightest pixel
    alone is white, the plateau sits a few levels below it in order of x, black stays black, and the gradient
    reaches saturated pixels again."""
    flat = ModelConfig(num_classes=3, output_gain=1.1, white_gain=1.0, output_norm="max")
    sloped = dataclasses.replace(flat, white_slope=2.0)
    x = torch.cat([torch.full((1, 1, 1, 8), -6.0), torch.linspace(4.0, 6.0, 8).view(1, 1, 1, 8)], dim=3)
    x.requires_grad_(True)
    assert (to_uint8(output_layer(x, flat))[0, 0, 8:, 0] == 255).all()  # the plateau: one value
    pixels = output_layer(x, sloped)
    levels = to_uint8(pixels)[0, 0, :, 0].astype(int)
    assert (levels[:8] == 0).all()  # black stays black
    assert levels[-1] == 255 and (levels[8:-1] < 255).all()
    assert (np.diff(levels[8:]) >= 0).all() and 250 <= levels[8] <= 252  # ~2 levels per unit of x below the top
    pixels[0, 0, 0, 9].backward()
    assert x.grad[0, 0, 0, 9] > 0  # a saturated pixel learns again
    with pytest.raises(GanError, match="white_slope needs output_norm max"):
        ModelConfig(num_classes=3, white_slope=2.0)
    with pytest.raises(GanError, match="white_slope"):
        ModelConfig(num_classes=3, output_norm="max", white_slope=-1.0)


def test_a_white_plateau_sits_at_a_level_drawn_per_image_below_a_few_pure_whites():
    """MNIST's strokes are a flat plateau 0-4 levels under the digit's brightest pixel, with a few pixels at it; a
    saturating white end puts the whole plateau at 255. With white_plateau, each image's level and peak count are
    drawn from the data's shares by its z (the same at any truncation); all but the peaks are held at the level;
    black stays black."""
    shares, peak_shares = [0.1, 0.3, 0.4, 0.2], [0.5, 0.0, 0.5]  # 1 or 3 peaks
    config = ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_gain=1.1, white_gain=1.0,
                         output_norm="max", white_plateau=shares, white_peaks=peak_shares)
    torch.manual_seed(0)
    generator = Generator(config).eval()
    with torch.no_grad():
        generator.out_conv.bias.fill_(4.0)
        generator.out_conv.weight.zero_()
        generator.out_conv.weight[:, :, 1, 1] = 60.0  # half the pixels black, half far into tanh's plateau
    seeds = list(range(2000))
    classes = [seed % 3 for seed in seeds]
    images = generate(generator, classes, seeds).reshape(len(seeds), -1).astype(int)
    whites = (images == 255).sum(1)
    plateau_module, generator.plateau = generator.plateau, None
    plain = generate(generator, classes, seeds).reshape(len(seeds), -1).astype(int)
    generator.plateau = plateau_module
    assert (images.max(1) == 255).all() and np.array_equal(images[plain < 250], plain[plain < 250])  # only whites
    plateau = np.array([np.bincount(row[(row > 200) & (row < 255)], minlength=256).argmax() if (row < 255).any()
                        and (row == 255).sum() <= 3 else 255 for row in images])
    offsets = 255 - plateau
    assert set(offsets) <= {0, 1, 2, 3}
    assert np.abs(np.bincount(offsets, minlength=4) / len(seeds) - shares).max() < 0.04
    below = whites[offsets > 0]
    assert set(below) == {1, 3} and abs((below == 1).mean() - 0.5) < 0.05  # the peaks alone stay white
    assert (images[offsets > 0] >= 250).sum(1).min() > 100  # ... and the rest of the plateau is held at its level
    dark = generate(generator, classes[:50], seeds[:50], 0.5).reshape(50, -1).astype(int)
    assert ((dark == 0) == (images[:50] == 0)).all()
    assert np.array_equal((dark == 255).sum(1), whites[:50])  # the same level and peaks at any truncation
    with pytest.raises(GanError, match="white_plateau needs output_norm max"):
        ModelConfig(num_classes=3, white_plateau=shares, white_peaks=peak_shares)
    with pytest.raises(GanError, match="non-negative shares"):
        ModelConfig(num_classes=3, output_norm="max", white_plateau=[0.5, -0.1], white_peaks=peak_shares)
    with pytest.raises(GanError, match="come together"):
        ModelConfig(num_classes=3, output_norm="max", white_plateau=shares)


def test_white_plateau_shares_measure_how_far_below_its_brightest_an_image_plateaus():
    images = torch.zeros(4, 1, 6, 6, dtype=torch.uint8)
    images[:, 0, 1:5, 1:5] = torch.tensor([253, 253, 255, 254]).view(4, 1, 1)  # the plateaus
    images[:, 0, 0, 0] = 255  # one brighter pixel each
    images[1, 0, 0, 1] = 255  # two in the second
    images[2, 0, 0, 0] = 0
    plateau, peaks = white_plateau_shares(images)
    assert plateau == [0.25, 0.25, 0.5]  # offsets 2, 2, 0 (no brighter pixel), 1
    assert peaks == [round(2 / 3, 4), round(1 / 3, 4)]  # of the three below their brightest: 1, 2 and 1 peaks
    assert white_plateau_shares(torch.zeros(2, 1, 4, 4, dtype=torch.uint8)) == ([1.0], [1.0])  # black: no plateau


def test_a_trained_layer_saturates_images_when_pushed():
    """Images of a model whose last layer is pushed towards white reach 255 exactly, as real garments do."""
    torch.manual_seed(0)
    generator = Generator(ModelConfig(num_classes=3, g_width=8, d_width=8, latent_dim=16, output_gain=1.1)).eval()
    with torch.no_grad():
        generator.out_conv.bias.fill_(3.0)
    images = generate(generator, [0, 1, 2], [0, 1, 2])
    assert (images.reshape(3, -1).max(1) == 255).all()


def test_selection_score_ranks_by_c2st_and_fd():
    def scores(accuracy, ratio):
        return Scores(c2st={"accuracy": accuracy}, fd_ratio=ratio)
    assert selection_score(scores(0.5, 1.0)) == 0.0
    assert selection_score(scores(0.6, 5.0)) < selection_score(scores(0.7, 5.0)) < selection_score(scores(0.7, 20.0))
    # Without a C2ST (tiny data, older metrics) FD alone ranks; without an FD ratio nothing can.
    assert selection_score(Scores(fd_ratio=2.0)) == 0.5 < selection_score(Scores(fd_ratio=4.0))
    assert selection_score(Scores(c2st={"accuracy": 0.6})) == math.inf


def test_pixel_tells_find_a_missing_white_and_pass_a_faithful_generator():
    real = patterns(300, seed=3).permute(0, 2, 3, 1).numpy()
    labels = np.arange(300) % 3
    stats = pixel_statistics(real[:2])
    assert set(stats) >= {"max", "min", "mean", "white_pixels", "black_pixels", "bin_0_31", "bin_224_255"}

    class Replayer(torch.nn.Module):
        """A 'generator' that returns fresh pattern images of the asked class, optionally capped below white."""

        def __init__(self, cap: int):
            super().__init__()
            self.model_config = ModelConfig(num_classes=3, latent_dim=4)
            self.cap, self.weight = cap, torch.nn.Parameter(torch.zeros(1))
            self.rng = np.random.default_rng(4)

        def forward(self, z, labels):
            images = np.stack([pattern(CLASSES[int(c)], self.rng) for c in labels])[:, None]
            return torch.from_numpy(np.minimum(images, self.cap)).float() / 127.5 - 1

    faithful = tell_accuracies(real, labels, Replayer(cap=255), rounds=400)
    assert max(max(v.values()) for v in faithful.values()) < 0.6
    capped = tell_accuracies(real, labels, Replayer(cap=240), rounds=400)
    assert capped["max"]["single"] > 0.9 and capped["max"]["pair"] > 0.9


def test_best_rule_finds_the_threshold_and_direction():
    values = np.array([1, 2, 3, 10, 11, 12])
    assert best_rule(values, np.array([0, 0, 0, 1, 1, 1], bool)) == (6.5, 1)
    assert best_rule(values, np.array([1, 1, 1, 0, 0, 0], bool)) == (6.5, -1)


@pytest.mark.parametrize("flags,message", [(["--output-gain", "0.9"], "--output-gain must be in [1, 2]"),
                                           (["--output-gain", "3"], "--output-gain must be in [1, 2]"),
                                           (["--c2st-per-class", "0"], "--c2st-per-class must be at least 1")])
def test_train_flags_of_the_output_range_and_the_two_sample_test_are_checked(flags, message):
    from train import build_parser, config_from_args

    args = build_parser().parse_args(["--dataset", "d", "--output-dir", "o", *flags])
    with pytest.raises(GanError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_from_args(args)
    defaults = config_from_args(build_parser().parse_args(["--dataset", "d", "--output-dir", "o"]))
    assert defaults.output_gain == 1.1 and defaults.c2st_per_class == 500


def test_models_of_earlier_versions_keep_their_plain_tanh_output():
    """A config.json without output_gain (written before it existed) loads as gain 1: the same pixels as before."""
    config = ModelConfig.from_dict({"num_classes": 3, "g_width": 8, "d_width": 8, "latent_dim": 16})
    assert config.output_gain == 1.0
    with pytest.raises(GanError, match="output_gain"):
        ModelConfig(num_classes=3, output_gain=0.5)


def test_the_machine_judge_states_a_models_two_sample_test():
    from types import SimpleNamespace

    from gan.serve.demo import machine_judge

    metrics = {"c2st": {"accuracy": 0.8125, "interval_95": [0.8, 0.825], "generated_taken_for_real": 0.21}}
    model = SimpleNamespace(source="models/x", metrics=metrics)
    line = machine_judge(model)
    assert "81.2%" in line and "80.0%-82.5%" in line and "21.0%" in line and "50%" in line
    assert "No machine two-sample test" in machine_judge(SimpleNamespace(source="m", metrics=None))
    judges = [{"seed": seed, "accuracy": 0.8} for seed in range(3)]
    assert "3 fresh classifiers (different seeds)" in machine_judge(
        SimpleNamespace(source="m", metrics={"c2st": {**metrics["c2st"], "judges": judges}}))


def test_a_kept_best_with_another_c2st_size_does_not_block_a_resumed_run(tmp_path):
    import json

    from gan.train.monitor import BEST_FOLDER, best_score_on_disk

    (tmp_path / BEST_FOLDER).mkdir()
    scores = {"fd_ratio": 2.0, "c2st": {"accuracy": 0.6, "images_per_set": 2000}}
    (tmp_path / BEST_FOLDER / "metrics.json").write_text(json.dumps(scores))
    assert best_score_on_disk(tmp_path, 2000) == selection_score(Scores.from_dict(scores))
    # A classifier trained on 2,000 images a side finds less than one on 5,000: such scores do not compare.
    assert best_score_on_disk(tmp_path, 5000) == math.inf
    assert best_score_on_disk(tmp_path / "elsewhere", 2000) == math.inf
    (tmp_path / BEST_FOLDER / "metrics.json").write_text("[1, 2]")
    assert best_score_on_disk(tmp_path, 2000) == math.inf
