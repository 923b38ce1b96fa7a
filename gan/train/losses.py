"""Adversarial losses and gradient penalties. Logits are raw discriminator scores (B,); larger means "more real"."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import LOSSES

# Losses whose generator side also needs the discriminator's scores of real images of the same classes.
PAIRED_LOSSES = {"rpgan"}


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Loss the discriminator minimises: push real scores up and fake scores down."""
    if kind == "hinge":  # only scores on the wrong side of the +-1 margin contribute (Lim & Ye 2017)
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "nonsaturating":  # binary cross-entropy on logits, written with softplus for stability
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    if kind == "rpgan":  # relativistic pairing (Jolicoeur-Martineau 2019; R3GAN): real i must outscore fake i
        return F.softplus(-(real_logits - fake_logits)).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def generator_loss(fake_logits: torch.Tensor, kind: str = "hinge",
                   real_logits: torch.Tensor | None = None) -> torch.Tensor:
    """Loss the generator minimises: make the discriminator score its images as real (for "rpgan": above the real
    images of the same classes, whose scores `real_logits` it needs)."""
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "nonsaturating":  # -log D(G(z)) rather than log(1 - D(G(z))), whose gradient vanishes early on
        return F.softplus(-fake_logits).mean()
    if kind == "rpgan":
        if real_logits is None:
            raise ValueError("the rpgan generator loss needs the discriminator's scores of real images")
        return F.softplus(-(fake_logits - real_logits)).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def gradient_penalty(logits: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Zero-centred gradient penalty (B,): the squared norm of d logits / d inputs per image; R1 on real inputs,
    R2 on generated ones (Mescheder et al. 2018; R3GAN needs both for its convergence guarantee). Differentiable,
    so the discriminator can be trained on it."""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3))
