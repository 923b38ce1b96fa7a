"""DiffAugment (Zhao et al. 2020): differentiable augmentations applied to every image the discriminator sees.

Real and generated images are augmented alike, in both the discriminator and the generator step, so the
discriminator cannot tell them apart by the augmentation and the generator is never pushed to produce augmented
images. Every operation is differentiable with respect to the images. Images are in [-1, 1], shape (B, C, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DIFFAUGMENT_OPS



def brightness(x: torch.Tensor) -> torch.Tensor:
    """Add one random offset in [-0.5, 0.5) per image."""
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its grey value by a random factor in [0, 2); a no-op on grey images."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    """Scale each image's distance from its mean by a random factor in [0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio * size pixels in x and y, filling with zeros."""
    b, _, h, w = x.shape
    shift_y, shift_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-shift_y, shift_y + 1, (b, 1, 1), device=x.device)
    tx = torch.randint(-shift_x, shift_x + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    # Index into a copy padded by one zero pixel; out-of-range sources clamp onto that padding.
    src_y = (rows + ty + 1).clamp(0, h + 1)  # (B, H, 1)
    src_x = (cols + tx + 1).clamp(0, w + 1)  # (B, 1, W)
    padded = F.pad(x, [1, 1, 1, 1])  # (B, C, H+2, W+2)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, src_y, src_x].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of side ratio * size per image (it may hang over the border)."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - size_y % 2), (b, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, w + (1 - size_x % 2), (b, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)  # (B, H, W)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES = {  # one entry per name of gan/config.py's DIFFAUGMENT_OPS, which --diffaugment is checked against
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}
assert tuple(POLICIES) == DIFFAUGMENT_OPS, "gan/config.py's DIFFAUGMENT_OPS and POLICIES name the same ops"


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """Apply the ops of a parsed policy, in order, each with fresh randomness per image."""
    for name in policy:
        for op in POLICIES[name]:
            x = op(x)
    return x.contiguous()
