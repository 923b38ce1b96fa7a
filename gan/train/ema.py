"""Exponential moving average of the generator's weights, the copy that samples, exports and serves."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps an averaged copy of a model; `state_dict`/`load_state_dict` let accelerate checkpoint it."""

    def __init__(self, model: nn.Module, *, decay: float = 0.999, start: int = 1000):
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.start = decay, start

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Average in the live weights; before `start` steps just copy them (early weights are not worth keeping)."""
        weight = 1.0 if step < self.start else 1.0 - self.decay
        ema_params = [p for p in self.model.parameters()]
        live_params = [p.detach().to(ema_params[0].dtype) for p in model.parameters()]
        torch._foreach_lerp_(ema_params, live_params, weight)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)


@torch.no_grad()
def recalibrate_batch_norm(
    generator: nn.Module, *, num_batches: int = 40, batch_size: int = 64, seed: int = 0
) -> nn.Module:
    """Recompute the running statistics of every batch norm for the generator's current weights, then eval().

    Averaged weights do not match running statistics gathered by the live generator; stale statistics made the EMA
    generator worse than the live one in our trials. A cumulative average over fresh batches of random noise and
    balanced classes fixes that. The fixed seed makes the result a pure function of the weights, so a generator whose
    weights and statistics have not changed since its last recalibration (same tensors, same in-place version
    counters) is returned as it is: the end of a run saves its sample grid and its export from the same weights, and
    each recalibration costs 40 forward passes.
    """
    settings = (num_batches, batch_size, seed)
    if getattr(generator, "_calibrated", None) == (settings, _state_versions(generator)):
        return generator.eval()
    config = generator.model_config
    device = next(generator.parameters()).device
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
    rng = torch.Generator().manual_seed(seed)
    generator.train()
    for i in range(num_batches):
        z = torch.randn(batch_size, config.latent_dim, generator=rng).to(device)
        # Balanced classes, even for imbalanced data: recalibrating in the data's class mix (emoji: 60% people) was
        # tried and scored worse (class accuracy 0.689 vs 0.729, KID 2.04 vs 0.74, FD equal; BENCHMARKS.md).
        labels = (torch.arange(batch_size) + i * batch_size) % config.num_classes
        generator(z, labels.to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator._calibrated = (settings, _state_versions(generator))
    return generator.eval()


def _state_versions(module: nn.Module) -> tuple:
    """Which tensors hold the module's parameters and buffers, and how often each was changed in place (EMA
    updates, optimizer steps, load_state_dict and batch-norm statistics all count)."""
    return tuple((t.data_ptr(), t._version) for t in (*module.parameters(), *module.buffers()))
