"""Configuration dataclasses: `ModelConfig` travels with the weights, `TrainConfig` describes one training run."""

from __future__ import annotations

import dataclasses
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GanError
from .version import CONFIG_FORMAT, __version__

# Generators start from a small square and double it with each block: 7 for the MNIST family, 4 for powers of two.
START_RESOLUTIONS = (7, 4)
SUPPORTED_IMAGE_SIZES = (28, 32, 56, 64, 112, 128, 256)
FORMAT_KEY = "format_version"  # in every config.json this package writes


def check_format(version: Any, source: str) -> None:
    """Refuse a config written in a newer major format (or an unreadable version); older and newer minors pass."""
    try:
        major = int(str(version).split(".")[0])
    except ValueError:
        raise GanError(f"{source} has an unreadable {FORMAT_KEY} {version!r} (expected like {CONFIG_FORMAT!r})") from None
    if major > int(CONFIG_FORMAT.split(".")[0]):
        raise GanError(f"{source} uses config format {version}, newer than this version's {CONFIG_FORMAT} "
                       f"(package {__version__}): upgrade the package (`pip install -U conditional-gan`) to load it")


class JsonConfig:
    """A dataclass config saved as a JSON object with a format version (see gan/version.py).

    Reading is forward-compatible within a major format: fields a newer minor version added are skipped with a
    warning (this version cannot use them); a newer major format is refused, since its fields may mean other things.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config"):
        values = dict(values)
        check_format(values.pop(FORMAT_KEY, "1.0"), source)
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            warnings.warn(f"{source}: ignoring fields {unknown} that this version ({__version__}) does not know; "
                          "they were written by a newer version of this package", stacklevel=2)
            values = {k: v for k, v in values.items() if k in known}
        try:
            return cls(**values)
        except TypeError as error:
            raise GanError(f"{source} is not a valid {cls.__name__}: {error}") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({FORMAT_KEY: CONFIG_FORMAT, **self.to_dict()}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path):
        try:
            values = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise GanError(f"no {Path(path).name} at {Path(path).parent}; is it a model folder?") from None
        except json.JSONDecodeError as error:
            raise GanError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(values, dict):
            raise GanError(f"{path} does not hold a JSON object")
        return cls.from_dict(values, source=str(path))


@dataclass
class ModelConfig(JsonConfig):
    """Everything needed to rebuild the generator and discriminator; saved as config.json beside the weights."""

    image_size: int = 28  # height = width of generated images, in pixels
    channels: int = 1  # 1 = grey, 3 = RGB
    num_classes: int = 10  # number of class labels the models are conditioned on
    class_names: list[str] = field(default_factory=list)  # human-readable name of each class index
    latent_dim: int = 128  # size of the noise vector z
    g_width: int = 32  # generator channels at full resolution; lower resolutions get up to 8x this
    d_width: int = 32  # discriminator channels at full resolution; lower resolutions get up to 8x this
    max_width_multiplier: int = 8  # cap on the channel multiplier at low resolutions
    default_truncation: float = 1.0  # truncation psi that the app and the quiz use unless told otherwise
    # The generator's last layer is clamp(output_gain * tanh(x), -1, 1). tanh alone (gain 1, models of versions
    # before 0.2) never reaches -1 or 1, so its images never hold the pure whites and blacks that most real ones do;
    # with a gain above 1 the output saturates once |tanh(x)| >= 1 / gain, as quantized real pixels do.
    output_gain: float = 1.0

    def __post_init__(self) -> None:
        if not self.class_names:
            self.class_names = [str(i) for i in range(self.num_classes)]
        self.validate()

    def validate(self) -> None:
        """Raise GanError for a configuration the architecture cannot build."""
        if self.image_size not in SUPPORTED_IMAGE_SIZES:
            raise GanError(
                f"image size {self.image_size} is not supported; pick one of {', '.join(map(str, SUPPORTED_IMAGE_SIZES))} "
                "(the generator doubles a 4x4 or 7x7 start)"
            )
        if self.channels not in (1, 3):
            raise GanError(f"channels must be 1 (grey) or 3 (RGB), not {self.channels}")
        if self.num_classes < 2:
            raise GanError(f"a class-conditional GAN needs at least 2 classes, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise GanError(f"{len(self.class_names)} class names given for {self.num_classes} classes")
        if self.latent_dim < 1 or self.g_width < 1 or self.d_width < 1 or self.max_width_multiplier < 1:
            raise GanError("latent_dim, g_width, d_width and max_width_multiplier must be positive")
        if not 1.0 <= self.output_gain <= 2.0:
            raise GanError(f"output_gain must be in [1, 2], got {self.output_gain}")
        if not 0.0 < self.default_truncation <= 1.0:
            raise GanError(f"default_truncation must be in (0, 1], got {self.default_truncation}")

    @property
    def start_resolution(self) -> int:
        """Side of the first feature map of the generator (and last of the discriminator)."""
        for start in START_RESOLUTIONS:
            ratio, rest = divmod(self.image_size, start)
            if rest == 0 and ratio & (ratio - 1) == 0 and ratio >= 4:
                return start
        raise GanError(f"image size {self.image_size} is not a power-of-two multiple of 4 or 7")

    @property
    def num_blocks(self) -> int:
        """Number of 2x resolution changes between the start resolution and the image."""
        return (self.image_size // self.start_resolution).bit_length() - 1

    def width_at(self, base: int, level: int) -> int:
        """Channels at `level` halvings below full resolution (0 = full resolution)."""
        return base * min(2**level, self.max_width_multiplier)


@dataclass
class TrainConfig:
    """One training run: data, recipe, schedule and outputs. Saved as training_config.json in the output folder."""

    dataset: str = ""  # Hub dataset id, imagefolder path, or folder of MNIST-format IDX files
    output_dir: str = "runs/default"  # checkpoints, samples, logs and export/ go here
    split: str = "train"  # dataset split to train on
    image_column: str | None = None  # image column of a `datasets` source (default: first Image feature)
    label_column: str | None = None  # label column of a `datasets` source (default: first ClassLabel feature)
    # model
    image_size: int = 28  # images are resized and center-cropped to this
    channels: int | None = None  # 1 or 3; None = infer from the data
    latent_dim: int = 128  # size of z
    g_width: int = 32  # generator base width
    d_width: int = 32  # discriminator base width
    output_gain: float = 1.1  # generator output clamp(gain * tanh(x)): 1.1 saturates at |tanh| >= 0.91 (1 = tanh)
    # recipe
    loss: str = "hinge"  # "hinge" or "nonsaturating"
    batch_size: int = 64  # real images per discriminator step, per process
    lr_g: float = 2e-4  # generator Adam learning rate
    lr_d: float = 2e-4  # discriminator Adam learning rate
    beta1: float = 0.0  # Adam beta1; 0 is the usual choice for spectrally normalised GANs
    beta2: float = 0.9  # Adam beta2
    d_steps: int = 1  # discriminator steps per generator step
    ema_decay: float = 0.999  # decay of the EMA generator's weights
    ema_start: int = 1000  # steps before the EMA begins averaging (it copies the generator until then)
    diffaugment: str = "color,translation,cutout"  # DiffAugment policy; "" or "none" disables it
    max_steps: int = 20000  # generator steps to train for
    max_minutes: float = 0.0  # also stop after this many minutes of training steps, resumes included (0 = no limit)
    seed: int = 0  # seeds weights, noise and data order
    num_workers: int = 0  # DataLoader workers; data is in memory, so 0 is usually fastest
    memory_format: str = "channels_last"  # layout of both models' tensors: "channels_last" (NHWC, ~13% faster CPU
    #                                      steps measured here, the usual choice on GPUs) or "contiguous" (NCHW)
    cpu_threads: int | None = None  # torch threads per process on CPU; None = available cores / processes
    # outputs
    checkpoint_every: int = 1000  # steps between full-state checkpoints (0 = only at the end)
    checkpoints_total_limit: int = 3  # checkpoints kept; older ones are deleted
    sample_every: int = 500  # steps between fixed-noise sample grids (0 = only at the end)
    export_every: int = 0  # steps between exports of the EMA generator to export/ (0 = only at the end)
    eval_every: int = 0  # steps between quality evaluations of the EMA generator (0 = never); the best is kept in best/
    evaluator: str | None = None  # evaluator folder for those (default: evaluators/<dataset folder name>)
    eval_per_class: int = 100  # generated images per class each evaluation scores
    eval_split: str = "test"  # real split they are compared with
    c2st_per_class: int = 500  # generated images per class for the evaluations' two-sample test (C2ST), against as
    #                            many real training images; fewer than ~500 a class leave its classifier half-trained
    sample_seeds: int = 8  # columns of the sample grid: seeds 0..N-1, one row per class
    log_every: int = 50  # steps between loss logs (and NaN checks)
    # accelerate trackers, comma-separated ("tensorboard", "tensorboard,wandb"; "all" = every installed one); a
    # string, as in versions that took one tracker, so their training_config.json files still load and resume
    log_with: str | None = None
    tracker_project: str = "gan"  # project name the trackers log under (TensorBoard: the folder logs/<name>)
    mixed_precision: str | None = None  # "no", "fp16" or "bf16"; None = what `accelerate launch`/config set
    resume: str | None = None  # checkpoint folder to resume from; None = the newest in output_dir
    init_from: str | None = None  # exported model (folder or repo) whose G, EMA and D weights start a new run
    real_pool_split: str = "test"  # held-out split whose images are exported as the quiz's real pool ("" = none)
    real_pool_size: int = 500  # real images in that pool, balanced over classes
    # Hub
    push_to_hub: str | None = None  # model repo id to push the export to at the end (and with push_every)
    hub_private: bool = False  # create that repo as private
    push_every: int = 0  # steps between pushes of the export during training (0 = only at the end)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_command(self, launcher: str = "accelerate launch train.py") -> str:
        """The train.py command line that reproduces this configuration (flags that differ from the defaults).
        --resume is left out: it names where a run was picked up, and rerunning the command resumes by itself."""
        defaults, parts = TrainConfig(), [launcher]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "resume":
                continue
            if f.name in ("dataset", "output_dir") or value != getattr(defaults, f.name):
                flag = "--" + f.name.replace("_", "-")
                if isinstance(value, bool):
                    parts += [flag] if value else []
                elif value is not None:
                    text = str(value)
                    parts += [flag, f"'{text}'" if not text or any(c in text for c in " ,;&|") else text]
        return " ".join(parts)
