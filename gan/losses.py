"""Adversarial losses. Logits are raw discriminator scores (B,); larger means "more real"."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("hinge", "nonsaturating")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Loss the discriminator minimises: push real scores up and fake scores down."""
    if kind == "hinge":  # only scores on the wrong side of the +-1 margin contribute (Lim & Ye 2017)
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    if kind == "nonsaturating":  # binary cross-entropy on logits, written with softplus for stability
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")


def generator_loss(fake_logits: torch.Tensor, kind: str = "hinge") -> torch.Tensor:
    """Loss the generator minimises: make the discriminator score its images as real."""
    if kind == "hinge":
        return -fake_logits.mean()
    if kind == "nonsaturating":  # -log D(G(z)) rather than log(1 - D(G(z))), whose gradient vanishes early on
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
