"""A class-conditional GAN for the Hugging Face ecosystem: train with accelerate, share safetensors on the Hub.

    from gan import load_generator, generate
    generator = load_generator("models/fashion-mnist")         # a folder or a Hub repo id (revision=, token=, ...)
    images = generate(generator, classes=[0, 7], seeds=[1, 2])  # (2, 28, 28, 1) uint8
"""

from .config import ModelConfig, TrainConfig
from .errors import GanError
from .model_files import load_real_pool, save_model
from .models import Discriminator, Generator, load_discriminator, load_generator
from .sampling import class_grid, generate, interpolate, latent_from_seed
from .sharing.publish import publish_folder
from .version import __version__

__all__ = [
    "Discriminator", "GanError", "Generator", "ModelConfig", "TrainConfig", "class_grid", "generate",
    "interpolate", "latent_from_seed", "load_discriminator", "load_generator", "load_real_pool", "publish_folder",
    "save_model", "__version__",
]
