"""Cheap what-ifs on one model before a run is spent on them: the same two-sample classifier on its fakes as they
are, and on fakes from a run's checkpoints (one step's EMA weights, or their mean over a range of steps: a longer
average), at another truncation, blurred (fakes only), or the share of a larger pool that the model's own
discriminator scores highest in each class (rejection by the discriminator, Azadi et al. 2019, in its simplest form).

    python bench/c2st_variants.py --model models/fashion-mnist --dataset /usr/share/datasets/fashion-mnist \
        --run runs/fmnist-patch --variants model mean:16000:21500 step:21500 truncation:0.9 blur:0.25 d-top:0.5

Real images are the training split in the model's class mix; fakes the model's seeds 0..n-1 of each class (as
`gan.evaluate score` takes them); the classifier is the judge's CNN trained --epochs on the whole training half
(4,000 a side: ~2 minutes on one core). Differences under ~0.03 are within what separates two such runs: confirm a
winner with `python -m gan.evaluate score`. A checkpoint's EMA weights keep the running statistics they were saved
with (a mean of checkpoints: the mean of theirs).

The judge's own spread: `--budgets 20 40 80 160 --per-class 500 --seeds 0 1 2` are the three judges of the cards
(their mean is the card's figure), and other seeds rerun it with other splits, initialisations and data orders
(BENCHMARKS.md: 0.72 to 0.83 on one Fashion-MNIST model for one judge of 20-80 epochs):

    python bench/c2st_variants.py --model models/fashion-mnist --dataset /usr/share/datasets/fashion-mnist \
        --per-class 500 --budgets 20 40 80 160 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from c2st_cues import as_uint8, blur  # noqa: E402
from gan.data import class_counts, load_image_data, stratified_subset, to_model_range  # noqa: E402
from gan.models import Generator, load_discriminator, load_generator  # noqa: E402
from gan.quality.metrics import FLOOR_SEED, SATURATING_C2ST, C2stSettings, c2st, generated_batches  # noqa: E402
from gan.train.checkpoints import checkpoint_folder  # noqa: E402

EMA_FILE = "custom_checkpoint_0.pkl"  # accelerate's name for the first registered object: the EMA (loop.py)


def checkpoint_ema(run: Path, step: int) -> dict[str, torch.Tensor]:
    return torch.load(checkpoint_folder(run, step) / EMA_FILE, weights_only=False)


def mean_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {key: (sum(s[key].double() for s in states) / len(states)).to(states[0][key].dtype) for key in states[0]}


def variant_fakes(variant: str, model: Generator, run: Path | None, counts: list[int], g_width: int | None = None,
                  model_dir: str | None = None) -> torch.Tensor:
    """uint8 fakes of one variant: model | step:N | mean:FIRST:LAST (every 500 steps) | truncation:T | blur:A |
    d-top:F (model_dir's discriminator keeps the best-scored share F of each class's seeds)."""
    kind, *values = variant.split(":")
    if kind == "d-top":
        return discriminator_preferred(model, load_discriminator(model_dir).eval(), counts, float(values[0]))
    generator, truncation = model, 1.0
    if kind in ("step", "mean"):
        if run is None:
            raise SystemExit(f"{variant} needs --run")
        steps = [int(values[0])] if kind == "step" else range(int(values[0]), int(values[1]) + 1, 500)
        generator = Generator(replace(model.model_config, g_width=g_width or model.model_config.g_width)).eval()
        generator.load_state_dict(mean_state([checkpoint_ema(run, step) for step in steps]))
    elif kind == "truncation":
        truncation = float(values[0])
    fakes = torch.cat([images for _, images in generated_batches(generator, per_class=counts, truncation=truncation)])
    if kind == "blur":  # part of each fake replaced by its 3x3 blur: does a smoother output pass?
        share = float(values[0])
        fakes = as_uint8((1 - share) * fakes.float() + share * blur(fakes))
    return fakes


def discriminator_preferred(model: Generator, discriminator: torch.nn.Module, counts: list[int], share: float
                            ) -> torch.Tensor:
    """Per class, the counts[c] fakes the discriminator scores highest among counts[c] / share seeds."""
    pool = [int(-(-count // share)) for count in counts]
    kept = []
    for label, images in generated_batches(model, per_class=pool, truncation=1.0, batch_size=max(pool)):
        with torch.no_grad():
            scores = discriminator(to_model_range(images), torch.full((len(images),), label))
        kept.append(images[scores.argsort(descending=True)[:counts[label]]])
    return torch.cat(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model folder (its config builds the checkpoints' generator)")
    parser.add_argument("--dataset", required=True, help="the model's dataset (its training split is the real set)")
    parser.add_argument("--run", type=Path, help="run folder whose checkpoints step: and mean: read")
    parser.add_argument("--variants", nargs="+", default=["model"])
    parser.add_argument("--g-width", type=int, help="the run's generator width, where it widened the model's")
    parser.add_argument("--per-class", type=int, default=400, help="images a side per class")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--budgets", type=int, nargs="+", help="a saturating judge of these epoch budgets instead "
                        "(gan.evaluate score's: 20 40 80 160; with --per-class 500 and --seeds 0 1 2 its three "
                        "judges exactly)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="judge seeds (its split, initialisation "
                        "and data order): one line each; the spread between them is the judge's own")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="append one JSON line per variant here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_generator(args.model).eval()
    config = model.model_config
    real = load_image_data(args.dataset, split="train", image_size=config.image_size, channels=config.channels)
    counts = class_counts(real.labels, config.num_classes, args.per_class * config.num_classes)
    real_images = stratified_subset(real, counts, seed=FLOOR_SEED).images
    for variant in args.variants:
        fakes = variant_fakes(variant, model, args.run, counts, args.g_width, args.model)
        for seed in args.seeds:
            started = time.perf_counter()
            settings = (replace(SATURATING_C2ST, budgets=tuple(args.budgets), seed=seed, judges=1) if args.budgets
                        else C2stSettings(epochs=args.epochs, seed=seed))
            scored = c2st(real_images, fakes, settings=settings)
            line = {"model": args.model, "variant": variant, "seed": seed, "accuracy": round(scored["accuracy"], 4),
                    "interval_95": [round(v, 4) for v in scored["interval_95"]],
                    "epochs": scored.get("validation_curve", args.epochs), "images_per_set": scored["images_per_set"],
                    "minutes": round((time.perf_counter() - started) / 60, 1)}
            print(json.dumps(line), flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(line) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
