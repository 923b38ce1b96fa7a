"""An inference-ready copy of a generator: the same images from fewer, cheaper operations, for serving on CPU.

`optimize(generator)` builds it once per model. It rewrites the eval-mode network (gan/models.py) exactly, up to
float rounding (tests hold it to within one grey level of the eager model):
- every batch norm in eval mode is a fixed per-channel affine map, so each class-conditional norm becomes one
  per-image scale and shift, and the scales and shifts of all norms come from a single matrix product of the class
  weights; the last, unconditional norm is folded into the convolutions before it;
- "nearest 2x upsampling, then a 3x3 convolution" equals one transposed convolution (stride 2, 4x4 kernel) of the
  small input: 16 instead of 36 multiply-adds per output pixel and input channel, and no upsampled copy (the copy
  cost more than the convolution at these sizes);
- "nearest 2x upsampling, then a 1x1 convolution" (the shortcut) equals the 1x1 convolution at the small size,
  added to each 2x2 output patch by broadcasting;
- activations are channels_last (oneDNN's native layout: no reorders between layers) and run under
  torch.inference_mode.
bf16 is not used: measured ~15x slower than fp32 on CPUs without AMX (BENCHMARKS.md).
"""

from __future__ import annotations

import copy
import threading
import weakref

import torch
import torch.nn.functional as F
from torch import nn

from .models import ConditionalBatchNorm2d, Generator, class_weights, drawn_from_z, noise_from_z, output_layer

# Upsampling by 2 (nearest) then a 3-tap filter w equals a stride-2 transposed filter of 4 taps: row k of this matrix
# says which taps of w add up to tap k (derived in `upsampled_conv_kernel`).
_UPSAMPLE_TAPS = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def upsampled_conv_kernel(weight: torch.Tensor) -> torch.Tensor:
    """The transposed-convolution kernel (C_in, C_out, 4, 4) equal to nearest 2x upsampling then `weight` (C_out,
    C_in, 3, 3) with padding 1. Output pixel 2m gets w0*x[m-1] + (w1+w2)*x[m]; pixel 2m+1 gets (w0+w1)*x[m] +
    w2*x[m+1]; a stride-2, padding-1 transposed convolution puts x[i] on pixels 2i-1+k, hence taps
    k = 0..3 = w2, w1+w2, w0+w1, w0 along each axis."""
    taps = _UPSAMPLE_TAPS.to(weight)
    return torch.einsum("yd,xe,oide->ioyx", taps, taps, weight).contiguous()


def norm_affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """An eval-mode batch norm as x * a + b per channel: (a, b)."""
    inv_std = torch.rsqrt(norm.running_var + norm.eps)
    a = inv_std * (norm.weight if norm.affine else 1.0)
    b = (norm.bias if norm.affine else 0.0) - norm.running_mean * a
    return a, b


def conditional_affine(norm: ConditionalBatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A class-conditional norm in eval mode as an affine map of the class weights y (B, K) to per-image
    [scale | shift] (B, 2C): scale = (1 + G y) a and shift = B y + (1 + G y) b, with (a, b) the plain norm's
    affine form. Returns (matrix (K, 2C), offset (2C,))."""
    a, b = norm_affine(norm.norm)
    gain, bias = norm.gain.weight, norm.bias.weight  # (C, K) each
    matrix = torch.cat([(gain * a[:, None]).T, (bias + gain * b[:, None]).T], dim=1)
    return matrix, torch.cat([a, b])


class FastBlock(nn.Module):
    """GeneratorBlock rewritten: affine+ReLU, transposed conv, affine+ReLU, conv, plus the shortcut at low size."""

    def __init__(self, block, out_affine: tuple[torch.Tensor, torch.Tensor] | None = None):
        super().__init__()
        self.up_weight = nn.Parameter(upsampled_conv_kernel(block.conv1.weight).contiguous(
            memory_format=torch.channels_last), requires_grad=False)
        self.up_bias = nn.Parameter(block.conv1.bias.clone(), requires_grad=False)
        conv2_w, conv2_b = block.conv2.weight.clone(), block.conv2.bias.clone()
        short_w, short_b = block.shortcut.weight.clone(), block.shortcut.bias.clone()
        if out_affine is not None:  # a norm after the block's sum: scale both branches, one bias for the sum
            a, b = out_affine
            conv2_w, short_w = conv2_w * a[:, None, None, None], short_w * a[:, None, None, None]
            conv2_b = (conv2_b + short_b) * a + b
            short_b = torch.zeros_like(short_b)
        else:
            conv2_b, short_b = conv2_b + short_b, torch.zeros_like(short_b)  # one bias for the sum
        self.conv2_weight = nn.Parameter(conv2_w.contiguous(memory_format=torch.channels_last), requires_grad=False)
        self.conv2_bias = nn.Parameter(conv2_b, requires_grad=False)
        self.short_weight = nn.Parameter(short_w.contiguous(memory_format=torch.channels_last), requires_grad=False)

    def forward(self, x: torch.Tensor, norm1: torch.Tensor, norm2: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C_in, H, W) channels_last, overwritten; norm1/norm2 (B, 2C) per-image [scale | shift]; noise
        (B, C_out, 2H, 2W) to add after the first convolution, if any -> (B, C_out, 2H, 2W)."""
        shortcut = F.conv2d(x, self.short_weight)  # (B, C_out, H, W): before upsampling, 4x fewer pixels
        h = F.conv_transpose2d(affine_relu_(x, norm1), self.up_weight, self.up_bias, stride=2, padding=1)
        if noise is not None:
            h = h.add_(noise)
        h = F.conv2d(affine_relu_(h, norm2), self.conv2_weight, self.conv2_bias, padding=1)
        h = h.contiguous(memory_format=torch.channels_last)  # a no-op where oneDNN already returned NHWC
        b, c, height, width = shortcut.shape
        # Add each shortcut pixel to its 2x2 patch: a (B, H, 2, W, 2, C) view of the channels_last output.
        patches = h.permute(0, 2, 3, 1).view(b, height, 2, width, 2, c)
        patches.add_(shortcut.permute(0, 2, 3, 1)[:, :, None, :, None, :])
        return h


def affine_relu_(x: torch.Tensor, scale_shift: torch.Tensor) -> torch.Tensor:
    """x = relu(x * scale + shift) in place (no new buffer to fault in), with per-image, per-channel scale and shift
    given as (B, 2C)."""
    scale, shift = scale_shift[:, :, None, None].chunk(2, dim=1)
    return torch.addcmul(shift, x, scale, out=x).relu_()


def conv3x3_by_taps(x: torch.Tensor, taps: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 3x3 convolution (padding 1) to a few output channels, as one matrix product to the 9 taps' contributions
    and 8 shifted additions: oneDNN's kernels are slow for 1-3 output channels (~30% here). x (B, C, H, W)
    channels_last; taps (C, 9 * C_out) from `tap_matrix`. The product is taken as taps^T x^T, so each tap's
    contribution is a contiguous plane (B, H, W) and the shifted additions run along rows: 3x faster than
    x @ taps, whose 9 * C_out columns are too few for the matrix kernels."""
    b, c, height, width = x.shape
    out_channels = taps.shape[1] // 9
    per_tap = (taps.T @ x.permute(0, 2, 3, 1).reshape(-1, c).T).view(3, 3, out_channels, b, height, width)
    padded = F.pad(per_tap, (1, 1, 1, 1))  # (3, 3, C_out, B, H + 2, W + 2)
    out = padded[0, 0, :, :, :height, :width] + bias[:, None, None, None]
    for dy in range(3):
        for dx in range(3):
            if dy or dx:
                out += padded[dy, dx, :, :, dy:dy + height, dx:dx + width]
    return out.transpose(0, 1)  # (B, C_out, H, W); one plane per channel


def tap_matrix(weight: torch.Tensor) -> torch.Tensor:
    """Conv weight (C_out, C_in, 3, 3) -> (C_in, 9 * C_out): column (dy * 3 + dx) * C_out + o is tap (dy, dx) of o."""
    return weight.permute(1, 2, 3, 0).reshape(weight.shape[1], -1).contiguous()


class InferenceGenerator(nn.Module):
    """The eval-mode generator, rewritten for speed: same inputs, same outputs (up to float rounding)."""

    def __init__(self, generator: Generator):
        super().__init__()
        self.model_config = generator.model_config
        self.start = generator.start
        # The stem's output rows reordered from (C, s, s) to (s, s, C): its output is then channels_last as it comes.
        stem = copy.deepcopy(generator.stem)
        width, dim = stem.out_features // (self.start * self.start), stem.in_features
        with torch.no_grad():
            stem.weight.copy_(stem.weight.view(width, self.start, self.start, dim).permute(1, 2, 0, 3)
                              .reshape(-1, dim))
            stem.bias.copy_(stem.bias.view(width, self.start, self.start).permute(1, 2, 0).reshape(-1))
        self.stem = stem
        norms = [norm for block in generator.blocks for norm in (block.norm1, block.norm2)]
        affines = [conditional_affine(norm) for norm in norms]
        self.norm_sizes = [matrix.shape[1] for matrix, _ in affines]
        # All conditional norms' scales and shifts from one product of the class weights (B, K) @ (K, sum 2C).
        self.norm_matrix = nn.Parameter(torch.cat([m for m, _ in affines], dim=1), requires_grad=False)
        self.norm_offset = nn.Parameter(torch.cat([o for _, o in affines]), requires_grad=False)
        last = len(generator.blocks) - 1
        out_norm = norm_affine(generator.out_norm)
        self.blocks = nn.ModuleList(FastBlock(block, out_norm if i == last else None)
                                    for i, block in enumerate(generator.blocks))
        out_conv = generator.out_conv
        self.out_taps = nn.Parameter(tap_matrix(out_conv.weight), requires_grad=False)
        self.out_bias = nn.Parameter(out_conv.bias.clone(), requires_grad=False)
        self.dither = copy.deepcopy(generator.dither)
        self.plateau = copy.deepcopy(generator.plateau)
        self.noise = copy.deepcopy(generator.noise)
        # Noise added after the last block passes through out_norm, whose scale the block's weights now carry.
        self.outer_noise_scale = nn.Parameter(out_norm[0].clone().view(1, -1, 1, 1), requires_grad=False)
        self.requires_grad_(False)
        self.eval()

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = class_weights(labels, self.model_config.num_classes, z.dtype)
        norms = torch.addmm(self.norm_offset, y, self.norm_matrix).split(self.norm_sizes, dim=1)
        h = self.stem(z).view(z.shape[0], self.start, self.start, -1).permute(0, 3, 1, 2)  # channels_last, no copy
        inner, outer = noise_from_z(self.noise, z)
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, norms[2 * i], norms[2 * i + 1], inner if i == last else None)
        if outer is not None:
            h = h.add_(outer * self.outer_noise_scale)
        # The last block already applied out_norm's affine map; only its ReLU remains.
        pixels = conv3x3_by_taps(h.relu_(), self.out_taps, self.out_bias)
        return output_layer(pixels, self.model_config, *drawn_from_z(self.dither, self.plateau, z))

    def train(self, mode: bool = True) -> "InferenceGenerator":
        # Stays in eval form: generate_from_latents switches modes around its call, which must not matter here.
        return super().train(False)


def optimize(generator: Generator) -> InferenceGenerator:
    """An inference-ready copy of `generator` (on the CPU, fp32); the original is left as it is."""
    if next(generator.parameters()).device.type != "cpu" or next(generator.parameters()).dtype != torch.float32:
        generator = copy.deepcopy(generator).float().cpu()
    with torch.no_grad():  # reads weights and running statistics only: the original keeps its mode
        return InferenceGenerator(generator)


_cache: weakref.WeakKeyDictionary[Generator, tuple[tuple, InferenceGenerator]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def weights_signature(generator: nn.Module) -> tuple:
    """Changes whenever a weight or running statistic of `generator` does: every in-place update (an optimizer
    step, an EMA update, load_state_dict) bumps a tensor's version counter, and a replaced tensor has a new address."""
    tensors = [*generator.parameters(), *generator.buffers()]
    return tuple((t.data_ptr(), t._version) for t in tensors)


def can_optimize(generator: nn.Module) -> bool:
    """Whether `optimize` reproduces `generator` exactly: a plain Generator (not a subclass, which may change
    forward) in fp32 on the CPU, where the rewrite was measured."""
    if type(generator) is not Generator:
        return False
    first = next(generator.parameters())
    return first.device.type == "cpu" and first.dtype == torch.float32


def optimized(generator: Generator) -> InferenceGenerator:
    """The inference-ready copy of `generator`, built once and rebuilt only after its weights change (checked on
    every call: ~50 version counters, microseconds), so scripts that call gan.generate get the app's speed."""
    signature = weights_signature(generator)
    with _cache_lock:
        cached = _cache.get(generator)
        if cached is not None and cached[0] == signature:
            return cached[1]
    fast = optimize(generator)
    with _cache_lock:
        _cache[generator] = (signature, fast)
    return fast
