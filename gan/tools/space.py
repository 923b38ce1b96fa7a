"""Deploy the demo as a Gradio Space in one command: `python -m gan.space deploy OWNER/NAME [--model SOURCE ...]`.

A Space holds the code only: app.py, the `gan` package (with pyproject.toml, so `pip install git+<space url>`
installs it), a requirements.txt for a CPU Space, .gitattributes and a README whose front matter lists the model
repos. The app reads that `models:` list and loads each model by repo id; models live in model repos of their own.
A --model that is a local folder is pushed to its model repo first (with a card that links to the Space).

Real images of the dataset (the quiz's held-out real pool, the copy check's thumbnails of every training image) go
up only with --publish-real-pool and --publish-training-thumbnails: a demo must not leak a trainer's private,
personal or licensed images. The command prints what each repo will receive before it pushes anything.

Order, so that a failed deploy leaves nothing a rerun cannot repair: check every input (repo ids, token, that every
model loads) before uploading anything; push the models; then create or update the Space in one commit, which also
deletes package files of earlier deploys that no longer exist.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..data import hub_dataset_id
from ..errors import GanError, reports_errors
from ..hub import check_repo_id, hub_errors, resolve_model_folder
from ..model_files import (CHECKOUT_ROOT, DISCRIMINATOR_FOLDER, INDEX_NAME, REAL_IMAGE_FILES, REAL_POOL_NAME,
                           SHIPPED_MODEL_NAMES, looks_like_local_path, read_json)
from ..models import load_discriminator, load_generator
from ..sharing.publish import publish_folder, withheld_files
from ..version import command_parser
from .dependencies import require_extra

# What a Space serves when no --model is given (those present in the checkout).
SHIPPED_MODELS = tuple(f"models/{name}" for name in SHIPPED_MODEL_NAMES)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# The Space runs app.py, so it needs the runtime and [app] requirements, except gradio: Spaces install the gradio of
# sdk_version themselves, and a second pin in requirements.txt would fight it.
NOT_IN_SPACE_REQUIREMENTS = ("gradio",)
GITATTRIBUTES = """\
# Binary files go through Git LFS / Xet on the Hub.
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.png filter=lfs diff=lfs merge=lfs -text
*.gif filter=lfs diff=lfs merge=lfs -text
*.jpg filter=lfs diff=lfs merge=lfs -text
*.webp filter=lfs diff=lfs merge=lfs -text
*.sqlite filter=lfs diff=lfs merge=lfs -text
"""


@dataclass(frozen=True)
class Consent:
    """Which real images of the dataset the deployer agreed to publish with the models."""

    real_pool: bool = False  # held-out test images, for the quiz
    training_thumbnails: bool = False  # the copy check's index: a thumbnail of every training image


@dataclass
class SpaceModel:
    """One model the Space serves: the repo id the app loads, and the local folder to push there (if any)."""

    repo_id: str
    folder: Path | None = None  # None: the model is already on the Hub

    def describe(self) -> str:
        return f"{self.folder} -> {self.repo_id}" if self.folder else f"{self.repo_id} (on the Hub)"


def space_models(readme: Path) -> list[str]:
    """The `models:` list of a Space README's front matter (what the deployed app serves); [] without one."""
    from huggingface_hub import metadata_load

    try:
        models = (metadata_load(readme) or {}).get("models") if readme.is_file() else None
    except Exception as error:  # a README the YAML parser cannot read: serve the defaults, but say why
        raise GanError(f"{readme} has front matter that cannot be read ({type(error).__name__}: {error})") from None
    if isinstance(models, str):
        models = [models]
    return [str(m) for m in models or [] if str(m).strip()]


def plan_models(space_id: str, specs: list[str]) -> list[SpaceModel]:
    """--model values: a Hub repo id, a local folder (pushed to OWNER/<space>-<folder name>) or FOLDER=REPO_ID."""
    owner, space_name = space_id.split("/")
    models = []
    for spec in specs:
        folder_text, _, repo_id = spec.partition("=")
        folder = Path(folder_text).expanduser()
        if repo_id or folder.is_dir() or looks_like_local_path(folder_text):
            if not folder.is_dir():
                raise GanError(f"model folder {folder_text} does not exist")
            repo_id = repo_id or f"{owner}/{space_name}-{folder.resolve().name}"
            models.append(SpaceModel(check_repo_id(repo_id), folder))
        else:
            models.append(SpaceModel(check_repo_id(spec)))
    if len({m.repo_id for m in models}) != len(models):
        raise GanError("two --model values go to the same model repo; name them with FOLDER=OWNER/NAME")
    return models


def check_models_load(models: list[SpaceModel], token: str | None, *, offline: bool) -> None:
    """Refuse before any upload: a folder whose weights do not load strictly, or a Hub model that does not (skipped
    for Hub models when offline, e.g. a dry run)."""
    for model in models:
        if model.folder is not None:
            load_generator(model.folder)
            if (model.folder / DISCRIMINATOR_FOLDER).exists():
                load_discriminator(model.folder)
        elif not offline:
            load_generator(model.repo_id, token=token)


def space_requirements(pyproject: Path) -> str:
    """requirements.txt for a CPU Space: torch from PyTorch's CPU index (no CUDA wheels), then the package's runtime
    and [app] dependencies from pyproject.toml, so the two never disagree."""
    import tomllib

    import torch

    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["app"]]
    torch_version = torch.__version__.split("+")[0]  # the version this deploy was tested with, as its CPU build
    lines = ["# Written by `python -m gan.space deploy`: what app.py needs on a CPU Space (gradio comes from the",
             "# README's sdk_version). The CPU index serves torch without the CUDA libraries (GBs a CPU never uses).",
             f"--extra-index-url {TORCH_CPU_INDEX}", f"torch=={torch_version}"]
    for requirement in wanted:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        if name != "torch" and name not in NOT_IN_SPACE_REQUIREMENTS:
            lines.append(requirement)
    return "\n".join(lines) + "\n"


def space_readme(space_id: str, models: list[SpaceModel], datasets: list[str], gradio_version: str,
                 space_url: str, consent: Consent = Consent()) -> str:
    """The Space's README.md: front matter that Spaces and app.py read (`models:` is the list the app serves, first
    = default), and a short description."""
    from huggingface_hub import SpaceCardData

    data = SpaceCardData(
        title=space_id.split("/")[1], emoji="👕", colorFrom="indigo", colorTo="pink", sdk="gradio",
        sdk_version=gradio_version, app_file="app.py", python_version="3.11",
        models=[m.repo_id for m in models], datasets=datasets or None, tags=["gan", "conditional-image-generation"],
        short_description="Class-conditional GAN: generate, interpolate, spot fakes",  # Hub max: 60
    )
    model_lines = [f"- [{m.repo_id}](../../{m.repo_id}){' (default)' if i == 0 else ''}" for i, m in enumerate(models)]
    return "\n".join([
        f"---\n{data.to_yaml()}\n---", "",
        f"# {space_id.split('/')[1]}", "",
        "A class-conditional GAN demo: generate images of a chosen class from a seed, walk the latent space between "
        "two seeds, and test yourself in a real-or-fake quiz. The app loads these model repos (the `models:` list "
        "above; the first is the default):", "", *model_lines, "",
        *data_lines(consent),
        "To keep the quiz's answers, set the Space variable `QUIZ_DATASET_REPO` (a dataset repo) and the secret "
        "`HF_TOKEN`.", "",
        f"The code is the `gan` package in this repository: `pip install \"conditional-gan @ git+{space_url}\"` "
        "installs it (install torch's CPU build first on a machine without a GPU), and "
        "`python -m gan.space deploy OWNER/NAME` redeploys a Space like this one.", "",
    ])


def data_lines(consent: Consent) -> list[str]:
    """What the Space's README says about the real images its quiz and copy check use (or lack)."""
    pool = ("The quiz's real images are each model repo's `real_pool.safetensors`: held-out test images that training "
            "exported, never seen by the model, published by the deployer's choice." if consent.real_pool else
            "No real images of the datasets were published with the models (`--publish-real-pool` was not given), "
            "so the quiz says it has no real images to show.")
    index = ("The copy check compares with a thumbnail of every training image (`neighbours.safetensors` in each "
             "model repo), published by the deployer's choice." if consent.training_thumbnails else
             "No thumbnails of the training images were published (`--publish-training-thumbnails` was not given), "
             "so the copy check says it has nothing to compare with.")
    return [pool, "", index, ""]


def check_checkout() -> None:
    """The Space is built from a checkout (app.py is not part of the installed package)."""
    if not (CHECKOUT_ROOT / "app.py").is_file() or not (CHECKOUT_ROOT / "pyproject.toml").is_file():
        raise GanError("deploy from a checkout of this project: app.py and pyproject.toml must sit beside gan/ "
                       f"(not found in {CHECKOUT_ROOT})")
    require_extra("app", "gan-space deploy")  # the Space's sdk_version is the installed gradio's


def stage_space(folder: Path, space_id: str, models: list[SpaceModel], datasets: list[str], space_url: str,
                consent: Consent = Consent()) -> list[str]:
    """Write the Space's files into folder; returns their paths, sorted."""
    import gradio

    shutil.copyfile(CHECKOUT_ROOT / "app.py", folder / "app.py")
    shutil.copyfile(CHECKOUT_ROOT / "pyproject.toml", folder / "pyproject.toml")
    shutil.copytree(CHECKOUT_ROOT / "gan", folder / "gan", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
    (folder / "requirements.txt").write_text(space_requirements(CHECKOUT_ROOT / "pyproject.toml"))
    (folder / "README.md").write_text(space_readme(space_id, models, datasets, gradio.__version__, space_url, consent))
    (folder / ".gitattributes").write_text(GITATTRIBUTES)
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def training_datasets(models: list[SpaceModel], token: str | None, *, offline: bool) -> list[str]:
    """The Hub datasets the models were trained on (from their training_config.json), for the Space's front matter."""
    found = []
    for model in models:
        if model.folder is not None:
            train = read_json(model.folder / "training_config.json")
        elif offline:
            continue
        else:
            snapshot = resolve_model_folder(model.repo_id, token=token, allow_patterns=["training_config.json"])
            train = read_json(snapshot / "training_config.json")
        dataset = hub_dataset_id(str((train or {}).get("dataset", "")))
        if dataset and dataset not in found:
            found.append(dataset)
    return found


def deploy(space_id: str, model_specs: list[str] | None = None, *, token: str | None = None, private: bool = False,
           dry_run: bool = False, consent: Consent = Consent(), log=print) -> list[str]:
    """Push the models and create or update the Space; returns the Space's file list. Real images of the dataset
    go up only as `consent` allows. A dry run checks the inputs and lists what would be uploaded, without a token or
    the network."""
    from huggingface_hub import HfApi, constants, get_token

    check_checkout()
    check_repo_id(space_id)
    if space_id.count("/") != 1:
        raise GanError(f"name the Space as OWNER/NAME, not {space_id!r}")
    specs = model_specs or [str(CHECKOUT_ROOT / m) for m in SHIPPED_MODELS
                            if (CHECKOUT_ROOT / m / "config.json").is_file()]
    models = plan_models(space_id, specs)
    token = token or get_token()
    if not dry_run and not token:
        raise GanError("deploying needs a Hub token that may write to the Space's namespace: run `hf auth login`, "
                       "set HF_TOKEN, or pass --token")
    check_models_load(models, token, offline=dry_run)
    datasets = training_datasets(models, token, offline=dry_run)
    space_url = f"{constants.ENDPOINT}/spaces/{space_id}"
    for model in models:
        if model.folder is not None:
            log(upload_plan(model, consent))
    with tempfile.TemporaryDirectory(prefix="gan-space-") as tmp:
        files = stage_space(Path(tmp), space_id, models, datasets, space_url, consent)
        if dry_run:
            log(f"dry run: would push {len(models)} model(s): " + "; ".join(m.describe() for m in models))
            log(f"dry run: would upload to Space {space_id} ({space_url}): {len(files)} files")
            for path in files:
                log(f"  {path}")
            return files
        for model in models:
            if model.folder is not None:
                log(f"pushing {model.folder} to {model.repo_id} ...")
                push_copy(model, token, private=private, code_url=space_url, consent=consent, log=log)
        api = HfApi(token=token)
        with hub_errors(space_id, None, writing=True):
            api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private or None, exist_ok=True)
            api.upload_folder(folder_path=tmp, repo_id=space_id, repo_type="space",
                              commit_message="Deploy the demo (gan.tools.space deploy)", delete_patterns=["gan/**"])
    log(f"deployed {space_id}: {space_url} ({len(files)} files; models: {', '.join(m.repo_id for m in models)})")
    return files


def upload_plan(model: SpaceModel, consent: Consent) -> str:
    """One line: the files a model folder's repo will receive, and which real images of the dataset go or stay."""
    files = sorted(p.relative_to(model.folder).as_posix() for p in model.folder.rglob("*")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model.folder).parts))
    kept = withheld_files(model.folder, real_pool=consent.real_pool, training_thumbnails=consent.training_thumbnails)
    sent = [f for f in files if f not in kept]
    if consent.training_thumbnails and INDEX_NAME not in sent:
        sent.append(f"{INDEX_NAME} (built now, if the training data is at hand)")
    real = [f"{name} ({REAL_IMAGE_FILES[name]})" for name in REAL_IMAGE_FILES if any(s.startswith(name) for s in sent)]
    flags = " / ".join(flag for flag, given in (("--publish-real-pool", consent.real_pool),
                                                ("--publish-training-thumbnails", consent.training_thumbnails))
                       if not given)
    return (f"{model.repo_id} will receive: {', '.join(sent)}. Real images of the dataset: "
            + ("; ".join(real) if real else "none") + (f" (kept here: {', '.join(kept)}; {flags} would publish them)"
                                                       if kept else ""))


def push_copy(model: SpaceModel, token: str | None, *, private: bool, code_url: str, consent: Consent = Consent(),
              log=print) -> None:
    """Push a model folder through a copy: the pushed card names the repo and the Space, and the folder (a shipped
    model, say) keeps its own card; with consent, the copy carries the copy check's index when this machine can make
    one, and the real pool."""
    with tempfile.TemporaryDirectory(prefix="gan-model-") as tmp:
        copy = Path(tmp) / model.folder.resolve().name
        shutil.copytree(model.folder, copy, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        if consent.training_thumbnails:
            attach_neighbour_index(copy, log)
        publish_folder(copy, model.repo_id, private=private or None, token=token,
                       commit_message="Upload model (gan.tools.space deploy)", code_url=code_url,
                       real_pool=consent.real_pool, training_thumbnails=consent.training_thumbnails)


def attach_neighbour_index(folder: Path, log=print) -> None:
    """Put the copy check's index (gan/explore/neighbours.py) into a model folder about to be pushed: a Space has
    neither the training data nor the evaluator to build one. Built here (or taken from this machine's cache) when the
    data is at hand; otherwise the model goes without, and the Space's copy check says so."""
    from ..explore.neighbours import index_for_model, save_index

    if (folder / INDEX_NAME).is_file():
        return
    try:
        save_index(index_for_model(folder, log=log), folder / INDEX_NAME)
    except GanError as error:
        log(f"note: {folder.name} is pushed without a copy check index ({error})")


def build_parser() -> argparse.ArgumentParser:
    parser, commands = command_parser("gan-space", __doc__)
    run = commands.add_parser("deploy", help="push the models and create or update the Gradio Space")
    run.add_argument("space_id", help="the Space, OWNER/NAME")
    run.add_argument("--model", action="append", default=None, metavar="SOURCE",
                     help="a model repo id, a model folder (pushed to OWNER/<space name>-<folder name>) or "
                          "FOLDER=OWNER/NAME; repeat for several, the first is the default "
                          f"(default: the shipped {' and '.join(SHIPPED_MODELS)}, pushed)")
    run.add_argument("--private", action="store_true", help="create the Space and the model repos as private")
    run.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    run.add_argument("--publish-real-pool", action="store_true",
                     help=f"also push each model's {REAL_POOL_NAME}: held-out real test images of its dataset, which "
                          "the quiz shows (only where the data's licence and the people in it allow it)")
    run.add_argument("--publish-training-thumbnails", action="store_true",
                     help=f"also build and push each model's {INDEX_NAME}: a thumbnail (up to 32 px) of every "
                          "training image, which the copy check compares with (28 px data: the images as they are)")
    run.add_argument("--dry-run", action="store_true", help="check the inputs and print the files; upload nothing")
    return parser


@reports_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    consent = Consent(real_pool=args.publish_real_pool, training_thumbnails=args.publish_training_thumbnails)
    deploy(args.space_id, args.model, token=args.token, private=args.private, dry_run=args.dry_run, consent=consent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
