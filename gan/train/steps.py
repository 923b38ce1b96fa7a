"""One training step's parts: the discriminator step, the generator step and the EMA step. gan/train/loop.py runs them
in its loop and bench/train_throughput.py times these same functions, so the benchmark measures what training does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch import nn

from ..data import to_model_range
from .augment import diff_augment
from .ema import EMA
from .losses import PAIRED_LOSSES, discriminator_loss, generator_loss, gradient_penalty


@dataclass
class StepModels:
    """What a step touches: both models and optimizers as accelerate prepared them, and the recipe's choices."""

    accelerator: Accelerator
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    policy: list  # DiffAugment operations (gan/train/augment.py parse_policy)
    loss: str  # "hinge", "nonsaturating" or "rpgan" (gan/train/losses.py)
    latent_dim: int
    penalty: float = 0.0  # gamma of the R1 + R2 gradient penalties, gamma / 2 * (R1 + R2) (0: none)
    penalty_every: int = 1  # penalise every N-th D step, N times as hard (lazy regularisation, StyleGAN2)


def d_step(models: StepModels, real_u8: torch.Tensor, labels: torch.Tensor, step: int = 0) -> torch.Tensor:
    """Discriminator: a real batch against fresh fakes of the same classes, both augmented alike, plus the gradient
    penalties on the step's due (step counts D steps); returns its loss."""
    real = to_model_range(real_u8)
    z = torch.randn(real.shape[0], models.latent_dim, device=real.device)
    with torch.no_grad(), models.accelerator.autocast():
        fake = models.generator(z, labels)
    penalise = models.penalty > 0 and step % models.penalty_every == 0
    with models.accelerator.autocast():
        # The penalties are taken at what D sees: the augmented images (the inputs the gradient is of).
        inputs = diff_augment(torch.cat([real, fake.to(real.dtype)]), models.policy).requires_grad_(penalise)
        # Each of D's readers (its network, and the heads it has) is trained on its own loss, as ensembles of heads are
        # (Projected GAN): in one shared hinge, a head that separates the sets alone met the margins, and the
        # network, which reads shape, stopped learning (MNIST: class accuracy 0.99 -> 0.92 in 1,000 steps).
        per_reader = models.discriminator(inputs, labels.repeat(2), per_reader=True)  # (2B, R)
        logits = per_reader.sum(dim=1)
        real_logits, fake_logits = per_reader.float().chunk(2)
        loss_d = sum(discriminator_loss(real_logits[:, r], fake_logits[:, r], models.loss)
                     for r in range(per_reader.shape[1]))
        if penalise:  # R1 on the real half, R2 on the fake half: one backward through both
            weight = models.penalty / 2 * models.penalty_every
            loss_d = loss_d + weight * gradient_penalty(logits.float(), inputs).mean() * 2  # mean of halves x 2
    models.opt_d.zero_grad(set_to_none=True)
    models.accelerator.backward(loss_d)
    models.opt_d.step()
    return loss_d


def g_step(models: StepModels, labels: torch.Tensor, real_u8: torch.Tensor | None = None) -> torch.Tensor:
    """Generator: fool the discriminator on these classes; returns its loss. D is called unwrapped with frozen
    weights, so DDP neither synchronises nor computes gradients it would throw away. A paired loss (rpgan) also
    scores the real batch these labels came with, as a constant."""
    raw_d = models.accelerator.unwrap_model(models.discriminator)
    raw_d.requires_grad_(False)
    z = torch.randn(len(labels), models.latent_dim, device=labels.device)
    real_logits = None
    with models.accelerator.autocast():
        if models.loss in PAIRED_LOSSES:
            if real_u8 is None:
                raise ValueError(f"the {models.loss} generator step needs the real batch of its labels")
            with torch.no_grad():
                real_logits = raw_d(diff_augment(to_model_range(real_u8), models.policy), labels).float()
        fake = diff_augment(models.generator(z, labels), models.policy)
        loss_g = generator_loss(raw_d(fake, labels).float(), models.loss, real_logits)
    models.opt_g.zero_grad(set_to_none=True)
    models.accelerator.backward(loss_g)
    models.opt_g.step()
    raw_d.requires_grad_(True)
    return loss_g


def ema_step(ema: EMA, models: StepModels, step: int) -> None:
    """The EMA generator follows the trained one's weights."""
    ema.update(models.accelerator.unwrap_model(models.generator), step)
