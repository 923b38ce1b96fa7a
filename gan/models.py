"""Generator (ResNet, class-conditional batch norm) and discriminator (ResNet, spectral norm, projection head).

The architecture follows SNGAN / cGAN-PD (Miyato et al. 2018; Miyato & Koyama 2018): residual blocks that double
the resolution in the generator and halve it in the discriminator. Both models are plain `nn.Module`s built from a
`ModelConfig` alone; they never move themselves to a device and own no optimizer.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from .config import ModelConfig
from .errors import GanError
from .hub import HubModelMixin
from .model_files import DISCRIMINATOR_FOLDER


def class_weights(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Turn class indices (B,) into one-hot rows (B, K); pass (B, K) class mixtures through unchanged."""
    if labels.dtype in (torch.int64, torch.int32, torch.int16, torch.uint8):
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise GanError(f"class labels must lie in [0, {num_classes - 1}]")
        return F.one_hot(labels.long(), num_classes).to(dtype)
    if labels.dim() != 2 or labels.shape[1] != num_classes:
        raise GanError(f"class mixtures must have shape (batch, {num_classes}), got {tuple(labels.shape)}")
    return labels.to(dtype)


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose gain and bias depend on the class; a mixture of classes mixes their gains and biases."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        # A bias-free linear map of a one-hot row is an embedding lookup; of a mixture, the mixed embedding.
        self.gain = nn.Linear(num_classes, channels, bias=False)
        self.bias = nn.Linear(num_classes, channels, bias=False)
        nn.init.zeros_(self.gain.weight)  # gain starts at exactly 1 for every class
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(y)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.bias(y)[:, :, None, None]
        return self.norm(x) * gain + bias


class GeneratorBlock(nn.Module):
    """BN-ReLU-up-conv-BN-ReLU-conv with an upsampled 1x1 shortcut; doubles the resolution."""

    def __init__(self, in_channels: int, out_channels: int, num_classes: int):
        super().__init__()
        self.norm1 = ConditionalBatchNorm2d(in_channels, num_classes)
        self.conv1 = _layer(nn.Conv2d(in_channels, out_channels, 3, padding=1))
        self.norm2 = ConditionalBatchNorm2d(out_channels, num_classes)
        self.conv2 = _layer(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.shortcut = _layer(nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """noise (B, C_out, 2H, 2W), if any, adds to the first convolution's output (a NoiseInput's)."""
        h = self.conv1(F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2.0, mode="nearest"))
        h = self.conv2(F.relu(self.norm2(h if noise is None else h + noise, y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Generator(nn.Module, HubModelMixin):
    """Maps noise z (B, latent_dim) and classes (B,) or class mixtures (B, K) to images (B, C, H, W) in [-1, 1]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.model_config = config
        levels = config.num_blocks
        widths = [config.width_at(config.g_width, level) for level in range(levels, -1, -1)]  # start -> full res
        self.start = config.start_resolution
        self.stem = _layer(nn.Linear(config.latent_dim, widths[0] * self.start * self.start))
        self.blocks = nn.ModuleList(
            GeneratorBlock(widths[i], widths[i + 1], config.num_classes) for i in range(levels)
        )
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = _layer(nn.Conv2d(widths[-1], config.channels, 3, padding=1))
        self.dither = WhiteDither(config) if config.white_dither else None
        self.plateau = WhitePlateau(config) if config.white_plateau else None
        # Noise inputs at full resolution: inside the last block (after its first convolution) and after it.
        self.noise = (nn.ModuleList(NoiseInput(config, widths[-1], seed) for seed in NOISE_SEEDS) if config.g_noise
                      else None)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = class_weights(labels, self.model_config.num_classes, z.dtype)  # (B, K)
        h = self.stem(z).view(z.shape[0], -1, self.start, self.start)  # (B, C0, s, s)
        inner, outer = noise_from_z(self.noise, z)
        for i, block in enumerate(self.blocks):
            h = block(h, y, inner if i == len(self.blocks) - 1 else None)  # resolution doubles each block
        h = h if outer is None else h + outer
        return self.to_pixels(self.out_conv(F.relu(self.out_norm(h))), z)  # (B, channels, H, W)

    def to_pixels(self, x: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """The output layer on the last convolution's x (B, C, H, W); z (B, latent_dim) draws the dither and the
        plateau level, if any."""
        return output_layer(x, self.model_config, *drawn_from_z(self.dither, self.plateau, z))


def drawn_from_z(dither: "WhiteDither | None", plateau: "WhitePlateau | None", z: torch.Tensor | None
                 ) -> tuple[torch.Tensor | None, tuple[torch.Tensor, torch.Tensor] | None]:
    """What the output layer draws from a batch's z: the dither (B, C, H, W) and the plateau (levels (B, 1, 1, 1),
    peak counts (B,)), each None where the generator has none (or no z is given)."""
    if z is None:
        return None, None
    return (None if dither is None else dither(z)), (None if plateau is None else plateau(z))


def noise_from_z(noise: "nn.ModuleList | None", z: torch.Tensor
                 ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The noise inputs' maps for a batch's z: (inside the last block, after it), both None without noise inputs."""
    return (None, None) if noise is None else (noise[0](z), noise[1](z))


def fixed_basis(config: ModelConfig, seed: int) -> torch.Tensor:
    """A fixed projection (latent_dim, H * W) of z to one noise value a pixel, drawn from its own seed; a module
    saves it as a buffer with the weights: no RNG's stream is trusted to stay the same."""
    return torch.randn(config.latent_dim, config.image_size ** 2, generator=torch.Generator().manual_seed(seed))


def noise_map(z: torch.Tensor, basis: torch.Tensor, side: int) -> torch.Tensor:
    """One N(0, 1) value a pixel (B, 1, side, side), a function of z's direction alone (unit variance for any |z|)."""
    return (F.normalize(z, dim=1) @ basis.to(z.dtype)).view(z.shape[0], 1, side, side)


# Seeds of the noise inputs' fixed projections (WhiteDither's is 0, WhitePlateau's 1).
NOISE_SEEDS = (2, 3)
# Adam moves a weight by about lr a step: the gain lets a noise strength move by ~0.005 a step at a fine-tune's
# generator lr (5e-5) instead of 0.00005, so that it can grow within a run of a few thousand steps.
NOISE_GAIN = 100.0


class NoiseInput(nn.Module):
    """Per-pixel noise, scaled per channel, added to a full-resolution feature map: StyleGAN's noise inputs (Karras
    et al. 2019), which let a generator draw stochastic detail (a knit, a print, the grain of a fabric) without
    spending its latent code on it, and leave smooth what should be smooth where it learns a zero strength.
    Fashion-MNIST's fakes are told by a fine grain spread evenly over plain garments (BENCHMARKS.md): a generator
    whose only source of detail is z upsampled from 7x7 draws its texture from the same features everywhere.
    The noise map is a fixed projection of the normalised z (as WhiteDither's), so a seed keeps its image, a
    truncation leaves the noise as it is, and interpolations do not flicker. Strengths start at config.g_noise
    (not zero: at zero the strength's gradient averages to nothing over the noise, WhiteDither's lesson). Measured on
    Fashion-MNIST, the discriminator drove them from 0.03 to ~0.004 in 9,000 steps and the C2ST did not move."""

    def __init__(self, config: ModelConfig, channels: int, seed: int):
        super().__init__()
        self.side = config.image_size
        self.strength = nn.Parameter(torch.full((channels,), config.g_noise / NOISE_GAIN))
        self.register_buffer("basis", fixed_basis(config, seed))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The noise (B, C, H, W) to add: one N(0, 1) map per image, times each channel's strength."""
        return noise_map(z, self.basis, self.side) * (NOISE_GAIN * self.strength).view(1, -1, 1, 1).to(z.dtype)


class WhiteDither(nn.Module):
    """Stochastic variation of the bright pixels, as StyleGAN's noise inputs vary hair (Karras et al. 2019). Digits'
    stroke centres are a plateau jittered over a few grey levels (MNIST: 252 / 253 / 254 / 255 held 12 / 25 / 13 / 5
    pixels an image), which a saturating output cannot draw: its plateau is one value, and no gradient crosses it.
    A learned strength per channel scales noise that is a fixed projection of z, so a seed keeps its image and
    interpolations do not flicker; unit variance per pixel for any |z|. It starts at config.white_dither grey levels,
    not at zero: a discriminator of ReLUs is piecewise linear in the pixels, so at zero the strength's gradient
    averages to nothing over the noise (MNIST: still 0.0002 levels after 500 steps from zero). Measured on MNIST the
    discriminator drove it from 1.5 to 0.4 levels in 1,500 steps: its digits' plateaus vary between images, not
    pixel by pixel (BENCHMARKS.md)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.side = config.image_size
        self.strength = nn.Parameter(torch.full((config.channels,), config.white_dither / 127.5))
        self.register_buffer("basis", fixed_basis(config, seed=0))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return noise_map(z, self.basis, self.side) * self.strength.view(1, -1, 1, 1)  # (B, C, H, W)


class WhitePlateau(nn.Module):
    """Each image's white plateau, drawn from z. MNIST's digits were scaled so their brightest pixel is 255, and
    their stroke centres sit on a flat plateau 0-4 grey levels below it (9.8 / 29 / 37 / 21 / 2.3% of digits) with
    one pixel at 255 in 64% of them, a few in the rest: a saturating white end puts the whole plateau at 255 (20
    pure whites a digit), a sloped one spreads it over 240-254, which a two-sample classifier finds at once
    (BENCHMARKS.md). The training data's shares (config.white_plateau, white_peaks; data.white_plateau_shares) are
    drawn along two fixed directions of the normalised z, so a seed keeps its image at any truncation."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        directions = torch.randn(2, config.latent_dim, generator=torch.Generator().manual_seed(1))
        self.register_buffer("directions", F.normalize(directions, dim=1))  # saved with the weights, as the dither's
        self.register_buffer("offset_cdf", _cdf(config.white_plateau))
        self.register_buffer("peaks_cdf", _cdf(config.white_peaks))
        self.scale = config.latent_dim ** 0.5

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Plateau levels (B, 1, 1, 1) in [-1, 1] and peak counts (B,) >= 1."""
        along = (F.normalize(z, dim=1) @ self.directions.T) * self.scale  # (B, 2), each ~N(0, 1) for z ~ N(0, I)
        uniform = (0.5 * (1.0 + torch.erf(along.float() / 2 ** 0.5))).T.contiguous()  # fp32, as the CDFs (autocast)
        offset = torch.searchsorted(self.offset_cdf, uniform[0]).clamp(max=len(self.offset_cdf) - 1)
        peaks = torch.searchsorted(self.peaks_cdf, uniform[1]).clamp(max=len(self.peaks_cdf) - 1) + 1
        return (1.0 - offset.to(z.dtype) / 127.5).view(-1, 1, 1, 1), peaks


def _cdf(shares: list[float]) -> torch.Tensor:
    return torch.tensor(shares, dtype=torch.float32).cumsum(0) / sum(shares)


def on_plateau(pixels: torch.Tensor, x: torch.Tensor, plateau: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Stretched pixels (B, C, H, W) held at most at each image's plateau level, except its peak count of values
    of highest pre-activation x, which stay pure white; plateau: WhitePlateau's (levels, peak counts)."""
    level, peaks = plateau
    held = torch.minimum(pixels, level).flatten(1)
    brightest = x.flatten(1).topk(min(int(peaks.max()), held.shape[1]), dim=1).indices  # (B, K), brightest first
    is_peak = torch.arange(brightest.shape[1], device=x.device) < peaks.unsqueeze(1)
    values = torch.where(is_peak, torch.ones_like(held[:, :1]), held.gather(1, brightest))
    return held.scatter(1, brightest, values).view_as(pixels)


def output_layer(x: torch.Tensor, config: ModelConfig, dither: torch.Tensor | None = None,
                 plateau: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The output layer: tanh, scaled by output_gain (white_gain at the white end, where set) and clamped, so that
    pure white and black are reachable; then, with output_norm "max", each image stretched to white ("max-linear":
    the white end linear, so no plateau forms below the brightest pixel). A clamped pixel passes no gradient; D only
    sees it where it already matches the data's extreme. A dither (B, C, H, W) (WhiteDither) adds to the bright half
    before the stretch, growing to full strength at white, so plateaus vary and black stays exactly black. A white
    slope (config.white_slope) keeps the bright half rising with x past tanh's knee, so only a plateau's brightest
    point reaches white after the stretch. A plateau (WhitePlateau's levels and peak counts) then holds each
    stretched image at its level but for that many of its brightest points."""
    gain, white_gain = config.output_gain, config.white_gain
    if config.output_norm == "max-linear":  # no ceiling before the scaling: the white end stays linear
        return brightest_to_white(torch.where(x > 0, x, (gain * torch.tanh(x)).clamp(min=-1.0)))
    if white_gain is None or white_gain == gain:
        pixels = torch.tanh(x) if gain == 1.0 else (gain * torch.tanh(x)).clamp(-1.0, 1.0)
    else:
        t = torch.tanh(x)
        pixels = (t * torch.where(t > 0, white_gain, gain)).clamp(-1.0, 1.0)
    if dither is not None:
        pixels = pixels + dither * pixels.clamp(min=0.0).square()
        if config.output_norm != "max":
            pixels = pixels.clamp(-1.0, 1.0)
    if config.white_slope:  # validated to come with "max": the stretch then brings the brightest to 255
        pixels = pixels + (config.white_slope / 127.5) * F.relu(x)
    if config.output_norm != "max":
        return pixels
    pixels = brightest_to_white(pixels)
    return pixels if plateau is None else on_plateau(pixels, x, plateau)


def brightest_to_white(pixels: torch.Tensor) -> torch.Tensor:
    """Each image (B, C, H, W) of values >= -1 scaled about black (-1) so that its brightest value is 1; the
    gradient reaches every pixel, the brightest one through the scale."""
    brightest = pixels.amax(dim=(1, 2, 3), keepdim=True)  # (B, 1, 1, 1)
    return -1.0 + (pixels + 1.0) * (2.0 / (brightest + 1.0).clamp(min=1e-3))


class DiscriminatorBlock(nn.Module):
    """ReLU-conv-ReLU-conv with a 1x1 shortcut, optionally halving the resolution (spectral norm everywhere)."""

    def __init__(self, in_channels: int, out_channels: int, *, downsample: bool, first: bool, spectral: bool = True):
        super().__init__()
        self.downsample, self.first = downsample, first
        self.conv1 = _layer(nn.Conv2d(in_channels, out_channels, 3, padding=1), spectral=spectral)
        self.conv2 = _layer(nn.Conv2d(out_channels, out_channels, 3, padding=1), spectral=spectral)
        needs_shortcut_conv = downsample or in_channels != out_channels
        self.shortcut = (_layer(nn.Conv2d(in_channels, out_channels, 1), spectral=spectral) if needs_shortcut_conv
                         else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The first block sees raw pixels: no ReLU before it (the "optimized block" of SNGAN).
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        return h + self._shortcut(x)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.shortcut is None:
            return x
        if self.first:  # pool first: the 1x1 conv then runs on 4x fewer pixels
            return self.shortcut(F.avg_pool2d(x, 2) if self.downsample else x)
        x = self.shortcut(x)
        return F.avg_pool2d(x, 2) if self.downsample else x


# Centres (grey levels 0-255) of the bins of the discriminator's pixel histogram: fine at both ends, where real
# images hold atoms (a black background; a few pure whites among anti-aliased 252-254s), coarse between.
HISTOGRAM_LEVELS = (0, 1, 2, 4, 8, 16, 32, 64, 96, 128, 160, 192, 224, 240, 248, 251, 253, 254, 255)
# Adam moves each weight by about lr a step whatever its input's scale: the gain lets a head that starts at zero reach
# a logit of about 1 within a few hundred steps of a fine-tune instead of thousands.
HEAD_GAIN = 10.0


def pixel_histogram(images: torch.Tensor, levels: tuple[int, ...] = HISTOGRAM_LEVELS) -> torch.Tensor:
    """Each image's histogram of grey levels per channel, as log(1 + count) in bins centred on `levels`: (B, C * K).
    A pixel's unit weight is split linearly between the two centres around it (254.4 counts 0.6 at 254 and 0.4 at
    255), so the counts are differentiable in the pixels and a generator can be told to move them."""
    centres = torch.tensor(levels, dtype=images.dtype, device=images.device)
    grey = ((images + 1.0) * 127.5).clamp(0.0, 255.0).flatten(2)  # (B, C, H*W)
    upper = torch.bucketize(grey.detach(), centres, right=True).clamp(1, len(levels) - 1)  # the centre above
    lower = upper - 1
    share_up = (grey - centres[lower]) / (centres[upper] - centres[lower])  # in [0, 1]
    counts = grey.new_zeros(*grey.shape[:2], len(levels))
    counts = counts.scatter_add(2, lower, 1.0 - share_up).scatter_add(2, upper, share_up)  # (B, C, K)
    return torch.log1p(counts).flatten(1)


class ZeroStartHead(nn.Module):
    """What the discriminator's optional heads share: a linear score of their features (B, F), class-aware by
    projection like the network's, with zero weights at the start, so that a discriminator gains a head without
    changing what it computes."""

    def add_score(self, features: int, num_classes: int) -> None:
        """Build the score; a head calls this last in its __init__. Optimizers save their state by parameter order,
        so the score's parameters come after the features' (as before this base existed: such runs resume)."""
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(num_classes, features)
        for weight in (self.linear.weight, self.linear.bias, self.embed.weight):
            nn.init.zeros_(weight)

    def score(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return HEAD_GAIN * (self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1))  # (B,)


class HistogramHead(ZeroStartHead):
    """A reader of each image's pixel histogram. A spectral-norm network barely weighs a difference of two grey
    levels, so it accepts a generator's plateau of pure whites (MNIST: 8-24 an image against the data's 5) that a
    count sees at once. No spectral norm: a linear map of bounded counts, trained on a loss of its own
    (gan/train/steps.py), whose hinge stops pushing once its margin is met."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.add_score(channels * len(HISTOGRAM_LEVELS), num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.score(pixel_histogram(images), labels)  # (B,)


class PatchHead(ZeroStartHead):
    """A reader of texture alone: two 3x3 convolutions without padding at full resolution, so each of its features
    sees one 5x5 patch and no border, averaged over the image. The two-sample classifier tells Fashion-MNIST's fakes
    by a pixel-scale grain (chance once both sets are blurred or cut to 2x2 cells; BENCHMARKS.md), which the network,
    reading shape at every scale, has not made the generator drop. Its convolutions are normalised as the
    network's are."""

    def __init__(self, channels: int, num_classes: int, width: int, *, spectral: bool):
        super().__init__()
        self.conv1 = _layer(nn.Conv2d(channels, width, 3), spectral=spectral)
        self.conv2 = _layer(nn.Conv2d(width, width, 3), spectral=spectral)
        self.add_score(width, num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv2(F.relu(self.conv1(images)))).mean(dim=(2, 3))  # (B, width): mean over 5x5 patches
        return self.score(h, labels)  # (B,)


class TextureHead(ZeroStartHead):
    """A stronger reader of texture than PatchHead: three 3x3 convolutions without padding at full resolution (one
    7x7 patch a feature, no border), twice as wide, and no spectral norm. The spectral-norm patch head tells the
    shipped Fashion-MNIST model's fakes from real images at an AUC of only 0.55, while a plain classifier trained to
    saturation tells them apart 81% of the time by their grain (BENCHMARKS.md): the Lipschitz bound keeps it from
    magnifying a difference of a few grey levels. Its own hinge loss (gan/train/steps.py) stops pushing once its
    margins are met, which bounds its scores without a norm. Measured on Fashion-MNIST it reads the fakes no better
    than the patch head (AUC 0.57-0.59; the network 0.89-0.92) and a fine-tune with it left the C2ST where it was."""

    def __init__(self, channels: int, num_classes: int, width: int):
        super().__init__()
        self.convs = nn.ModuleList(_layer(nn.Conv2d(c_in, width, 3)) for c_in in (channels, width, width))
        self.add_score(width, num_classes)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = images
        for conv in self.convs:
            h = F.relu(conv(h))
        return self.score(h.mean(dim=(2, 3)), labels)  # (B,): the mean over 7x7 patches, class-aware


# The discriminator's optional heads: the config field that adds each, and the attribute that holds it.
DISCRIMINATOR_HEADS = {"d_histogram": "histogram", "d_patch": "patch", "d_texture": "texture"}


class Discriminator(nn.Module, HubModelMixin):
    """Scores images (B, C, H, W) with classes (B,): a realness logit per image, class-aware by projection.
    Spectral norm on every layer unless the config's d_norm is "none". With d_histogram and d_patch, heads that read
    the histogram of grey levels and 5x5 patches are further readers whose scores add to the network's."""

    hub_subfolder = DISCRIMINATOR_FOLDER  # a model repo's root holds the generator

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.model_config = config
        levels = config.num_blocks
        # Block i reads level i (full resolution = level 0) and halves it; a last block works at the start size.
        widths = [config.width_at(config.d_width, level) for level in range(levels + 1)]  # full res -> start
        in_widths = [config.channels] + widths[:-1]
        spectral = config.d_norm == "spectral"
        blocks = [
            DiscriminatorBlock(in_widths[i], widths[i], downsample=True, first=i == 0, spectral=spectral)
            for i in range(levels)
        ]
        blocks.append(DiscriminatorBlock(in_widths[levels], widths[levels], downsample=False, first=False,
                                         spectral=spectral))
        self.blocks = nn.Sequential(*blocks)
        self.linear = _layer(nn.Linear(widths[-1], 1), spectral=spectral)
        # Projection: the class embedding's inner product with the pooled features (Miyato & Koyama 2018).
        self.embed = _layer(nn.Embedding(config.num_classes, widths[-1]), spectral=spectral)
        self.histogram = HistogramHead(config.channels, config.num_classes) if config.d_histogram else None
        self.patch = (PatchHead(config.channels, config.num_classes, widths[0], spectral=spectral) if config.d_patch
                      else None)
        self.texture = TextureHead(config.channels, config.num_classes, 2 * widths[0]) if config.d_texture else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor, *, per_reader: bool = False) -> torch.Tensor:
        """The realness score (B,): the sum of its readers' scores, or with per_reader each reader's (B, R), for
        training each reader on a loss of its own (the network, then the histogram and patch heads it has)."""
        h = F.relu(self.blocks(images)).sum(dim=(2, 3))  # (B, C) global sum pooling
        scores = [self.linear(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)]  # (B,)
        heads = (getattr(self, attribute) for attribute in DISCRIMINATOR_HEADS.values())
        scores += [head(images, labels) for head in heads if head is not None]
        return torch.stack(scores, dim=1) if per_reader else sum(scores)


def without_spectral_norm(discriminator: Discriminator) -> Discriminator:
    """A discriminator with d_norm "none" that computes what `discriminator` (spectral norm) computes now: each
    layer's weight divided by its current spectral-norm estimate, baked in. Lets a fine-tune drop spectral norm for
    gradient penalties (R3GAN) without starting the discriminator afresh."""
    plain = Discriminator(replace(discriminator.model_config, d_norm="none"))
    # A fresh copy, not deepcopy: removing a parametrization edits its module's class, which a deepcopy shares.
    source = Discriminator(discriminator.model_config).eval()  # eval: the stored power-iteration vectors, no update
    source.load_state_dict(discriminator.state_dict())
    for module in source.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    plain.load_state_dict(source.state_dict())
    return plain.train(discriminator.training)


def _layer(layer: nn.Module, *, spectral: bool = False) -> nn.Module:
    """Xavier-uniform weights and zero bias (as in SNGAN), then spectral norm, whose power iteration starts from them."""
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)
    return spectral_norm(layer) if spectral else layer


def load_generator(path_or_repo: str | Path, **hub_options) -> Generator:
    """The (EMA) generator of a model folder or Hub repo, in eval mode on the CPU. hub_options: revision, token,
    cache_dir, force_download, local_files_only (as in `Generator.from_pretrained`)."""
    return Generator.from_pretrained(path_or_repo, **hub_options)


def load_discriminator(path_or_repo: str | Path, **hub_options) -> Discriminator:
    """The discriminator of a model folder or Hub repo (its discriminator/ subfolder); hub_options as above."""
    return Discriminator.from_pretrained(path_or_repo, **hub_options)
