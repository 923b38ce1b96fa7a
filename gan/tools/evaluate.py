"""Command line for the evaluator and the metrics.

    python -m gan.evaluate train --dataset SRC --output evaluators/NAME      # train and save an evaluator
    python -m gan.evaluate score --model DIR --dataset SRC [--cas] [--write]  # score a generator, print JSON
    python -m gan.evaluate memorization --model DIR --dataset SRC [--write]  # add precision/recall/authenticity

`score` reports class accuracy, FD (with its real train-vs-test floor), KID, the classifier two-sample test
(C2ST: how well a fresh CNN tells generated from real training images; 0.5 = not at all), precision and recall
(k-NN manifolds of evaluator features) and authenticity (share of samples not inside the gap around a training
image), the last three beside the same figures for real test images; optionally CAS. `memorization` measures only
the last three and, with --write, adds them to an existing metrics.json.

`score` generates --per-class images of each class from seeds 0..N-1 at --truncation, so the same flags always
score the same images; CAS trains on other seeds (from 2**31). Progress goes to stderr, the JSON to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from .dependencies import require_extra

require_extra("train", "gan-evaluate")  # before the imports below need torchmetrics: one line, not a traceback

from ..data import class_counts, load_image_data  # noqa: E402
from ..errors import GanError, reports_errors  # noqa: E402
from ..model_files import METRICS_NAME  # noqa: E402
from ..models import load_generator  # noqa: E402
from ..quality.evaluator import EvaluatorConfig, open_evaluator, save_evaluator, train_evaluator  # noqa: E402
from ..quality.metrics import (SATURATING_C2ST, C2stSettings, as_image_data, c2st_of_generator,  # noqa: E402
                               cas, check_evaluator_fits, generated_batches, memorization_scores, score_generator,
                               with_provenance)
from ..quality.scores import Scores  # noqa: E402
from ..sampling import check_truncation  # noqa: E402
from ..sharing.card import write_model_card  # noqa: E402
from ..version import command_parser  # noqa: E402



def build_parser() -> argparse.ArgumentParser:
    parser, commands = command_parser("python -m gan.evaluate", __doc__)

    train = commands.add_parser("train", help="train an evaluator classifier on a dataset's train split")
    _add_data_flags(train)
    train.add_argument("--output", required=True, help="folder to write evaluator.safetensors and its config to")
    train.add_argument("--split", default="train", help="split to train on (default: train)")
    train.add_argument("--test-split", default="test", help="split to measure accuracy on (default: test)")
    train.add_argument("--image-size", type=int, default=28, help="images are resized to this (default: 28)")
    train.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: inferred from the data)")
    train.add_argument("--epochs", type=int, default=6, help="training epochs (default: 6)")
    train.add_argument("--batch-size", type=int, default=128, help="images per step (default: 128)")
    train.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (default: 3e-3)")
    train.add_argument("--width", type=int, default=16, help="channels of the first conv block (default: 16)")
    train.add_argument("--feature-dim", type=int, default=128, help="size of the feature layer (default: 128)")
    train.add_argument("--flip", action="store_true", help="also train on mirrored images (not for digits/letters)")
    train.add_argument("--seed", type=int, default=0, help="seed of init, data order and augmentation")

    score = commands.add_parser("score", help="score a generator: class accuracy, FD, KID, C2ST, precision/recall, "
                                              "authenticity, optionally CAS")
    _add_data_flags(score)
    _add_scoring_flags(score)
    score.add_argument("--cas", action="store_true", help="also train a classifier on generated images (CAS)")
    score.add_argument("--cas-per-class", type=int, help="generated training images per class for CAS "
                                                         "(default: --per-class)")
    score.add_argument("--cas-epochs", type=int, default=6, help="epochs of the CAS classifier (default: 6)")
    score.add_argument("--c2st-per-class", type=int, default=500,
                       help="generated images per class for the classifier two-sample test, against as many real "
                            "training images (default: 500, i.e. 5,000 a side for 10 classes)")
    score.add_argument("--c2st-judge", choices=("saturating", "fixed"), default="saturating",
                       help="saturating: three two-sample classifiers of different seeds, each trained for 20, "
                            "then 40, 80 and 160 epochs while its validation split still gains (as a determined "
                            "outside judge would), their mean reported; fixed: one classifier, 20 epochs, the cheaper "
                            "judge of training-time evaluations (default: saturating)")
    score.add_argument("--c2st-judges", type=int,
                       help="how many judges of consecutive seeds to average (default: 3 saturating, 1 fixed); one "
                            "judge's figure can move by 0.1 with its seed")
    score.add_argument("--no-c2st", action="store_true", help="skip the classifier two-sample test")
    score.add_argument("--no-memorization", action="store_true",
                       help="skip precision, recall and authenticity (about a minute for 60,000 training images)")
    score.add_argument("--inception", action="store_true",
                       help="also report Inception-v3 FD (needs torch-fidelity and internet for its weights)")
    score.add_argument("--write", action="store_true", help=f"write the scores to {METRICS_NAME} in the model folder")

    memorization = commands.add_parser("memorization", help="precision, recall and authenticity of a generator, "
                                                            "each beside the figure of real test images")
    _add_data_flags(memorization)
    _add_scoring_flags(memorization)
    memorization.add_argument("--write", action="store_true",
                              help=f"add the figures to the model folder's existing {METRICS_NAME} (scored with the "
                                   "same --per-class and --truncation) and regenerate its card")
    return parser


def _add_scoring_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="exported model folder (config.json + model.safetensors)")
    parser.add_argument("--evaluator", help="evaluator folder (default: evaluators/<dataset name>)")
    parser.add_argument("--split", default="test", help="real split to compare with (default: test)")
    parser.add_argument("--train-split", default="train", help="the model's training split (default: train)")
    parser.add_argument("--per-class", type=int, default=1000, help="generated images per class (default: 1000)")
    parser.add_argument("--truncation", type=float, default=1.0, help="truncation psi in (0, 1] (default: 1.0)")


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="Hub dataset id, imagefolder, or folder of IDX files")
    parser.add_argument("--image-column", help="image column of a `datasets` source")
    parser.add_argument("--label-column", help="label column of a `datasets` source")
    parser.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy 2-core machine)")


def validate(args: argparse.Namespace) -> None:
    """Reject flag values and combinations that cannot work, with one clear sentence."""
    positive = {"threads": args.threads}
    if args.command == "train":
        positive.update(epochs=args.epochs, batch_size=args.batch_size, width=args.width,
                        feature_dim=args.feature_dim)
        if args.lr <= 0:
            raise GanError(f"--lr must be positive, got {args.lr}")
    elif args.command == "score":
        positive.update(per_class=args.per_class, cas_per_class=args.cas_per_class, cas_epochs=args.cas_epochs,
                        c2st_per_class=args.c2st_per_class, c2st_judges=args.c2st_judges)
        args.truncation = check_truncation(args.truncation)
    else:
        positive.update(per_class=args.per_class)
        args.truncation = check_truncation(args.truncation)
    for name, value in positive.items():
        if value is not None and value < 1:
            raise GanError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def run_train(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    options = dict(image_size=args.image_size, image_column=args.image_column, label_column=args.label_column)
    train = load_image_data(args.dataset, split=args.split, channels=args.channels, **options)
    test = load_image_data(args.dataset, split=args.test_split, channels=train.images.shape[1], **options)
    if test.class_names != train.class_names:
        raise GanError(f"splits {args.split} and {args.test_split} name their classes differently; "
                       "an evaluator needs one set of classes")
    config = EvaluatorConfig.for_data(train, width=args.width, feature_dim=args.feature_dim)
    _log(f"training an evaluator on {len(train.labels)} images of {len(train.class_names)} classes")
    model, accuracy = train_evaluator(train, test, config, epochs=args.epochs, batch_size=args.batch_size,
                                      lr=args.lr, seed=args.seed, flip=args.flip, log=_log)
    save_evaluator(model, args.output)
    print(f"test accuracy {accuracy:.4f} on {len(test.labels)} {args.test_split} images; "
          f"evaluator written to {args.output} ({time.perf_counter() - started:.0f} s)")
    return 0


def open_scoring(args: argparse.Namespace):
    """The generator, its evaluator (and folder), and the reference and train splits that score and memorization
    compare it with."""
    generator = load_generator(args.model)
    evaluator, evaluator_dir = open_evaluator(args.dataset, args.evaluator)
    check_evaluator_fits(evaluator, generator.model_config, evaluator_source=f"the evaluator at {evaluator_dir}")
    if args.write and not Path(args.model).is_dir():
        raise GanError(f"--write needs a local model folder, and {args.model} is not one")
    config = generator.model_config
    options = dict(image_size=config.image_size, channels=config.channels, image_column=args.image_column,
                   label_column=args.label_column)
    reference = load_image_data(args.dataset, split=args.split, **options)
    train = load_image_data(args.dataset, split=args.train_split, **options)
    return generator, evaluator, evaluator_dir, reference, train


def run_score(args: argparse.Namespace) -> int:
    generator, evaluator, evaluator_dir, reference, train = open_scoring(args)
    scores = score_generator(generator, evaluator, reference, train=train, per_class=args.per_class,
                             truncation=args.truncation, inception=args.inception,
                             memorization=not args.no_memorization, log=_log)
    if not args.no_c2st:
        settings = SATURATING_C2ST if args.c2st_judge == "saturating" else C2stSettings()
        if args.c2st_judges is not None:
            settings = dataclasses.replace(settings, judges=args.c2st_judges)
        _log(f"C2ST: training {settings.judges} classifier(s) to tell generated from real training images")
        scores.c2st = c2st_of_generator(generator, train, per_class=args.c2st_per_class,
                                      truncation=args.truncation, settings=settings)
    if args.cas:
        _log("CAS: training a classifier on generated images")
        scores.cas = cas(generator, reference, evaluator.evaluator_config,
                         per_class=args.cas_per_class or args.per_class, truncation=args.truncation,
                         epochs=args.cas_epochs, log=_log)
    report = with_provenance(scores, model=str(args.model), dataset=args.dataset, reference_split=args.split,
                             train_split=args.train_split, evaluator_dir=evaluator_dir,
                             evaluator_config=evaluator.evaluator_config)
    print(json.dumps(report.to_dict(), indent=2))
    if args.write:
        (Path(args.model) / METRICS_NAME).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        card = write_model_card(args.model)  # the card must never disagree with metrics.json
        _log(f"wrote {Path(args.model) / METRICS_NAME} and updated {card}")
    return 0


def run_memorization(args: argparse.Namespace) -> int:
    metrics_path = Path(args.model) / METRICS_NAME
    existing = _read_scored(metrics_path) if args.write else {}
    if existing and (existing.get("per_class"), existing.get("truncation")) != (args.per_class, args.truncation):
        raise GanError(f"{metrics_path} scored {existing.get('per_class')} images per class at truncation "
                       f"{existing.get('truncation')}; pass the same --per-class and --truncation to add to it")
    generator, evaluator, evaluator_dir, reference, train = open_scoring(args)
    counts = class_counts(train.labels, len(train.class_names), args.per_class * len(train.class_names))
    _log(f"generating {sum(counts)} images in the training split's class mix ({counts}; seeds 0.. of each class, "
         f"truncation {args.truncation})")
    generated = as_image_data(list(generated_batches(generator, per_class=counts, truncation=args.truncation)),
                              reference.class_names)
    scores = memorization_scores(evaluator, generated, train, reference, log=_log)
    print(json.dumps(scores, indent=2))
    if args.write:
        # the other figures keep their own date; these say when they were added
        scores["memorization_date"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        metrics_path.write_text(json.dumps(Scores.from_dict({**existing, **scores}).to_dict(), indent=2) + "\n")
        card = write_model_card(args.model)
        _log(f"added precision, recall and authenticity to {metrics_path} and updated {card}")
    return 0


def _read_scored(path: Path) -> dict:
    """An existing metrics.json, or GanError: the memorization figures are added to a scored model only."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise GanError(f"cannot read {path} ({error}); score the model first with "
                       "`python -m gan.evaluate score --model DIR --dataset SRC --write`") from None


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with one `error:` line for a problem the user can fix)."""
    args = build_parser().parse_args(argv)
    validate(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"train": run_train, "score": run_score, "memorization": run_memorization}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
