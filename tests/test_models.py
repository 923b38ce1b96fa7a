"""Generator and discriminator: shapes, ranges, conditioning, config validation, safetensors round trips."""

import json

import pytest
import torch

from gan.config import ModelConfig
from gan.errors import GanError
from gan.model_files import save_model
from gan.models import load_discriminator, load_generator
from gan.models import HISTOGRAM_LEVELS, Discriminator, Generator, HistogramHead, pixel_histogram
from gan.models import NOISE_GAIN, without_spectral_norm
from gan.sampling import generate
from gan.version import CONFIG_FORMAT


@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_and_ranges_for_every_supported_size(size, channels):
    config = ModelConfig(image_size=size, channels=channels, num_classes=5, g_width=8, d_width=8, latent_dim=16)
    generator, discriminator = Generator(config), Discriminator(config)
    labels = torch.tensor([0, 4, 2])
    images = generator(torch.randn(3, 16), labels)
    assert images.shape == (3, channels, size, size)
    assert images.min() >= -1 and images.max() <= 1
    scores = discriminator(images, labels)
    assert scores.shape == (3,) and torch.isfinite(scores).all()


def test_generator_output_depends_on_class():
    generator = Generator(ModelConfig(g_width=8, latent_dim=16)).eval()
    # Give the class-conditional gains something to say; they start at identity.
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    z = torch.randn(1, 16).repeat(2, 1)
    a, b = generator(z, torch.tensor([0, 1]))
    assert not torch.allclose(a, b)


def test_class_mixture_of_one_hot_equals_class_index():
    generator = Generator(ModelConfig(g_width=8, latent_dim=16)).eval()
    z = torch.randn(2, 16)
    by_index = generator(z, torch.tensor([3, 7]))
    by_mixture = generator(z, torch.eye(10)[[3, 7]])
    assert torch.equal(by_index, by_mixture)


def test_projection_discriminator_uses_the_class():
    discriminator = Discriminator(ModelConfig(d_width=8)).eval()
    image = torch.rand(1, 1, 28, 28).repeat(2, 1, 1, 1)
    scores = discriminator(image, torch.tensor([0, 1]))
    assert scores[0] != scores[1]


def test_dropping_spectral_norm_keeps_what_the_discriminator_computes():
    spectral = Discriminator(ModelConfig(d_width=8, num_classes=4))
    images, labels = torch.rand(6, 1, 28, 28) * 2 - 1, torch.arange(6) % 4
    spectral(images, labels)  # a training-mode pass moves the power iteration, as training does
    spectral.eval()
    plain = without_spectral_norm(spectral).eval()
    assert plain.model_config.d_norm == "none"
    assert not any("parametrizations" in name for name in plain.state_dict())
    assert torch.allclose(plain(images, labels), spectral(images, labels), atol=1e-5)
    assert torch.allclose(spectral(images, labels), spectral(images, labels))  # the source still works


def test_pixel_histogram_counts_grey_levels_and_splits_those_between_bins():
    grey = torch.tensor([[0.0, 0.0, 255.0, 254.4], [100.0, 252.0, 255.0, 255.0]])  # two 1x4 images, 0-255
    counts = torch.expm1(pixel_histogram((grey / 127.5 - 1.0).view(2, 1, 1, 4)))  # (2, K)
    at = {level: i for i, level in enumerate(HISTOGRAM_LEVELS)}
    assert counts.sum(dim=1).tolist() == pytest.approx([4.0, 4.0], abs=1e-4)  # every pixel counted once
    assert counts[0, at[0]] == pytest.approx(2.0) and counts[0, at[254]] == pytest.approx(0.6, abs=1e-4)
    assert counts[0, at[255]] == pytest.approx(1.4, abs=1e-4)  # 255 and 0.4 of 254.4
    assert counts[1, at[96]] == pytest.approx(0.875) and counts[1, at[128]] == pytest.approx(0.125)
    assert counts[1, at[251]] == pytest.approx(0.5) and counts[1, at[255]] == pytest.approx(2.0)
    rgb = pixel_histogram(torch.zeros(3, 3, 8, 8))
    assert rgb.shape == (3, 3 * len(HISTOGRAM_LEVELS))  # one histogram per channel


@pytest.mark.parametrize("size,channels", [(28, 1), (64, 3)])
def test_a_discriminator_gains_its_heads_without_changing_its_scores(size, channels):
    config = ModelConfig(image_size=size, channels=channels, d_width=8, num_classes=4)
    plain = Discriminator(config).eval()
    heads = {"d_histogram": True, "d_patch": True, "d_texture": True}
    with_heads = Discriminator(ModelConfig(**{**config.to_dict(), **heads})).eval()
    missing = with_heads.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert {key.split(".")[0] for key in missing} == {"histogram", "patch", "texture"}
    images, labels = torch.rand(5, channels, size, size) * 2 - 1, torch.arange(5) % 4
    assert torch.equal(with_heads(images, labels), plain(images, labels))
    readers = with_heads(images, labels, per_reader=True)  # the network, the histogram, patch and texture heads
    assert readers.shape == (5, 4) and torch.equal(readers.sum(dim=1), plain(images, labels))


def test_the_heads_keep_the_parameter_order_that_saved_optimizer_states_index():
    """Adam's saved state is a list in parameter order: runs checkpointed with a patch head (its convolutions first,
    then the score) must resume, so refactors may not move the score's parameters ahead of the features'."""
    config = ModelConfig(d_width=8, num_classes=4, d_histogram=True, d_patch=True, d_texture=True)
    names = [name for name, _ in Discriminator(config).named_parameters()]
    heads = [name.split(".")[:2] for name in names if name.startswith(("histogram.", "patch.", "texture."))]
    texture = [part for head, part in heads if head == "texture"]
    assert [head for head, _ in heads] == (["histogram"] * 3 + ["patch"] * (len(heads) - 3 - len(texture))
                                           + ["texture"] * len(texture))  # DISCRIMINATOR_HEADS order
    assert [part for _, part in heads[:3]] == ["linear", "linear", "embed"]
    patch = [part for head, part in heads if head == "patch"]
    assert patch[-3:] == ["linear", "linear", "embed"] and set(patch[:-3]) == {"conv1", "conv2"}
    assert texture[-3:] == ["linear", "linear", "embed"] and set(texture[:-3]) == {"convs"}


def test_noise_inputs_draw_detail_from_the_seed_and_their_strengths_learn():
    """StyleGAN's noise inputs at full resolution: a fixed function of z (a seed keeps its image, a truncation its
    noise), silent at zero strength, and their strengths get a gradient; a model without them loads into one with."""
    config = ModelConfig(num_classes=3, g_width=8, latent_dim=16, g_noise=0.5)
    torch.manual_seed(0)
    generator = Generator(config).eval()
    plain = Generator(ModelConfig(**{**config.to_dict(), "g_noise": 0.0})).eval()
    missing = generator.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert {key.split(".")[0] for key in missing} == {"noise"}
    z, labels = torch.randn(6, 16), torch.arange(6) % 3
    with torch.no_grad():
        noisy, clean = generator(z, labels), plain(z, labels)
        assert torch.equal(noisy, generator(z, labels)) and (noisy - clean).abs().mean() > 0.01
        maps = generator.noise[0](z) / (generator.noise[0].strength * NOISE_GAIN).view(1, -1, 1, 1)
        assert maps.std().item() == pytest.approx(1.0, abs=0.1)  # unit noise per pixel
        assert torch.allclose(generator.noise[1](z), generator.noise[1](0.5 * z), atol=1e-6)
        assert not torch.allclose(generator.noise[0](z)[:, :1], generator.noise[1](z)[:, :1])  # two maps
        for noise in generator.noise:
            noise.strength.zero_()
        assert torch.allclose(generator(z, labels), clean, atol=1e-6)
        for noise in generator.noise:
            noise.strength.fill_(0.005)
    generator.train()(z, labels).square().mean().backward()
    assert all(noise.strength.grad.abs().sum() > 0 for noise in generator.noise)
    with pytest.raises(GanError, match="g_noise"):
        ModelConfig(num_classes=3, g_noise=-0.1)

def test_the_histogram_head_learns_a_surplus_of_pure_whites_and_teaches_the_generator_to_drop_it():
    """Real digits hold a few 255s among 252-254s; fakes a plateau of 255s. Trained as the discriminator is (hinge,
    Adam at the recipe's rate), the head tells them apart, and its gradient pulls the fakes' whites down."""
    torch.manual_seed(0)

    def images(whites: int, near_whites: int, count: int) -> torch.Tensor:
        grey = torch.zeros(count, 1, 28, 28)
        flat = grey.view(count, -1)
        flat[:, :near_whites] = 253.0
        flat[:, near_whites:near_whites + whites] = 255.0
        return grey / 127.5 - 1.0

    real, fake = images(whites=5, near_whites=30, count=32), images(whites=25, near_whites=10, count=32)
    labels = torch.zeros(32, dtype=torch.long)
    head = HistogramHead(channels=1, num_classes=10)
    assert head(fake, labels).abs().max() == 0  # silent at the start
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-4, betas=(0.0, 0.9))
    for _ in range(300):
        loss = torch.relu(1 - head(real, labels)).mean() + torch.relu(1 + head(fake, labels)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert head(real, labels).min() > 0.5 and head(fake, labels).max() < -0.5
    fake.requires_grad_(True)
    (-head(fake, labels)).mean().backward()  # the hinge generator loss
    assert (fake.grad.view(32, -1)[:, 10:35] > 0).all()  # descent lowers every pure white (pixels 10-34)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(image_size=30), "image size 30 is not supported"),
        (dict(channels=2), "channels must be 1"),
        (dict(num_classes=1, class_names=["a"]), "at least 2 classes"),
        (dict(num_classes=3, class_names=["a", "b"]), "2 class names given for 3 classes"),
        (dict(default_truncation=0.0), "default_truncation"),
    ],
)
def test_config_rejects_what_cannot_be_built(kwargs, message):
    with pytest.raises(GanError, match=message):
        ModelConfig(**kwargs)


def test_config_json_round_trip_carries_a_format_version(tmp_path):
    config = ModelConfig(image_size=32, channels=3, num_classes=3, class_names=["cat", "dog", "fox"], g_width=8)
    config.save(tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["format_version"] == CONFIG_FORMAT
    assert ModelConfig.load(tmp_path / "config.json") == config
    old = {k: v for k, v in config.to_dict().items() if k != "output_gain"}  # as versions before 0.2 wrote it
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert ModelConfig.load(tmp_path / "old.json") == config


def test_config_of_a_newer_minor_format_loads_without_its_new_fields_and_says_so(tmp_path):
    config = ModelConfig(num_classes=3, g_width=8)
    newer = {"format_version": "1.99", **config.to_dict(), "mystery": 1, "another": [2]}
    (tmp_path / "config.json").write_text(json.dumps(newer))
    with pytest.warns(UserWarning, match=r"ignoring fields \['another', 'mystery'\].*newer version"):
        assert ModelConfig.load(tmp_path / "config.json") == config


@pytest.mark.parametrize("version, message", [("2.0", "config format 2.0, newer than"), ("x", "unreadable format")])
def test_config_of_a_newer_major_format_is_refused_with_what_to_do(tmp_path, version, message):
    (tmp_path / "config.json").write_text(json.dumps({"format_version": version, **ModelConfig().to_dict()}))
    with pytest.raises(GanError, match=message) as error:
        ModelConfig.load(tmp_path / "config.json")
    assert "config.json" in str(error.value) and ("upgrade" in str(error.value) or version == "x")


def tiny_models():
    config = ModelConfig(num_classes=3, class_names=["a", "b", "c"], g_width=8, d_width=8, latent_dim=16)
    generator, discriminator = Generator(config), Discriminator(config)
    generator(torch.randn(8, 16), torch.arange(8) % 3)  # move the batch-norm statistics off their defaults
    return generator.eval(), discriminator.eval()


def test_save_load_round_trip_gives_identical_images_and_scores(tmp_path):
    generator, discriminator = tiny_models()
    save_model(generator, tmp_path)
    save_model(discriminator, tmp_path / "discriminator")
    before = generate(generator, [0, 1, 2], [5, 6, 7], 0.8)
    loaded = load_generator(tmp_path)
    assert (generate(loaded, [0, 1, 2], [5, 6, 7], 0.8) == before).all()
    images = torch.rand(2, 1, 28, 28) * 2 - 1
    labels = torch.tensor([0, 2])
    assert torch.equal(load_discriminator(tmp_path)(images, labels), discriminator(images, labels))


def test_loading_is_strict_and_errors_are_clear(tmp_path):
    generator, _ = tiny_models()
    save_model(generator, tmp_path / "good")
    with pytest.raises(GanError, match="does not exist"):
        load_generator(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GanError, match="holds no model.safetensors"):
        load_generator(tmp_path / "empty")
    # A config that does not match the weights.
    mismatched = tmp_path / "mismatched"
    save_model(generator, mismatched)
    ModelConfig(num_classes=3, class_names=["a", "b", "c"], g_width=16, latent_dim=16).save(mismatched / "config.json")
    with pytest.raises(GanError, match="do not match their config.json"):
        load_generator(mismatched)
    # A weights file that is not safetensors (for instance a pickle renamed).
    pickled = tmp_path / "pickled"
    save_model(generator, pickled)
    torch.save(generator.state_dict(), pickled / "model.safetensors")
    with pytest.raises(GanError, match="not a readable safetensors file"):
        load_generator(pickled)
