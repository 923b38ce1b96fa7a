"""The serving path: the inference-optimised generator draws the eager model's pixels, and the batcher gives every
caller exactly its own images while sharing forward passes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.serve.batching import BatchedGenerator
from gan.config import ModelConfig
from gan.errors import GanError
from gan.models import load_generator
from gan.inference import can_optimize, optimize, optimized, upsampled_conv_kernel
from gan.models import Generator
from gan.sampling import generate, interpolate, latent_from_seed

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "fashion-mnist"


def trained_looking(config: ModelConfig, seed: int = 0) -> Generator:
    """A generator whose class gains and biases and batch-norm statistics are far from their initial values (zero
    gains, unit variances would hide a mistake in folding them)."""
    torch.manual_seed(seed)
    generator = Generator(config)
    with torch.no_grad():
        for name, parameter in generator.named_parameters():
            if name.endswith(("gain.weight", "bias.weight")):
                parameter.normal_(0.0, 0.3)
        for module in generator.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.5)
                module.running_var.uniform_(0.3, 3.0)
                if module.affine:
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.normal_(0.0, 0.2)
    return generator.eval()


CONFIGS = {
    "28px grey, 2 blocks": ModelConfig(num_classes=4, class_names=list("abcd"), g_width=8, latent_dim=16),
    "32px RGB, output gain": ModelConfig(image_size=32, channels=3, num_classes=3, class_names=list("abc"), g_width=8,
                                         latent_dim=16, output_gain=1.1),
    "28px grey, black end clamped only": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                                     output_gain=1.1, white_gain=1.0),
    "28px grey, brightest to white": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                                 output_norm="max"),
    "28px grey, brightest to white, linear white end": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8,
                                                                  latent_dim=16, output_norm="max-linear"),
    "28px grey, white dither": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                           output_gain=1.1, white_gain=1.0, output_norm="max", white_dither=4.0),
    "28px grey, white slope": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                          output_gain=1.1, white_gain=1.0, output_norm="max", white_slope=2.0),
    "28px grey, white plateau": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                            output_gain=1.1, white_gain=1.0, output_norm="max",
                                            white_plateau=[0.1, 0.3, 0.4, 0.2], white_peaks=[0.6, 0.3, 0.1]),
    "28px grey, noise inputs": ModelConfig(num_classes=3, class_names=list("abc"), g_width=8, latent_dim=16,
                                           output_gain=1.1, output_norm="max", g_noise=0.5),
    "64px RGB, 4 blocks, noise inputs": ModelConfig(image_size=64, channels=3, num_classes=3, class_names=list("abc"),
                                                    g_width=4, latent_dim=16, g_noise=1.0),
    "64px RGB, 4 blocks": ModelConfig(image_size=64, channels=3, num_classes=5, class_names=list("abcde"), g_width=4,
                                      latent_dim=32),
}


def test_upsample_then_conv_is_one_transposed_conv():
    torch.manual_seed(0)
    x, weight = torch.randn(2, 5, 6, 7), torch.randn(4, 5, 3, 3)
    eager = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2.0), weight, padding=1)
    fused = torch.nn.functional.conv_transpose2d(x, upsampled_conv_kernel(weight), stride=2, padding=1)
    assert fused.shape == eager.shape == (2, 4, 12, 14)
    assert torch.allclose(fused, eager, atol=1e-5)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_optimised_generator_draws_the_same_pixels(name):
    generator = trained_looking(CONFIGS[name])
    fast = optimize(generator)
    classes = [c % generator.model_config.num_classes for c in range(12)]
    for psi in (1.0, 0.7, 0.3):
        eager = generate(generator, classes, range(12), psi, fast=False)
        optimised = generate(fast, classes, range(12), psi)
        assert optimised.shape == eager.shape
        difference = np.abs(eager.astype(int) - optimised.astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01, (psi, difference.max())
    # Class mixtures (interpolation) too.
    eager = interpolate(generator, (0, 3), (1, 4), 5, truncation=0.8, fast=False)
    assert np.abs(eager.astype(int) - interpolate(fast, (0, 3), (1, 4), 5, truncation=0.8).astype(int)).max() <= 1


def test_the_shipped_model_is_served_with_its_own_pixels():
    generator = load_generator(SHIPPED)
    fast = optimize(generator)
    classes, seeds = list(range(10)) * 3, list(range(100, 130))
    for psi in (1.0, 0.5):
        difference = np.abs(generate(generator, classes, seeds, psi, fast=False).astype(int)
                            - generate(fast, classes, seeds, psi).astype(int))
        assert difference.max() <= 1


def test_optimising_leaves_the_original_as_it_was():
    generator = trained_looking(CONFIGS["28px grey, 2 blocks"]).train()
    before = {k: v.clone() for k, v in generator.state_dict().items()}
    fast = optimize(generator)
    assert generator.training and not fast.training
    assert all(torch.equal(before[k], v) for k, v in generator.state_dict().items())
    fast.train()  # generate() toggles modes around its call: the optimised copy stays in eval form
    assert not fast.training


def test_the_library_draws_with_a_cached_optimised_copy_rebuilt_when_weights_change():
    generator = trained_looking(CONFIGS["32px RGB, output gain"]).train()
    classes, seeds = [0, 1, 2, 0], [5, 6, 7, 8]
    passes = []
    original_forward = Generator.forward
    Generator.forward = lambda self, *a: passes.append(1) or original_forward(self, *a)
    try:
        first = generate(generator, classes, seeds)
        assert passes == []  # the optimised copy drew them, not the generator's own forward
        copy = optimized(generator)
        assert optimized(generator) is copy  # built once per weights
        eager = generate(generator, classes, seeds, fast=False)
        assert passes == [1]
        assert np.abs(first.astype(int) - eager.astype(int)).max() <= 1
        assert generator.training  # the caller's mode is left as it was
        with torch.no_grad():  # an in-place update, as an optimizer or EMA step makes
            generator.out_conv.bias.add_(0.5)
        assert optimized(generator) is not copy
        changed = generate(generator, classes, seeds)
        assert np.abs(changed.astype(int) - generate(generator, classes, seeds, fast=False).astype(int)).max() <= 1
        assert np.abs(changed.astype(int) - first.astype(int)).max() > 10
        generator.load_state_dict(trained_looking(CONFIGS["32px RGB, output gain"], seed=1).state_dict())
        assert optimized(generator) is not copy
    finally:
        Generator.forward = original_forward


def test_the_cached_copy_goes_with_its_generator():
    import gc
    import weakref

    generator = trained_looking(CONFIGS["28px grey, 2 blocks"])
    copy = weakref.ref(optimized(generator))
    del generator
    gc.collect()
    assert copy() is None  # a script that loads many models keeps no copies of dropped ones


def test_only_a_plain_fp32_cpu_generator_is_optimised():
    class Tinted(Generator):  # a subclass may change forward: the rewrite would not be exact
        def forward(self, z, labels):
            return super().forward(z, labels).clamp(-1.0, 0.0)

    config = CONFIGS["28px grey, 2 blocks"]
    assert can_optimize(trained_looking(config))
    assert not can_optimize(Tinted(config).eval())
    assert not can_optimize(trained_looking(config).double())
    tinted = Tinted(config).eval()
    assert generate(tinted, [0, 1], [0, 1]).max() <= 128  # its own forward ran


class Gate(torch.nn.Module):
    """A generator whose first forward pass waits until the test opens the gate: requests pile up meanwhile."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner, self.model_config = inner, inner.model_config
        self.open, self.started, self.batch_sizes = threading.Event(), threading.Event(), []

    def forward(self, z, labels):
        self.started.set()
        self.open.wait(timeout=60)
        self.batch_sizes.append(len(z))
        return self.inner(z, labels)


def test_concurrent_callers_share_passes_and_each_gets_its_own_images():
    generator = trained_looking(CONFIGS["28px grey, 2 blocks"])
    gate = Gate(optimize(generator))
    batched = BatchedGenerator(gate, max_images=64)
    # (classes, seeds) per caller: different sizes, indices and one caller with the same seeds as another.
    requests = [([i % 4] * (i + 1), list(range(10 * i, 10 * i + i + 1))) for i in range(8)] + [([3, 3], [0, 1])]
    results: dict[int, np.ndarray] = {}

    def call(i):
        classes, seeds = requests[i]
        results[i] = generate(batched, classes, seeds, 0.9)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert gate.started.wait(timeout=60)  # the first pass is running: the others queue behind it
    others = [threading.Thread(target=call, args=(i,)) for i in range(1, len(requests))]
    for thread in others:
        thread.start()
    while batched._requests.qsize() < len(others):  # noqa: SLF001 - every request waits in the queue
        threading.Event().wait(0.01)
    gate.open.set()
    for thread in [first, *others]:
        thread.join(timeout=60)
    assert gate.batch_sizes == [1, sum(len(s) for _, s in requests[1:])]  # two passes for nine callers
    for i, (classes, seeds) in enumerate(requests):
        eager = generate(generator, classes, seeds, 0.9, fast=False)
        assert np.abs(results[i].astype(int) - eager.astype(int)).max() <= 1


def test_long_jobs_wait_between_steps_while_a_pass_waits_or_runs():
    generator = trained_looking(CONFIGS["28px grey, 2 blocks"])
    gate = Gate(optimize(generator))
    batched = BatchedGenerator(gate)
    batched.turns.max_wait = 60.0
    batched.turns.wait()  # nothing in flight: returns at once
    visitor = threading.Thread(target=generate, args=(batched, [0, 1], [0, 1]))
    visitor.start()
    assert gate.started.wait(timeout=60)
    job_resumed = threading.Event()
    job = threading.Thread(target=lambda: (batched.turns.wait(), job_resumed.set()))
    job.start()
    assert not job_resumed.wait(timeout=0.2)  # the long job holds off while the visitor's pass runs...
    gate.open.set()
    visitor.join(timeout=60)
    assert job_resumed.wait(timeout=60)  # ...and goes on once it is answered
    job.join(timeout=60)


def test_a_long_job_is_slowed_never_starved():
    turns = BatchedGenerator(trained_looking(CONFIGS["28px grey, 2 blocks"])).turns
    turns.max_wait = 0.01
    with turns.interactive():  # an interactive call that never ends
        turns.wait()  # returns after max_wait


def test_passes_never_exceed_max_images_and_large_requests_are_split():
    generator = trained_looking(CONFIGS["28px grey, 2 blocks"])
    gate = Gate(optimize(generator))
    gate.open.set()
    batched = BatchedGenerator(gate, max_images=16)
    images = generate(batched, [1] * 40, range(40), batch_size=256)
    assert gate.batch_sizes == [16, 16, 8]
    assert np.abs(images.astype(int) - generate(generator, [1] * 40, range(40)).astype(int)).max() <= 1


def test_a_failing_pass_fails_its_callers_and_the_next_call_works():
    generator = trained_looking(CONFIGS["28px grey, 2 blocks"])
    batched = BatchedGenerator(optimize(generator))
    z = torch.stack([latent_from_seed(s, 16) for s in range(3)])
    with pytest.raises(GanError, match="class labels must lie in"):
        batched(z, torch.tensor([0, 1, 9]))
    with pytest.raises(RuntimeError):
        batched(torch.zeros(2, 5), torch.tensor([0, 1]))  # wrong latent size: raised in the worker, passed on
    assert batched(z, torch.tensor([0, 1, 2])).shape == (3, 1, 28, 28)


def test_the_serving_allocator_setting_applies_on_glibc_and_is_skipped_elsewhere():
    import platform

    from gan.serve.housekeeping import tune_malloc_for_serving

    assert tune_malloc_for_serving() is (platform.libc_ver()[0] == "glibc")
