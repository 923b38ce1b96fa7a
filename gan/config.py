"""Configuration dataclasses: `ModelConfig` travels with the weights, `TrainConfig` describes one training run."""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GanError
from .version import CONFIG_FORMAT, __version__

# The recipe's vocabulary, declared here so that options can be checked without importing the training code
# (gan/train/losses.py and gan/train/augment.py implement each name).
LOSSES = ("hinge", "nonsaturating", "rpgan")
DIFFAUGMENT_OPS = ("color", "translation", "cutout")


def parse_policy(policy: str | None) -> tuple[str, ...]:
    """Validate a comma-separated policy such as "color,translation,cutout"; "" or "none" means no augmentation."""
    if policy is None or policy.strip().lower() in ("", "none"):
        return ()
    names = tuple(name.strip().lower() for name in policy.split(",") if name.strip())
    unknown = [name for name in names if name not in DIFFAUGMENT_OPS]
    if unknown:
        raise GanError(f"unknown DiffAugment op(s) {unknown}; choose from {', '.join(DIFFAUGMENT_OPS)} or 'none'")
    return names


# Generators start from a small square and double it with each block: 7 for the MNIST family, 4 for powers of two.
START_RESOLUTIONS = (7, 4)
SUPPORTED_IMAGE_SIZES = (28, 32, 56, 64, 112, 128, 256)
D_NORMS = ("spectral", "none")  # discriminator layer normalisations (ModelConfig.d_norm)
# Per-image normalisations of the generator's output (ModelConfig.output_norm).
OUTPUT_NORMS = ("none", "max", "max-linear")
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
    # The white end's gain, where it differs (None: output_gain at both ends). Anti-aliased strokes (MNIST) peak a
    # few levels below 255 and hold few pure whites, while their black background is exactly 0: a shared gain of 1.1
    # clamped 8x more pixels to 255 than the data holds, and a plain tanh at both ends misses the black atom.
    white_gain: float | None = None
    # "max": each image is scaled so its brightest value is pure white (black stays black), as in data whose every
    # image was normalised that way (94% of Fashion-MNIST's images hold a 255; a generator alone left 63% without).
    # "max-linear": the same with the white end linear instead of tanh, so nothing plateaus below the brightest
    # pixel. Meant for data scaled to one brightest pixel (MNIST: 90% of digits reach 255, median one pure white,
    # strokes at 253-254; tanh's plateau made 24 pure whites a digit); on MNIST the generator then learned
    # flat-topped strokes of its own (8 a digit after 100 minutes; BENCHMARKS.md).
    output_norm: str = "none"
    # The generator adds learned noise, a fixed projection of z, to its bright pixels (models.WhiteDither), so that a
    # white plateau varies over a few grey levels instead of sitting on one value. The value is the noise's starting
    # strength in grey levels (0: no dither); the learned one is in the weights. MNIST's plateaus vary between digits
    # more than within one, and its discriminator drove this noise out (BENCHMARKS.md).
    white_dither: float = 0.0
    # With output_norm "max": grey levels added to a pixel per unit of the last layer's pre-activation above 0,
    # before the stretch, so that pixels past tanh's knee keep rising a little with x instead of all meeting at one
    # plateau: the brightest (a stroke's thickest point) becomes 255 and the rest of the plateau sits a few levels
    # below it, varying smoothly as x does, as in anti-aliased digits (MNIST: median one pure white, strokes at
    # 252-254). Saturated pixels also pass a gradient again. No weights: a model may start a run with another slope.
    white_slope: float = 0.0
    # With output_norm "max": shares of the training images whose white plateau (the commonest value within 8 levels
    # of their brightest) sits 0, 1, 2, ... grey levels below their brightest value (data.white_plateau_shares).
    # white_peaks: among images whose plateau sits below it, the shares holding 1, 2, ... pixels at the brightest
    # value. The generator draws each image's offset and peak count from z and holds its stretched pixels at that
    # level, but for that many of its brightest points (models.WhitePlateau). Empty: no plateau.
    white_plateau: list[float] = field(default_factory=list)
    white_peaks: list[float] = field(default_factory=list)
    # Noise inputs at full resolution (models.NoiseInput): per-pixel noise, a fixed projection of z, added inside the
    # generator's last block and after it with a learned strength per channel, starting at this value (0: none;
    # the features it adds to have a standard deviation of about 1-2).
    g_noise: float = 0.0
    # Normalisation of the discriminator's layers: "spectral" (SNGAN; the Lipschitz bound that hinge loss relies
    # on) or "none" (R3GAN: the gradient penalties alone keep it in check).
    d_norm: str = "spectral"
    # The discriminator also scores each image's histogram of grey levels (models.HistogramHead): a tell such as too
    # many pure whites, which its convolutions barely weigh, then costs the generator. Only the discriminator changes.
    d_histogram: bool = False
    # The discriminator also scores 5x5 patches at full resolution (models.PatchHead): texture apart from shape.
    d_patch: bool = False
    # The discriminator also scores 7x7 patches with a wider head without spectral norm (models.TextureHead).
    d_texture: bool = False
    # Share of each class in the training data (empty: uniform), for whoever draws "images like the data" (the API's
    # /model_info reports it; metrics draw their samples in the data's mix).
    class_frequencies: list[float] = field(default_factory=list)

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
        if self.white_gain is not None and not 1.0 <= self.white_gain <= 2.0:
            raise GanError(f"white_gain must be in [1, 2], got {self.white_gain}")
        if self.output_norm not in OUTPUT_NORMS:
            raise GanError(f"output_norm must be one of {', '.join(OUTPUT_NORMS)}, not {self.output_norm!r}")
        if self.output_norm == "max-linear" and self.white_gain is not None:
            raise GanError("white_gain has no meaning with output_norm max-linear, whose white end is linear; "
                           "leave it unset")
        if not 0.0 <= self.white_dither <= 16.0:
            raise GanError(f"white_dither is a strength in grey levels in [0, 16], got {self.white_dither}")
        if not 0.0 <= self.g_noise <= 4.0:
            raise GanError(f"g_noise is a starting strength in [0, 4], got {self.g_noise}")
        if not 0.0 <= self.white_slope <= 16.0:
            raise GanError(f"white_slope is in grey levels per unit of pre-activation, in [0, 16], got "
                           f"{self.white_slope}")
        for name in ("white_plateau", "white_peaks"):
            shares = getattr(self, name)
            if shares and (len(shares) > 64 or min(shares) < 0 or sum(shares) <= 0):
                raise GanError(f"{name} must be up to 64 non-negative shares, not {shares}")
        if bool(self.white_plateau) != bool(self.white_peaks):
            raise GanError("white_plateau and white_peaks come together (data.white_plateau_shares measures both)")
        problem = white_end_problem(self)
        if problem:
            raise GanError(problem)
        if self.d_norm not in D_NORMS:
            raise GanError(f"d_norm must be one of {', '.join(D_NORMS)}, not {self.d_norm!r}")
        if self.class_frequencies and (len(self.class_frequencies) != self.num_classes
                                       or min(self.class_frequencies) < 0 or sum(self.class_frequencies) <= 0):
            raise GanError(f"class_frequencies must be {self.num_classes} non-negative shares, not "
                           f"{self.class_frequencies}")
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


DATA, MODEL, RECIPE, OUTPUT, HUB = "data", "model", "recipe", "output", "Hugging Face Hub"  # train.py's help groups
PRECISIONS = ("no", "fp16", "bf16")


def option(default: Any, help: str, *, group: str, choices: tuple | None = None, metavar: str | None = None,
           required: bool = False, low: float | None = None, high: float | None = None, open: str = "[]"):
    """A TrainConfig field declared once: its default, the help text and group of its train.py flag, and the
    values it accepts (choices; low/high bounds, `open` saying which ends are excluded, e.g. "()" or "[)")."""
    return field(default=default, metadata=dict(help=help, group=group, choices=choices, metavar=metavar,
                                                required=required, low=low, high=high, open=open))


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def white_end_problem(config: "ModelConfig | TrainConfig", name: Callable[[str], str] = str) -> str | None:
    """What is wrong with a config's white-end options together with its output_norm (None: nothing), each option
    called by name(field): a field's name for a ModelConfig, its flag for a TrainConfig."""
    norm = name("output_norm")
    if config.white_dither and config.output_norm == "max-linear":
        return f"{name('white_dither')} needs a saturating white end; {norm} max-linear has none"
    if config.white_slope and config.output_norm != "max":
        return (f"{name('white_slope')} needs {norm} max: without the stretch to the brightest pixel a rising white "
                "end only clamps more pixels to pure white")
    if config.white_plateau and config.output_norm != "max":
        return f"{name('white_plateau')} needs {norm} max: its level is measured below the brightest pixel"
    return None


@dataclass
class TrainConfig(JsonConfig):
    """One training run: data, recipe, schedule and outputs. Saved as training_config.json in the output folder
    (with a format version, read back forward-compatibly, as config.json is). Every field is also a train.py flag
    (`--field-name`), built from its declaration here."""

    dataset: str = option("", "Hub dataset id (e.g. fashion_mnist, cifar10), a folder of class subfolders, or a "
                              "folder of MNIST-format IDX files (e.g. /usr/share/datasets/fashion-mnist)",
                              group=DATA, required=True)
    output_dir: str = option("runs/default", "run folder: checkpoints, samples, logs, export/",
                                             group=OUTPUT, required=True)
    split: str = option("train", "dataset split to train on", group=DATA)
    image_column: str | None = option(None, "image column of a Hub dataset (default: first Image feature)",
                                            group=DATA)
    label_column: str | None = option(None, "label column of a Hub dataset (default: first ClassLabel)", group=DATA)
    image_size: int = option(28, f"resize and center-crop images to this size; one of {SUPPORTED_IMAGE_SIZES}",
                                 group=DATA)
    channels: int | None = option(None, "1 = grey, 3 = RGB (default: inferred from the data)",
                                        group=DATA, choices=(1, 3))
    latent_dim: int = option(128, "size of the noise vector z", group=MODEL, low=1)
    g_width: int = option(32, "generator channels at full resolution (with --init-from, wider than the start "
                                  "model's: its channels grow, drawing the same images at first)", group=MODEL, low=1)
    d_width: int = option(32, "discriminator channels at full resolution", group=MODEL, low=1)
    output_gain: float = option(1.1, "generator output clamp(gain * tanh): above 1, pure white and black are "
                                     "reachable (1 = plain tanh)",
                                     group=MODEL, low=1, high=2, open="[]")
    white_gain: float | None = option(None, "the output gain at the white end only (default: --output-gain); 1 suits "
                                            "data whose whites are anti-aliased strokes, such as MNIST",
                                      group=MODEL, low=1, high=2, open="[]")
    output_norm: str = option("none", "max: scale each generated image so its brightest value is pure white, for data "
                                      "normalised that way (Fashion-MNIST); max-linear: the same with a linear white "
                                      "end, so no tanh plateau forms below the brightest pixel; none: leave it",
                              group=MODEL,
                              choices=OUTPUT_NORMS)
    white_dither: float = option(0.0, "the generator adds learned noise (a fixed projection of z) to its bright "
                                      "pixels, starting at this strength in grey levels, so white plateaus vary over "
                                      "a few levels (0: none; on MNIST training drove it out, BENCHMARKS.md)",
                                 group=MODEL, low=0, high=16, open="[]")
    white_slope: float = option(0.0, "with --output-norm max: grey levels a pixel gains per unit of the last layer's "
                                     "pre-activation above 0, so a white plateau keeps rising with it and only its "
                                     "brightest point reaches 255, as in anti-aliased strokes (MNIST: 2)",
                                group=MODEL, low=0, high=16, open="[]")
    white_plateau: bool = option(False, "with --output-norm max: measure how far below its brightest pixel each "
                                        "training image's white plateau sits (MNIST: 0-4 grey levels) and how many "
                                        "pixels reach the brightest, and have the generator draw both per image "
                                        "from those shares", group=MODEL)
    g_noise: float = option(0.0, "noise inputs at full resolution (StyleGAN's): the generator adds per-pixel noise, "
                                 "a fixed projection of z, inside its last block and after it, with a learned "
                                 "strength per channel starting here (0: none; 0.03 moves a Fashion-MNIST image by "
                                 "~1.5 grey levels; a fine-tune from a model without them starts them here)",
                            group=MODEL, low=0, high=4, open="[]")
    loss: str = option("hinge", "adversarial loss: hinge, non-saturating, or rpgan (R3GAN's relativistic pairing: "
                              "each real image must outscore a generated one of its class; use with "
                              "--gradient-penalty)", group=RECIPE, choices=LOSSES)
    gradient_penalty: float = option(0.0, "gamma of the zero-centred gradient penalties on real (R1) and generated "
                                          "(R2) images, gamma/2 (R1 + R2) (R3GAN; 0: none)", group=RECIPE, low=0)
    penalty_every: int = option(1, "apply the gradient penalties every N-th D step, N times as strongly (lazy "
                                   "regularisation: each costs a second backward pass)", group=RECIPE, low=1)
    d_norm: str = option("spectral", "discriminator normalisation: spectral norm, or none (R3GAN, with "
                                     "--gradient-penalty)", group=MODEL, choices=D_NORMS)
    d_histogram: bool = option(False, "the discriminator also scores each image's histogram of grey levels, fine near "
                                      "black and white, so that a generator's surplus of pure whites or blacks costs "
                                      "it (a fine-tune from a model without it starts the head at zero)", group=MODEL)
    d_patch: bool = option(False, "the discriminator also scores every 5x5 patch at full resolution, texture apart from "
                                  "shape (a fine-tune from a model without it starts the head at zero)", group=MODEL)
    d_texture: bool = option(False, "the discriminator also scores every 7x7 patch at full resolution with a wider "
                                    "head free of spectral norm, to see grain a few grey levels deep (a fine-tune "
                                    "from a model without it starts the head at zero)", group=MODEL)
    batch_size: int = option(64, "real images per D step, per process", group=RECIPE, low=1)
    lr_g: float = option(0.0002, "generator learning rate (Adam)", group=RECIPE, low=0, high=1, open="()")
    lr_d: float = option(0.0002, "discriminator learning rate (Adam)", group=RECIPE, low=0, high=1, open="()")
    lr_decay_steps: int = option(0, "both learning rates fall linearly to zero over the last N steps before "
                                    "--max-steps, as SNGAN and cGAN-PD train (0: constant rates)", group=RECIPE, low=0)
    beta1: float = option(0.0, "Adam beta1 for both models", group=RECIPE, low=0, high=1, open="[)")
    beta2: float = option(0.9, "Adam beta2 for both models", group=RECIPE, low=0, high=1, open="[)")
    d_steps: int = option(1, "discriminator steps per generator step", group=RECIPE, low=1)
    ema_decay: float = option(0.999, "EMA decay of generator weights", group=RECIPE, low=0, high=1, open="[)")
    ema_start: int = option(1000, "steps before the EMA starts averaging", group=RECIPE, low=0)
    diffaugment: str = option("color,translation,cutout", "comma-separated DiffAugment ops from "
                                                          "color,translation,cutout; 'none' disables",
                                                          group=RECIPE)
    max_steps: int = option(20000, "generator steps to train for", group=RECIPE, low=1)
    max_minutes: float = option(0.0, "also stop after this many minutes of training, resumes included (0: no limit); "
                                     "rerun with a larger value to train on",
                                     group=RECIPE, low=0)
    seed: int = option(0, "seed for weights, noise and data order", group=RECIPE, low=0)
    num_workers: int = option(0, "DataLoader worker processes", group=RECIPE, low=0)
    memory_format: str = option("channels_last", "tensor layout of both models: channels_last (NHWC) trained ~13%% "
                                                 "faster on this project's CPU; the results are the same up to "
                                                 "rounding",
                                                 group=RECIPE, choices=("channels_last", "contiguous"))
    cpu_threads: int | None = option(None, "torch threads per process when training on CPU (default: available cores "
                                           "/ processes)",
                                           group=RECIPE, low=1)
    checkpoint_every: int = option(1000, "steps between full-state checkpoints (0: only at the end)",
                                         group=OUTPUT, low=0)
    checkpoints_total_limit: int = option(3, "number of checkpoints to keep (0: keep all)", group=OUTPUT, low=0)
    sample_every: int = option(500, "steps between fixed-noise sample grids (0: only at the end)",
                                    group=OUTPUT, low=0)
    export_every: int = option(0, "steps between exports to OUTPUT_DIR/export (0: only at the end)",
                                  group=OUTPUT, low=0)
    eval_every: int = option(0, "steps between quality evaluations (class accuracy, FD, KID, C2ST) of the EMA "
                                "generator by the dataset's evaluator; the export whose C2ST and FD are best together "
                                "is kept in OUTPUT_DIR/best (0: never)",
                                group=OUTPUT, low=0)
    evaluator: str | None = option(None, "evaluator folder for --eval-every (default: evaluators/<dataset folder "
                                         "name>)",
                                         group=OUTPUT)
    eval_per_class: int = option(100, "generated images per class in each evaluation", group=OUTPUT, low=1)
    eval_split: str = option("test", "held-out real split evaluations compare with", group=OUTPUT)
    c2st_per_class: int = option(500, "generated images per class for the evaluations' classifier two-sample test "
                                      "(C2ST), against as many real training images",
                                      group=OUTPUT, low=1)
    sample_seeds: int = option(8, "columns of the sample grid (seeds 0..N-1), one row per class", group=OUTPUT, low=1)
    log_every: int = option(50, "steps between loss logs", group=OUTPUT, low=1)
    log_with: str | None = option(None, "accelerate trackers for losses, images/s, evaluation scores and sample "
                                        "grids, comma-separated: tensorboard, wandb, trackio, comet_ml, aim, mlflow, "
                                        "clearml, dvclive, swanlab, or all (every one installed); each must be "
                                        "installed. Sample grids go to those that take images (tensorboard, wandb, "
                                        "aim, clearml, swanlab). TensorBoard writes to OUTPUT_DIR/logs/PROJECT "
                                        "(default: no tracker)",
                                        group=OUTPUT, metavar="TRACKERS")
    tracker_project: str = option("gan", "project the --log-with trackers log under: the W&B, Trackio, Comet or "
                                         "SwanLab project, the MLflow experiment, TensorBoard's folder "
                                         "OUTPUT_DIR/logs/PROJECT; give related runs the same one to compare them "
                                         "there",
                                         group=OUTPUT, metavar="PROJECT")
    mixed_precision: str | None = option(None, "a GPU option: autocast to fp16 (with a gradient scaler) or bf16; no ="
                                               " fp32. fp16 is refused on a CPU, and on CPUs without AMX bf16 is ~12x"
                                               " slower than fp32. The precision used is recorded in "
                                               "export/training_summary.json (default: what `accelerate launch "
                                               "--mixed_precision` or `accelerate config` set, else no)",
                                               group=RECIPE, choices=PRECISIONS)
    resume: str | None = option(None, "checkpoint folder to resume from (default: the newest one in OUTPUT_DIR, if "
                                      "any)",
                                      group=OUTPUT)
    init_from: str | None = option(None, "start a new run from an exported model's weights (folder or Hub repo; fresh"
                                         " optimizers) (default: random weights)",
                                         group=OUTPUT, metavar="MODEL")
    real_pool_split: str = option("test", "held-out split exported as the quiz's pool of real images ('' for none)",
                                          group=OUTPUT)
    real_pool_size: int = option(500, "images in that pool, balanced over classes", group=OUTPUT, low=0)
    push_to_hub: str | None = option(None, "push the export (safetensors, config, samples, model card) to this model "
                                           "repo at the end (default: no push)",
                                           group=HUB, metavar="REPO_ID")
    hub_private: bool = option(False, "create the repo as private", group=HUB)
    hub_real_pool: bool = option(False, "also push real_pool.safetensors: held-out real images of the dataset for the "
                                        "quiz (only where the data's licence and its people allow it; without it, "
                                        "no image of the dataset leaves this machine)", group=HUB)
    push_every: int = option(0, "steps between pushes during training, each a commit named after its step (0: end "
                                "only)",
                                group=HUB, low=0)

    def validate(self) -> "TrainConfig":
        """Raise GanError (naming the flag) for a value or combination that cannot work; returns self. Checks that
        need the environment (installed trackers) stay in train.py."""
        for f in dataclasses.fields(self):
            check_bounds(flag_name(f.name), getattr(self, f.name), f.metadata)
        if not math.isfinite(self.max_minutes):
            raise GanError(f"--max-minutes must be a finite number, got {self.max_minutes}")
        if self.image_size not in SUPPORTED_IMAGE_SIZES:
            raise GanError(f"--image-size {self.image_size} is not supported; choose one of {SUPPORTED_IMAGE_SIZES}")
        if self.evaluator and not self.eval_every:
            raise GanError("--evaluator is used by --eval-every N; set that too")
        if self.lr_decay_steps > self.max_steps:
            raise GanError(f"--lr-decay-steps {self.lr_decay_steps} exceeds --max-steps {self.max_steps}: the rates "
                           "would start part-way down; decay over at most the whole run")
        problem = white_end_problem(self, name=flag_name)  # before any data loads, naming the flags
        if problem:
            raise GanError(problem)
        if (self.push_every or self.hub_private or self.hub_real_pool) and not self.push_to_hub:
            raise GanError("--push-every, --hub-private and --hub-real-pool need --push-to-hub REPO_ID")
        if self.push_to_hub:
            check_repo_id(self.push_to_hub)
        parse_policy(self.diffaugment)
        return self

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


def check_bounds(flag: str, value: Any, metadata: Any) -> None:
    """GanError if value is not among the field's choices or outside its bounds (None passes: it means "default")."""
    if value is None:
        return
    choices, low, high, ends = (metadata.get(k) for k in ("choices", "low", "high", "open"))
    if choices is not None and value not in choices:
        raise GanError(f"{flag} must be one of {', '.join(map(str, choices))}, got {value!r}")
    if low is not None and high is None:
        if value < low:
            raise GanError(f"{flag} must {'not be negative' if low == 0 else f'be at least {low:g}'}, got {value}")
    elif low is not None:
        above = value > low if ends[0] == "(" else value >= low
        below = value < high if ends[1] == ")" else value <= high
        if not (above and below):
            raise GanError(f"{flag} must be in {ends[0]}{low:g}, {high:g}{ends[1]}, got {value}")


def check_repo_id(repo_id: str) -> str:
    """Return repo_id if it is a valid Hub repo id, else raise GanError saying what a valid one looks like."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise GanError(f"{repo_id!r} is not a valid Hub repo id (like 'user/model-name'): {error}") from None
    return repo_id
