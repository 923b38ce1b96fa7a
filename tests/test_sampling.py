"""Images addressed by (class, seed, psi): determinism, truncation, grids, interpolation, bad input."""

import numpy as np
import pytest
import torch

from gan.config import ModelConfig
from gan.errors import GanError
from gan.models import Generator
from gan.sampling import (
    TRUNCATION_BOUND, class_grid, generate, image_grid, interpolate, latent_from_seed, resolve_class, slerp,
)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(ModelConfig(num_classes=3, class_names=["cat", "dog", "fox"], g_width=8, latent_dim=16)).eval()


def test_seed_gives_the_same_noise_on_every_machine():
    # NumPy's legacy RandomState stream is frozen: these are its first normals for seed 0.
    z = latent_from_seed(0, 3)
    assert np.allclose(z.numpy(), [1.7640524, 0.4001572, 0.978738], atol=1e-6)


def test_truncation_scales_and_bounds_the_noise():
    z = latent_from_seed(123, 4096)
    assert z.abs().max() <= TRUNCATION_BOUND
    assert torch.allclose(latent_from_seed(123, 4096, truncation=0.5), z * 0.5)
    assert 0.9 < z.std() < 1.1  # psi = 1 is the model's own noise distribution


def test_same_class_seed_and_psi_give_the_same_image(generator):
    a = generate(generator, [0, 2, 1], [11, 12, 13], 0.7)
    b = generate(generator, [0, 2, 1], [11, 12, 13], 0.7)
    assert a.shape == (3, 28, 28, 1) and a.dtype == np.uint8
    assert (a == b).all()
    # An image does not depend on the others in its batch.
    alone = generate(generator, [2], [12], 0.7)
    assert np.abs(alone[0].astype(int) - a[1].astype(int)).max() <= 1
    assert not (generate(generator, [0], [11], 0.5) == a[:1]).all()


def test_generate_leaves_the_training_mode_as_it_was(generator):
    generator.train()
    generate(generator, [0], [1])
    assert generator.training
    generator.eval()


def test_class_grid_has_one_row_per_class(generator):
    grid = class_grid(generator, seeds=range(4))
    assert grid.shape == (3 * 30 + 2, 4 * 30 + 2, 1)
    first_dog = generate(generator, [1], [0])[0]
    assert (grid[32:60, 2:30] == first_dog).all()


def test_image_grid_pads_a_ragged_last_row():
    images = np.full((5, 2, 2, 3), 200, dtype=np.uint8)
    grid = image_grid(images, rows=2, padding=1)
    assert grid.shape == (7, 10, 3)
    assert grid[4:6, 7:9].max() == 0  # the sixth cell is empty


def test_interpolation_starts_and_ends_on_the_endpoint_images(generator):
    frames = interpolate(generator, (0, 5), (2, 9), steps=6, mode="slerp", truncation=0.9)
    assert frames.shape == (6, 28, 28, 1)
    assert (frames[0] == generate(generator, [0], [5], 0.9)[0]).all()
    assert (frames[-1] == generate(generator, [2], [9], 0.9)[0]).all()
    lerped = interpolate(generator, (0, 5), (2, 9), steps=6, mode="lerp", truncation=0.9)
    assert not (lerped[2] == frames[2]).all()


def test_slerp_keeps_the_norm_between_equal_norm_vectors():
    z0, z1 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)


def test_class_names_and_indices_resolve():
    names = ["T-shirt/top", "Trouser", "Bag"]
    assert resolve_class("trouser", names) == 1
    assert resolve_class("2", names) == 2
    assert resolve_class(0, names) == 0
    with pytest.raises(GanError, match="unknown class 'hat'"):
        resolve_class("hat", names)
    with pytest.raises(GanError, match="out of range"):
        resolve_class(3, names)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "7", None, True])
def test_bad_seeds_are_rejected(generator, seed):
    with pytest.raises(GanError, match="seed"):
        generate(generator, [0], [seed])


@pytest.mark.parametrize("psi", [0, -0.5, 1.01, "abc", float("nan")])
def test_bad_truncation_is_rejected(generator, psi):
    with pytest.raises(GanError, match="truncation"):
        generate(generator, [0], [1], psi)


def test_bad_classes_and_steps_are_rejected(generator):
    with pytest.raises(GanError, match="class labels must lie"):
        generate(generator, [3], [1])
    with pytest.raises(GanError, match="one class per seed"):
        generate(generator, [0, 1], [1])
    with pytest.raises(GanError, match="steps"):
        interpolate(generator, (0, 1), (1, 2), steps=1)
    with pytest.raises(GanError, match="slerp"):
        interpolate(generator, (0, 1), (1, 2), steps=4, mode="cubic")
