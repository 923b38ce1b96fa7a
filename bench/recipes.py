"""The recipes the quality benchmark compares: this project's, the classic cGAN tutorial's, and ablations.

Not part of the product: these exist to measure what the project's choices buy. Every recipe trains through the
project's own loop (gan.train.loop.train) with its own model builder and flags, so the comparison is the recipe,
not the plumbing.

The classic recipe is the cGAN of the Keras/PyTorch tutorials most people start from (Brownlee, "How to Develop a
Conditional GAN (cGAN) From Scratch", the Fashion-MNIST cGAN), ported to PyTorch layer for layer:
- generator: z (100) -> dense 128x7x7 + LeakyReLU; class -> embedding (50) -> dense 7x7 as one more channel;
  concatenated, then two 4x4 stride-2 transposed convolutions (128 channels, LeakyReLU 0.2) and a 7x7 conv + tanh;
- discriminator: class -> embedding (50) -> dense 28x28 as a second image channel; two 3x3 stride-2 convolutions
  (128 channels, LeakyReLU 0.2), dropout 0.4, a dense logit;
- BCE (the non-saturating loss), Adam 2e-4 with beta1 0.5, no EMA, no augmentation, batches of 64 real + 64 fake;
- Keras's default initialisation (Glorot-uniform kernels, zero biases, embeddings uniform in +-0.05), which is part
  of the recipe: with PyTorch's default initialisation the same networks saturated the generator's tanh at -1
  within 200 steps in our runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from gan.config import ModelConfig
from gan.errors import GanError
from gan.models import Discriminator, DiscriminatorBlock, class_weights
from gan.train.loop import default_models

CLASSIC_EMBEDDING = 50  # size of the class embedding in the tutorial


class ClassicModel(nn.Module):
    """What both tutorial models share: 28 px only, a class embedding mapped to one image-shaped plane, and
    Keras's default initialisation."""

    def __init__(self, config: ModelConfig, plane_size: int):
        super().__init__()
        if config.image_size != 28:
            raise GanError("the classic tutorial recipe is defined for 28 px images only")
        self.model_config = config
        self.label_embedding = nn.Embedding(config.num_classes, CLASSIC_EMBEDDING)
        self.label_map = nn.Linear(CLASSIC_EMBEDDING, plane_size * plane_size)

    def keras_init(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.uniform_(module.weight, -0.05, 0.05)
            elif isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                # Keras's Glorot counts a transposed conv's fans from its kernel (in, out) the same way.
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)


class ClassicGenerator(ClassicModel):
    """The tutorial's generator: noise and a class map concatenated at 7x7, upsampled by transposed convolutions."""

    def __init__(self, config: ModelConfig):
        super().__init__(config, plane_size=7)
        self.stem = nn.Linear(config.latent_dim, 128 * 7 * 7)
        self.up1 = nn.ConvTranspose2d(129, 128, 4, stride=2, padding=1)  # 7 -> 14
        self.up2 = nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1)  # 14 -> 28
        self.out = nn.Conv2d(128, config.channels, 7, padding=3)
        self.keras_init()

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        # Class mixtures (B, K) mix the embeddings, as the project's generator does, so the app could drive it too.
        y = class_weights(labels, self.model_config.num_classes, z.dtype) @ self.label_embedding.weight  # (B, 50)
        label_plane = self.label_map(y).view(-1, 1, 7, 7)
        h = F.leaky_relu(self.stem(z), 0.2).view(-1, 128, 7, 7)
        h = F.leaky_relu(self.up1(torch.cat([h, label_plane], dim=1)), 0.2)
        h = F.leaky_relu(self.up2(h), 0.2)
        return torch.tanh(self.out(h))


class ClassicDiscriminator(ClassicModel):
    """The tutorial's discriminator: the class as a second image channel, two strided convolutions, a dense logit."""

    def __init__(self, config: ModelConfig):
        super().__init__(config, plane_size=28)
        self.conv1 = nn.Conv2d(config.channels + 1, 128, 3, stride=2, padding=1)  # 28 -> 14
        self.conv2 = nn.Conv2d(128, 128, 3, stride=2, padding=1)  # 14 -> 7
        self.dropout = nn.Dropout(0.4)
        self.logit = nn.Linear(128 * 7 * 7, 1)
        self.keras_init()

    def forward(self, images: torch.Tensor, labels: torch.Tensor, *, per_reader: bool = False) -> torch.Tensor:
        label_plane = self.label_map(self.label_embedding(labels)).view(-1, 1, 28, 28)
        h = F.leaky_relu(self.conv1(torch.cat([images, label_plane], dim=1)), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        score = self.logit(self.dropout(h.flatten(1)))  # (B, 1): one reader (gan/train/steps.py asks per reader)
        return score if per_reader else score.squeeze(1)


class ConcatDiscriminator(Discriminator):
    """Ablation: the project's discriminator with the class given as one-hot input planes instead of projection."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        width = self.blocks[0].conv1.out_channels
        self.blocks[0] = DiscriminatorBlock(config.channels + config.num_classes, width, downsample=True, first=True)
        del self.embed  # no projection head

    def forward(self, images: torch.Tensor, labels: torch.Tensor, *, per_reader: bool = False) -> torch.Tensor:
        size = images.shape[-1]
        planes = F.one_hot(labels, self.model_config.num_classes).to(images.dtype)[:, :, None, None]
        h = torch.cat([images, planes.expand(-1, -1, size, size)], dim=1)
        h = F.relu(self.blocks(h)).sum(dim=(2, 3))
        score = self.linear(h)  # (B, 1): the network is its only reader
        return score if per_reader else score.squeeze(1)


@dataclass(frozen=True)
class Recipe:
    """A named training recipe: TrainConfig overrides and the builder of its two models."""

    name: str
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)
    build_models: Callable[[ModelConfig], tuple[nn.Module, nn.Module]] = default_models


def concat_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    generator, _ = default_models(config)
    return generator, ConcatDiscriminator(config)


def classic_models(config: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return ClassicGenerator(config), ClassicDiscriminator(config)


RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("project", "this project's defaults: ResNet G with class-conditional BN, SN projection D, hinge, "
                          "Adam 2e-4 (0, 0.9), EMA 0.999, DiffAugment"),
        Recipe("classic", "the classic cGAN tutorial: label concatenated to the inputs, DCGAN-style blocks, BCE, "
                          "Adam 2e-4 (0.5, 0.999), no EMA, no augmentation",
               overrides=dict(loss="nonsaturating", beta1=0.5, beta2=0.999, latent_dim=100, ema_decay=0.0,
                              ema_start=0, diffaugment="none"),
               build_models=classic_models),
        Recipe("no-diffaugment", "the project's recipe without DiffAugment", overrides=dict(diffaugment="none")),
        Recipe("concat-d", "the project's recipe with the class concatenated to D's input instead of projection",
               build_models=concat_models),
    )
}
# "no-ema" needs no run of its own: it is the live generator of the "project" run, scored beside its EMA.
NO_EMA = "no-ema"
