"""The model card (README.md of a model folder or repo), generated from what the folder holds.

It reads config.json, training_config.json and metrics.json when present, so the card always tells the truth about
the weights beside it: YAML metadata (with the metrics in model-index form), the sample grid and timelapse, usage,
class names, the exact training command and configuration, the metrics with their sample counts, and the limits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..config import ModelConfig, TrainConfig
from ..data import hub_dataset_id, portable_source
from ..model_files import CONFIG_NAME, METRICS_NAME, REAL_IMAGE_FILES, portable_path, read_json
from ..quality.scores import Scores

LICENSE = "apache-2.0"
TAGS = ["gan", "conditional-image-generation", "class-conditional", "image-generation", "pytorch", "safetensors"]


# Licence and attribution of the data sets this project knows, by Hub id or by the folder name its scripts write: a
# card states them, and CC-BY data must be credited wherever its images (the real pool, the copy check's thumbnails)
# travel with the weights.
DATA_LICENCES = {
    "zalando-datasets/fashion_mnist": "Fashion-MNIST, (c) Zalando SE (Xiao, Rasul & Vollgraf 2017), MIT licence.",
    "ylecun/mnist": "MNIST (LeCun, Cortes & Burges), CC BY-SA 3.0.",
    "emoji": "emoji images from the npm packages emoji-datasource-twitter and emoji-datasource-google 16.0.0 "
             "(scripts/emoji_from_npm.py): Twemoji graphics (c) Twitter, Inc. and other contributors, licensed under "
             "CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/); Noto Emoji (c) Google Inc., licensed under "
             "the Apache License 2.0. Composited on white and resized; the images are not endorsed by their makers.",
}


def data_licence(source: str) -> str | None:
    """The licence and attribution line of the training data, if this project knows the data set."""
    return DATA_LICENCES.get(hub_dataset_id(source) or "") or DATA_LICENCES.get(Path(source.rstrip("/")).name.lower())


def eval_results(metrics: Scores, model_name: str, dataset: str | None) -> list[EvalResult]:
    """The metrics in model-index form (only those that were measured)."""
    common = dict(task_type="image-generation", task_name="Class-conditional image generation",
                  dataset_type=dataset or "custom", dataset_name=dataset or "training data",
                  dataset_split=metrics.reference_split)
    n, pr = metrics.num_samples, metrics.precision_recall or {}
    named = [
        ("accuracy", metrics.accuracy, f"Class accuracy ({n} samples, evaluator classifier)"),
        ("fd", metrics.fd, f"FD, evaluator features ({n} samples)"),
        ("fd", metrics.fd_train_test, "FD floor: real train vs real test, evaluator features"),
        ("kid", metrics.kid_mean, f"KID, evaluator features ({n} samples)"),
        ("accuracy", metrics.cas, "Classification accuracy score (CAS)"),
        ("accuracy", metrics.c2st_accuracy,
         "C2ST: held-out accuracy of a fresh real-vs-generated classifier (0.5 = indistinguishable)"),
        ("precision", pr.get("precision"),
         "Precision, k-NN manifold of evaluator features (Kynkäänniemi et al. 2019)"),
        ("recall", pr.get("recall"), "Recall, k-NN manifold of evaluator features (Kynkäänniemi et al. 2019)"),
        ("authenticity", (metrics.authenticity or {}).get("authentic"),
         "Authenticity: share of samples not inside a training image's nearest-neighbour gap"),
    ]
    return [EvalResult(metric_type=kind, metric_value=round(float(value), 6), metric_name=name, **common)
            for kind, value, name in named if isinstance(value, (int, float))]


def model_card(folder: str | Path, *, repo_id: str | None = None, name: str | None = None,
               code_url: str | None = None, withheld: tuple[str, ...] = ()) -> ModelCard:
    """Build the card of a model folder (config.json required; training_config.json and metrics.json optional).
    Titled repo_id when pushed, else name (default: the run's folder name); code_url says where the package lives."""
    folder = Path(folder)
    config = ModelConfig.load(folder / CONFIG_NAME)
    train = portable_config(read_json(folder / "training_config.json") or {})
    metrics = Scores.from_dict(read_json(folder / METRICS_NAME))
    dataset = hub_dataset_id(str(train.get("dataset", "")))
    name = repo_id or name or run_name(folder)
    data = ModelCardData(
        library_name="pytorch", license=LICENSE, tags=TAGS, datasets=[dataset] if dataset else None,
        model_name=name, eval_results=eval_results(metrics, name, dataset) or None,
    )
    body = card_body(folder, config, train, metrics, name, dataset, load_source(folder, repo_id), code_url, withheld)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def run_name(folder: Path) -> str:
    """A model folder's name: the run's folder for OUTPUT_DIR/export, best/ and their staging folders."""
    folder = folder.resolve()
    inside_run = folder.name in ("export", "best") or folder.name.startswith(".")
    return folder.parent.name if inside_run else folder.name


def load_source(folder: Path, repo_id: str | None) -> str:
    """What the card's example loads: the repo id, a relative folder as given, else a placeholder path."""
    if repo_id:
        return repo_id
    return str(folder) if not folder.is_absolute() and not folder.name.startswith(".") else f"path/to/{run_name(folder)}"


def portable_config(train: dict[str, Any]) -> dict[str, Any]:
    """training_config.json without the absolute paths of the machine that trained (output folders, local data)."""
    folders = {"output_dir": "runs", "evaluator": "evaluators", "init_from": "models", "resume": "runs"}
    portable = {k: portable_path(v, folders[k]) if k in folders and isinstance(v, str) else v for k, v in train.items()}
    if isinstance(train.get("dataset"), str):
        portable["dataset"] = portable_source(train["dataset"])
    return portable


def training_command(train: dict[str, Any]) -> str:
    """The train.py command line that a training_config.json record describes (fields of other versions ignored),
    without the paths of the machine that trained (portable_config)."""
    known = {k: v for k, v in portable_config(train).items() if k in TrainConfig.__dataclass_fields__}
    return TrainConfig(**known).to_command()


def earlier_stages_section(stages: list[dict[str, Any]]) -> list[str]:
    """The runs this model's run started from (--init-from), oldest first, each with its command and length."""
    lines = [f"This model continues {len(stages)} earlier training stage{'s' * (len(stages) > 1)} "
             "(each started from the previous one's weights with `--init-from`):", ""]
    for number, stage in enumerate(stages, 1):
        if "command" not in stage:
            lines += [f"{number}. the model {stage.get('model')}", ""]
            continue
        lines += [f"{number}. {stage.get('steps')} generator steps in {stage.get('train_hours')} hours"
                  + (f". {stage['notes']}" if stage.get("notes") else ""), "",
                  "   ```bash", f"   {stage['command']}", "   ```", ""]
    return lines + ["The last stage:", ""]


def training_section(folder: Path, config: ModelConfig, train: dict[str, Any]) -> list[str]:
    """How the model was trained: the timelapse, earlier stages, the run's summary, learning curve, command and
    configurations."""
    if (folder / "timelapse.gif").exists():
        lines = ["## Training", "", "![The fixed-noise grid during training](timelapse.gif)", ""]
    else:
        lines = ["## Training", ""]
    summary = read_json(folder / "training_summary.json") or {}
    if summary.get("earlier_stages"):
        lines += earlier_stages_section(summary["earlier_stages"])
    if summary:
        lines += [f"Trained for {summary.get('steps')} generator steps ({summary.get('images_seen')} real images seen) "
                  f"in {summary.get('train_hours')} hours of training time on {summary.get('processes')} "
                  f"{summary.get('device')} process(es), mixed precision {summary.get('mixed_precision')}, with:", ""]
        if summary.get("notes"):
            lines[-1:-1] = ["", str(summary["notes"])]
    lines += learning_curve_section(folder / "evals.jsonl")
    if train:
        lines += ["```bash", training_command(train), "```", "", "<details><summary>Training configuration</summary>",
                  "", "```json", json.dumps(train, indent=2), "```", "", "</details>", ""]
    return lines + ["<details><summary>Model configuration (config.json)</summary>", "", "```json",
                    json.dumps(config.to_dict(), indent=2), "```", "", "</details>", ""]


def card_body(folder: Path, config: ModelConfig, train: dict[str, Any], metrics: Scores, name: str,
              dataset: str | None, load_from: str, code_url: str | None, withheld: tuple[str, ...] = ()) -> str:
    channels = "grey" if config.channels == 1 else "RGB"
    source = dataset or train.get("dataset") or "an image-classification dataset"
    lines = [
        f"# {name}",
        "",
        f"A class-conditional GAN that makes {config.image_size}x{config.image_size} {channels} images of "
        f"{config.num_classes} classes, trained on {source}: a ResNet generator with class-conditional batch norm "
        "(this file's weights are its EMA copy) and a spectral-norm projection discriminator (in `discriminator/`).",
        "",
    ]
    if (folder / "samples.png").exists():
        lines += ["![One row per class, seeds 0 to N-1, truncation 1](samples.png)", ""]
    lines += [
        "## Usage", "",
        *install_lines(code_url),
        "```python",
        "from gan import load_generator, generate",
        f'generator = load_generator("{load_from}")  # revision=, token=, cache_dir=, local_files_only= as on the Hub',
        "images = generate(generator, classes=[0, 1], seeds=[42, 7], truncation=1.0)  # uint8 (2, H, W, C)",
        "```", "",
        "An image is addressed by (class, seed, truncation ψ): the same address gives the same picture on every "
        "machine. ψ in (0, 1] scales the noise (1 = no truncation).", "",
        "## Classes", "",
        " | ".join(f"{i}: {n}" for i, n in enumerate(config.class_names)), "",
    ]
    licence = data_licence(str(train.get("dataset", "")))
    lines += ["## Training data", "", f"Trained on {source}. " + (
        f"Licence and credit: {licence}" if licence else
        "Its licence is the data set's own: check it before you share images made from it."), ""]
    lines += real_images_section(folder, withheld, licence)
    lines += metrics_section(metrics)
    lines += training_section(folder, config, train)
    lines += [
        "## Limits", "",
        f"- It draws only what its {config.num_classes} classes showed it, at {config.image_size} px; "
        "samples can carry artefacts and some are not recognisable as their class.",
        "- The metrics use a small classifier trained on the same dataset, not Inception: compare them with the "
        "floor beside them and with other models scored the same way, not with published FIDs.",
        "- Generated images are synthetic: do not present them as real photographs or data.",
    ]
    return "\n".join(lines) + "\n"


def install_lines(code_url: str | None) -> list[str]:
    """How to install the `gan` package that loads these weights (torch's CPU build first where no GPU is wanted)."""
    where = (f"from [its code]({code_url}): `pip install \"conditional-gan @ git+{code_url}\"`" if code_url else
             "from a checkout of its code: `pip install .` (add `[app]` for the Gradio demo, `[train]` to train)")
    return [f"Install the `gan` package {where}. It needs only torch, huggingface_hub, safetensors, numpy and "
            "Pillow; on a machine without a GPU, install torch's CPU build first "
            "(`pip install torch --index-url https://download.pytorch.org/whl/cpu`). Then:", ""]


def learning_curve_section(path: Path) -> list[str]:
    """The run's evaluations (--eval-every) as a table, when the folder holds them."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        return []
    table = ["| step | training minutes | class accuracy | FD / floor | C2ST |", "| ---: | ---: | ---: | ---: | ---: |"]
    for r in map(Scores.from_dict, rows):
        c2st = r.c2st_accuracy
        table.append(f"| {r.step} | {'' if r.train_minutes is None else r.train_minutes} | {r.accuracy:.3f} | "
                     f"{r.fd_ratio:.1f} | {'' if c2st is None else f'{c2st:.3f}'} |")
    sizes = Scores.from_dict(rows[-1])
    return ["Evaluations during training (the run's learning curve; "
            f"{sizes.num_samples} generated images a score, C2ST on {sizes.c2st_images or 'no'} a side):", "",
            *table, ""]


def metrics_section(metrics: Scores) -> list[str]:
    """A table of the measured figures, or a note that none were measured."""
    if not metrics.measured:
        return ["## Metrics", "", "Not measured yet (`python -m gan.evaluate score --model DIR --dataset SRC --write`).", ""]
    rows = [
        ("Class accuracy (evaluator)", metrics.accuracy),
        ("Evaluator accuracy on real test images", metrics.evaluator_test_accuracy),
        ("FD (evaluator features)", metrics.fd),
        ("FD floor: real train vs real test", metrics.fd_train_test),
        ("FD / floor", metrics.fd_ratio),
        ("KID (evaluator features)", metrics.kid_mean),
        ("CAS (classifier trained on samples, tested on real)", metrics.cas),
        ("C2ST: real-vs-generated classifier accuracy (0.5 = indistinguishable)", metrics.c2st_accuracy),
        *memorization_rows(metrics),
    ]
    table = ["| metric | value |", "| --- | --- |"]
    table += [f"| {label} | {value:.4f} |" for label, value in rows if isinstance(value, (int, float))]
    per_class = (metrics.class_accuracy or {}).get("per_class") or {}
    detail = ", ".join(f"{k}: {v:.3f}" for k, v in per_class.items())
    return [
        "## Metrics", "",
        f"{metrics.num_samples} generated images ({metrics.per_class} per class, seeds 0 to "
        f"{(metrics.per_class or 1) - 1}, truncation {metrics.truncation}) against the real "
        f"{metrics.reference_split} split, measured {metrics.date or ''}.", "",
        *table, "", f"Class accuracy per class: {detail}." if detail else "", "",
        *c2st_note(metrics.c2st or {}),
        *memorization_note(metrics),
    ]


def memorization_rows(metrics: Scores) -> list[tuple[str, Any]]:
    """Precision, recall and authenticity, each followed by the same figure for real test images."""
    pr, authenticity = metrics.precision_recall or {}, metrics.authenticity or {}
    return [
        (f"Precision (k={pr.get('k')} nearest-neighbour manifold of real training images)", pr.get("precision")),
        ("Precision of real test images (reference)", pr.get("reference_precision")),
        ("Recall (real training images inside the samples' manifold)", pr.get("recall")),
        ("Recall of real test images (reference)", pr.get("reference_recall")),
        ("Authenticity (share of samples not inside a training image's nearest-neighbour gap)",
         authenticity.get("authentic")),
        ("Authenticity of real test images (reference)", authenticity.get("reference_authentic")),
    ]


def memorization_note(metrics: Scores) -> list[str]:
    """What precision, recall and authenticity mean and what they were measured on."""
    pr, authenticity = metrics.precision_recall or {}, metrics.authenticity or {}
    lines = []
    if pr.get("precision") is not None:
        lines += [f"Precision and recall (Kynkäänniemi et al. 2019) compare {pr['images_per_set']} generated images "
                  f"with as many real training images in evaluator features: a ball around each image reaching its "
                  f"k-th nearest neighbour in its own set (k = {pr['k']}) marks out that set's manifold. Precision is "
                  "the share of samples inside the real manifold (realism), recall the share of real images inside the "
                  "samples' (coverage). The reference rows score real test images in place of the samples: what a "
                  "model that draws new images from the data distribution would get."
                  + (f" Measured {metrics.memorization_date}." if metrics.memorization_date else ""), ""]
    if authenticity.get("authentic") is not None:
        lines += [f"Authenticity (after Alaa et al. 2022): a sample is unauthentic when it is at least as close to "
                  "its nearest training image as that training image is to its own nearest other training image, "
                  f"i.e. it sits inside the empty gap around one of the {authenticity['train_images']} training "
                  f"images. {authenticity['authentic']:.1%} of {authenticity['generated_images']} samples are "
                  f"authentic; {authenticity['reference_authentic']:.1%} of {authenticity['reference_images']} real "
                  "test images are (real images never seen in training fall inside such gaps too, so that, not 100%, "
                  "is the mark of a model that does not copy).", ""]
    return lines


def c2st_note(c2st: dict[str, Any]) -> list[str]:
    """What the two-sample test's figure means and how it was measured."""
    if not c2st.get("accuracy"):
        return []
    low, high = c2st["interval_95"]
    judges = c2st.get("judges")
    if judges:  # several judges of consecutive seeds: the figure is their mean
        seeds = ", ".join(str(judge["seed"]) for judge in judges)
        scored = ", ".join(f"{judge['accuracy']:.3f}" for judge in judges)
        return [f"C2ST (classifier two-sample test): {len(judges)} fresh small CNNs (seeds {seeds}: each its own split "
                f"of the images, initialisation and data order) learn to tell {c2st['images_per_set']} generated "
                f"images from as many real training images{_judges_training(judges, c2st)}. On the "
                f"{c2st['tested_images']} images each did not train on they score {scored}: "
                f"**{c2st['accuracy']:.3f}** on average (95% interval of one judge's test {low:.3f}-{high:.3f}; 0.5 = "
                f"they cannot tell them apart). They take {c2st['generated_taken_for_real']:.1%} of the held-out "
                "generated images for real.", ""]
    return [f"C2ST (classifier two-sample test): a fresh small CNN ({_judge_training(c2st, c2st)}) learns to tell "
            f"{c2st['images_per_set']} generated images from as many real training images and scores "
            f"{c2st['accuracy']:.3f} on the {c2st['tested_images']} it did not train on (95% interval "
            f"{low:.3f}-{high:.3f}; 0.5 = it cannot tell them apart). It takes "
            f"{c2st['generated_taken_for_real']:.1%} of the held-out generated images for real.", ""]


def _judge_training(judge: dict[str, Any], c2st: dict[str, Any]) -> str:
    """How one judge trained: its saturating runs' validation accuracies and the one scored, or its fixed epochs."""
    curve = judge.get("validation_curve")
    if not curve:
        return f"{c2st.get('settings', {}).get('epochs', 20)} epochs"
    return (f"one-cycle runs of {' / '.join(curve)} epochs, each longer run tried while the last gained at least 0.01 "
            f"of validation accuracy ({' / '.join(f'{a:.3f}' for a in curve.values())}); the "
            f"{judge['epochs_to_plateau']}-epoch run is scored")


def _judges_training(judges: list[dict[str, Any]], c2st: dict[str, Any]) -> str:
    """How several judges trained, in one parenthesis: the rule once, then each one's validation curve."""
    if not all(judge.get("validation_curve") for judge in judges):
        return f" ({_judge_training(judges[0], c2st)} each)"
    curves = "; ".join(f"seed {judge['seed']}: {' / '.join(f'{a:.3f}' for a in judge['validation_curve'].values())} "
                       f"after {' / '.join(judge['validation_curve'])} epochs, {judge['epochs_to_plateau']} scored"
                       for judge in judges)
    return (f" (each in one-cycle runs of growing length, the next tried while the last gained at least 0.01 of "
            f"validation accuracy, the best scored: {curves})")


def write_model_card(folder: str | Path, *, repo_id: str | None = None, name: str | None = None,
                     code_url: str | None = None, withheld: tuple[str, ...] = ()) -> Path:
    """Write README.md into the folder and return its path; withheld: files of the folder that are not published
    with it (REAL_IMAGE_FILES the owner keeps to themselves), which the card must not claim."""
    path = Path(folder) / "README.md"
    model_card(folder, repo_id=repo_id, name=name, code_url=code_url, withheld=withheld).save(path)
    return path


def real_images_section(folder: Path, withheld: tuple[str, ...], licence: str | None) -> list[str]:
    """What real images of the dataset travel with these weights (or that none do), and under which terms."""
    held = [(name, what) for name, what in REAL_IMAGE_FILES.items()
            if (folder / name).is_file() and name not in withheld]
    if not held:
        return ["No real images of the dataset are published with these weights (no quiz real pool, no copy-check "
                "thumbnails).", ""]
    lines = ["Real images of the dataset published here, by the owner's choice:", ""]
    lines += [f"- `{name}`: {what}, {image_count(folder / name)} images" for name, what in held]
    return lines + ["", f"They remain under the dataset's terms: {licence or 'see the data set.'}", ""]


def image_count(path: Path) -> int:
    """Images in a safetensors file of real images (its first dimension), from the header alone."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        key = "images" if "images" in handle.keys() else "thumbnails"
        return int(handle.get_slice(key).get_shape()[0])
