"""The training recipe's parts: losses, DiffAugment, EMA and batch-norm recalibration."""

import pytest
import torch

from gan.config import parse_policy
from gan.train.augment import cutout, diff_augment, translation
from gan.config import ModelConfig
from gan.train.ema import EMA, recalibrate_batch_norm
from gan.errors import GanError
from gan.train.losses import discriminator_loss, generator_loss, gradient_penalty
from gan.models import Discriminator, Generator


def test_hinge_and_nonsaturating_losses_match_hand_computed_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5)/2 + (0 + 1)/2
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.75)
    assert generator_loss(fake, "hinge").item() == pytest.approx(1.0)
    softplus = lambda x: torch.log1p(torch.exp(torch.tensor(x))).item()  # noqa: E731
    expected_d = (softplus(-2.0) + softplus(-0.5)) / 2 + (softplus(-2.0) + softplus(0.0)) / 2
    assert discriminator_loss(real, fake, "nonsaturating").item() == pytest.approx(expected_d, rel=1e-6)
    assert generator_loss(fake, "nonsaturating").item() == pytest.approx((softplus(2.0) + softplus(0.0)) / 2)


def test_relativistic_pairing_loss_compares_each_real_image_with_its_fake():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    softplus = lambda x: torch.log1p(torch.exp(torch.tensor(x))).item()  # noqa: E731
    # D: softplus(-(real_i - fake_i)); G: softplus(-(fake_i - real_i)), pairs (2, -2) and (0.5, 0)
    assert discriminator_loss(real, fake, "rpgan").item() == pytest.approx((softplus(-4.0) + softplus(-0.5)) / 2)
    assert generator_loss(fake, "rpgan", real).item() == pytest.approx((softplus(4.0) + softplus(0.5)) / 2)
    # Shifting every score by the same amount changes nothing: only differences count.
    assert discriminator_loss(real + 3, fake + 3, "rpgan").item() == pytest.approx(
        discriminator_loss(real, fake, "rpgan").item())
    with pytest.raises(ValueError, match="real images"):
        generator_loss(fake, "rpgan")


def test_gradient_penalty_is_the_squared_input_gradient_of_each_image():
    inputs = torch.randn(3, 2, 4, 4, requires_grad=True)
    weights = torch.randn(2, 4, 4)
    scale = torch.tensor([1.0, 2.0, 3.0])
    projection = (inputs * weights).sum(dim=(1, 2, 3))  # s_i
    logits = scale * projection.square() / 2  # d logit_i / d x_i = k_i s_i w
    penalty = gradient_penalty(logits, inputs)
    expected = weights.square().sum() * (scale * projection).square()
    assert torch.allclose(penalty, expected, rtol=1e-5)
    penalty.sum().backward()  # differentiable: the discriminator is trained on it
    assert inputs.grad is not None


def test_a_discriminator_without_spectral_norm_has_plain_weights():
    config = ModelConfig(image_size=32, channels=3, num_classes=3, class_names=list("abc"), d_width=8)
    plain, spectral = Discriminator(ModelConfig(**{**config.to_dict(), "d_norm": "none"})), Discriminator(config)
    assert not any("parametrizations" in name for name, _ in plain.named_parameters())
    assert any("parametrizations" in name for name, _ in spectral.named_parameters())
    with pytest.raises(GanError, match="d_norm"):
        ModelConfig(d_norm="batch")


def test_policy_parsing():
    assert parse_policy("color, translation,cutout") == ("color", "translation", "cutout")
    assert parse_policy("none") == parse_policy("") == ()
    with pytest.raises(GanError, match="unknown DiffAugment op"):
        parse_policy("color,flip")


def test_augmentations_keep_shape_and_pass_gradients():
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_()
    y = diff_augment(x, parse_policy("color,translation,cutout"))
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_no_policy_is_the_identity():
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(diff_augment(x, ()), x)


def test_translation_moves_content_by_whole_pixels():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1.0
    shifted = translation(x)
    positions = shifted.flatten(1).argmax(dim=1)
    rows, cols = positions // 16, positions % 16
    assert (shifted.flatten(1).sum(dim=1) == 1).all()  # the pixel moved, it did not blur
    assert ((rows - 8).abs() <= 2).all() and ((cols - 8).abs() <= 2).all()
    assert len(set(positions.tolist())) > 5


def test_cutout_zeroes_a_square_of_half_the_side():
    torch.manual_seed(0)
    out = cutout(torch.ones(32, 1, 16, 16))
    zeroed = (out == 0).flatten(1).sum(dim=1)
    assert (zeroed <= 64).all() and (zeroed > 0).all()  # at most 8x8, clipped at the borders


def test_ema_copies_before_start_then_averages():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, decay=0.9, start=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=0)
    assert torch.equal(ema.model.weight, model.weight)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model, step=2)
    assert torch.allclose(ema.model.weight, torch.full((2, 2), 1.1))
    assert not ema.model.weight.requires_grad


def test_ema_state_dict_round_trip():
    a, b = EMA(torch.nn.Linear(3, 1)), EMA(torch.nn.Linear(3, 1))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.model.weight, b.model.weight)


def test_batch_norm_recalibration_is_deterministic_and_matches_the_weights():
    generator = Generator(ModelConfig(g_width=8, latent_dim=16))
    first = recalibrate_batch_norm(generator).out_norm.running_mean.clone()
    assert not generator.training
    twin = Generator(ModelConfig(g_width=8, latent_dim=16))  # a fresh copy: recalibrated from scratch, not skipped
    twin.load_state_dict(generator.state_dict())
    twin.out_norm.reset_running_stats()
    assert torch.equal(recalibrate_batch_norm(twin).out_norm.running_mean, first)  # a function of the weights
    assert generator.out_norm.momentum == 0.1  # the training momentum is restored
    assert first.abs().sum() > 0  # statistics now describe this generator, not the defaults


def test_recalibration_is_skipped_for_unchanged_weights_and_redone_after_an_ema_update():
    live, averaged = Generator(ModelConfig(g_width=8, latent_dim=16)), Generator(ModelConfig(g_width=8, latent_dim=16))
    ema = EMA(averaged, decay=0.5, start=0)
    calls = []
    hook = ema.model.out_norm.register_forward_hook(lambda *args: calls.append(1))
    recalibrate_batch_norm(ema.model)
    passes = len(calls)
    recalibrate_batch_norm(ema.model)
    assert passes == 40 and len(calls) == passes  # nothing changed since: no forward pass at all
    ema.update(live, step=1)  # the averaged weights move in place
    before = ema.model.out_norm.running_mean.clone()
    recalibrate_batch_norm(ema.model)
    assert len(calls) == 2 * passes and not torch.equal(ema.model.out_norm.running_mean, before)
    hook.remove()


def test_class_shares_are_empty_for_balanced_data():
    from gan.data import class_shares

    assert class_shares(torch.tensor([0, 1, 2] * 5), 3) == []
    assert class_shares(torch.tensor([0, 0, 0, 1]), 3) == [0.75, 0.25, 0.0]
    with pytest.raises(GanError, match="class_frequencies"):
        ModelConfig(num_classes=3, class_names=list("abc"), class_frequencies=[0.5, 0.5])


def test_each_reader_of_the_discriminator_learns_on_its_own_loss():
    """A histogram head that already separates real from fake must not silence the network beside it: in one shared
    hinge its scores met every margin and the network got no gradient (MNIST lost its shapes in 1,000 steps)."""
    from accelerate import Accelerator

    from gan.train.steps import StepModels, d_step

    torch.manual_seed(0)
    config = ModelConfig(g_width=8, d_width=8, latent_dim=16, num_classes=3, class_names=list("abc"), d_histogram=True)
    generator, discriminator = Generator(config), Discriminator(config)
    half = 4
    # The head scores the real half +5 and the fake half -5: far past both margins.
    discriminator.histogram.forward = lambda images, labels: torch.cat([torch.full((half,), 5.0),
                                                                       torch.full((half,), -5.0)])
    models = StepModels(Accelerator(cpu=True), generator, discriminator,
                        torch.optim.Adam(generator.parameters()), torch.optim.Adam(discriminator.parameters()),
                        [], "hinge", latent_dim=16)
    real = torch.randint(0, 256, (half, 1, 28, 28), dtype=torch.uint8)
    loss = d_step(models, real, torch.arange(half) % 3)
    assert loss.item() > 0  # the network's own hinge still has margins to meet
    trunk_grad = discriminator.blocks[0].conv1.parametrizations.weight.original.grad
    assert trunk_grad is not None and trunk_grad.abs().sum() > 0
