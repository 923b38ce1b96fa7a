"""Models as safetensors + config.json folders, on disk or on the Hugging Face Hub (same layout in both places).

Layout of an exported model folder and of a model repo:
    config.json, model.safetensors        the EMA generator: `Generator.from_pretrained("user/repo")` just works
    discriminator/config.json, discriminator/model.safetensors
    samples.png, timelapse.gif, metrics.json, training_config.json, training_summary.json, real_pool.safetensors,
    README.md (the model card)
Loading never unpickles anything and is strict: a missing or unexpected tensor is an error. Uploads are one commit.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ..config import ModelConfig
from ..errors import GanError

WEIGHTS_NAME = "model.safetensors"
REAL_POOL_NAME = "real_pool.safetensors"  # held-out real images for the quiz: never seen in training
CONFIG_NAME = "config.json"
DISCRIMINATOR_FOLDER = "discriminator"
MODEL_FILES = ("config.json", "model.safetensors", "discriminator/*", "samples.png", "timelapse.gif",
               "metrics.json", "training_config.json", "training_summary.json", "real_pool.safetensors", "README.md",
               "directions.safetensors",  # the GANSpace directions (gan/directions.py): a few kB
               "neighbours.safetensors")  # a copy check index, where one was built into the folder (gan/neighbours.py)

# Never uploaded: hidden files, caches and pickled formats (weights travel as safetensors only).
IGNORED = [".*", "**/.*", "**/__pycache__/**", "*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt"]

M = TypeVar("M", bound="HubModelMixin")


class HubModelMixin:
    """`save_pretrained`, `from_pretrained` and `push_to_hub` for models built from a `ModelConfig` alone."""

    hub_subfolder: str = ""  # where this model lives inside a model folder or repo ("" = the root)
    model_config: ModelConfig

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write model.safetensors and config.json into directory."""
        return save_model(self, directory)  # type: ignore[arg-type]

    @classmethod
    def from_pretrained(cls: type[M], path_or_repo: str | Path, *, revision: str | None = None,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        force_download: bool = False, local_files_only: bool = False) -> M:
        """Load from a local folder or a Hub repo id (downloading only this model's two files), in eval mode.
        The Hub arguments mean what they mean in `huggingface_hub.snapshot_download`; a local folder ignores them."""
        sub = f"{cls.hub_subfolder}/" if cls.hub_subfolder else ""
        folder = resolve_model_folder(path_or_repo, revision=revision, token=token, cache_dir=cache_dir,
                                      force_download=force_download, local_files_only=local_files_only,
                                      allow_patterns=[sub + CONFIG_NAME, sub + WEIGHTS_NAME])
        return load_model(cls, model_subfolder(folder, cls))  # type: ignore[return-value]

    def push_to_hub(self, repo_id: str, *, private: bool | None = None, token: str | None = None,
                    commit_message: str | None = None) -> str:
        """Upload this model's weights and config to its place in a model repo; returns the commit URL."""
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return upload_folder(tmp, repo_id, path_in_repo=self.hub_subfolder or None, private=private,
                                 token=token, commit_message=commit_message or f"Upload {type(self).__name__}")


# ---------------------------------------------------------------------------------------------- local folders


def save_model(model: nn.Module, directory: str | Path) -> Path:
    """Write model.safetensors and config.json into directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, directory / WEIGHTS_NAME, metadata={"format": "pt", "model": type(model).__name__})
    model.model_config.save(directory / CONFIG_NAME)
    return directory


def load_model(cls: type[nn.Module], directory: str | Path) -> nn.Module:
    """Build `cls` from directory/config.json and load directory/model.safetensors strictly; returns it in eval mode."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GanError(f"model folder {directory} does not exist")
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise GanError(f"{directory} holds no {WEIGHTS_NAME}; is it an exported model folder?")
    model = cls(ModelConfig.load(directory / CONFIG_NAME))
    load_state_strictly(model, read_safetensors(weights), source=str(weights))
    return model.eval()


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (never a pickle), or GanError if it is not one."""
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise GanError(f"{path} is not a readable safetensors file ({error})") from None


def model_subfolder(folder: Path, cls: type) -> Path:
    """Where `cls` lives in a model folder: its subfolder, or the root of a folder holding that model alone."""
    sub = getattr(cls, "hub_subfolder", "")
    if not sub or (folder / sub / WEIGHTS_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        return folder / sub
    return folder if weights_metadata(folder / WEIGHTS_NAME).get("model") == cls.__name__ else folder / sub


def weights_metadata(path: Path) -> dict[str, str]:
    """The metadata header of a safetensors file ({} if unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError):
        return {}


def load_state_strictly(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """load_state_dict(strict=True), with one readable line for missing, unexpected or mis-shaped tensors."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
        if misshaped:
            k = misshaped[0]
            details.append(f"{k} has shape {tuple(state[k].shape)}, config needs {tuple(expected[k].shape)}")
        raise GanError(f"weights in {source} do not match their config.json: {'; '.join(details)}")
    model.load_state_dict(state, strict=True)


def load_generator(path_or_repo: str | Path, **hub_options):
    """The (EMA) generator of a model folder or Hub repo, in eval mode on the CPU. hub_options: revision, token,
    cache_dir, force_download, local_files_only (as in `Generator.from_pretrained`)."""
    from ..models import Generator

    return Generator.from_pretrained(path_or_repo, **hub_options)


def load_discriminator(path_or_repo: str | Path, **hub_options):
    """The discriminator of a model folder or Hub repo (its discriminator/ subfolder); hub_options as above."""
    from ..models import Discriminator

    return Discriminator.from_pretrained(path_or_repo, **hub_options)


def save_real_pool(images: torch.Tensor, labels: torch.Tensor, folder: str | Path, *, split: str) -> Path:
    """Store held-out real images (uint8 (N, C, H, W)) and their labels as real_pool.safetensors."""
    path = Path(folder) / REAL_POOL_NAME
    save_file({"images": images.permute(0, 2, 3, 1).contiguous(), "labels": labels.long().contiguous()}, path,
              metadata={"split": split, "layout": "NHWC uint8"})
    return path


def load_real_pool(folder: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out real images (uint8 (N, H, W, C)) and labels (int64 (N,)) of a model folder."""
    path = Path(folder) / REAL_POOL_NAME
    if not path.is_file():
        raise GanError(f"{folder} has no {REAL_POOL_NAME} (held-out real images); re-export the model to add one")
    pool = read_safetensors(path)
    if set(pool) != {"images", "labels"} or pool["images"].dtype != torch.uint8 or pool["images"].dim() != 4:
        raise GanError(f"{path} does not hold uint8 'images' (N, H, W, C) and 'labels'")
    return pool["images"], pool["labels"]


# ---------------------------------------------------------------------------------------------- the Hub


def looks_like_local_path(text: str) -> bool:
    """Hub ids are "name" or "owner/name"; anything rooted, relative-dotted or deeper can only be a path."""
    return text.startswith(("/", "./", "../", "~")) or text.count("/") > 1 or (
        os.sep != "/" and os.sep in text)


def check_repo_id(repo_id: str) -> str:
    """Return repo_id if it is a valid Hub repo id, else raise GanError saying what a valid one looks like."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise GanError(f"{repo_id!r} is not a valid Hub repo id (like 'user/model-name'): {error}") from None
    return repo_id


def resolve_model_folder(path_or_repo: str | Path, *, revision: str | None = None, token: str | bool | None = None,
                         cache_dir: str | Path | None = None, force_download: bool = False,
                         local_files_only: bool = False, allow_patterns: list[str] | None = None) -> Path:
    """A local model folder as is, or a Hub repo downloaded (or found in the cache) as a local snapshot folder."""
    text = str(path_or_repo)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.is_file():
        raise GanError(f"{text} is a file; give a model folder (config.json + model.safetensors) or a Hub repo id")
    if isinstance(path_or_repo, Path) or looks_like_local_path(text):
        raise GanError(f"model folder {text} does not exist")
    repo_id = check_repo_id(text)
    from huggingface_hub import snapshot_download

    with hub_errors(repo_id, revision, local_files_only=local_files_only):
        return Path(snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                      force_download=force_download, local_files_only=local_files_only,
                                      allow_patterns=allow_patterns or list(MODEL_FILES)))


def upload_folder(folder: str | Path, repo_id: str, *, path_in_repo: str | None = None, private: bool | None = None,
                  token: str | None = None, commit_message: str = "Upload model") -> str:
    """Create the repo if needed and upload the folder as one atomic commit; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with hub_errors(check_repo_id(repo_id), None, writing=True):
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, path_in_repo=path_in_repo,
                                   commit_message=commit_message, ignore_patterns=IGNORED)
    return commit.commit_url if hasattr(commit, "commit_url") else str(commit)


class hub_errors:
    """Turn the Hub client's exceptions into one GanError line that says what went wrong and what to do."""

    def __init__(self, repo_id: str, revision: str | None, *, writing: bool = False, local_files_only: bool = False):
        self.repo_id, self.revision, self.writing = repo_id, revision, writing
        self.local_files_only = local_files_only

    def __enter__(self) -> "hub_errors":
        return self

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or isinstance(error, GanError):
            return False
        from huggingface_hub import constants
        from huggingface_hub import errors as hf

        where = f"{self.repo_id}" + (f" at revision {self.revision}" if self.revision else "")
        if isinstance(error, hf.LocalTokenNotFoundError):
            message = f"uploading to {self.repo_id} needs a token: run `hf auth login`, set HF_TOKEN or pass one"
        elif isinstance(error, hf.RepositoryNotFoundError):
            message = (f"model repo {self.repo_id} was not found on {constants.ENDPOINT} (or it is private: "
                       "pass a token with access, e.g. HF_TOKEN)")
        elif isinstance(error, hf.RevisionNotFoundError):
            message = f"repo {self.repo_id} has no revision {self.revision!r}"
        elif isinstance(error, hf.LocalEntryNotFoundError) and self.local_files_only:
            message = f"{where} is not in the local cache (local_files_only=True): download it once, or pass a folder"
        elif isinstance(error, (hf.LocalEntryNotFoundError, hf.OfflineModeIsEnabled)):
            message = (f"{where} is not in the local cache and the Hub cannot be reached "
                       f"(offline mode is {'on' if constants.HF_HUB_OFFLINE else 'off'}); connect, or pass a local "
                       "model folder")
        elif isinstance(error, hf.HfHubHTTPError):
            status = getattr(getattr(error, "response", None), "status_code", "?")
            detail = str(error).splitlines()[0][:200]
            hint = " (check that the token may write to this namespace)" if self.writing and status in (401, 403) else ""
            message = f"the Hub answered {status} for {where}: {detail}{hint}"
        elif isinstance(error, (ConnectionError, OSError, TimeoutError)) or "Connect" in type(error).__name__:
            message = f"could not reach the Hub at {constants.ENDPOINT} for {where} ({type(error).__name__})"
        else:
            return False
        raise GanError(message) from error


def publish_folder(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
                   commit_message: str = "Upload model", code_url: str | None = None) -> str:
    """Check a model folder loads strictly, (re)write its model card, and upload it as one commit."""
    from ..card import write_model_card

    folder = Path(folder)
    check_repo_id(repo_id)
    load_generator(folder)  # refuse before uploading anything: missing, mismatched or non-safetensors weights
    if (folder / DISCRIMINATOR_FOLDER).exists():
        load_discriminator(folder)
    write_model_card(folder, repo_id=repo_id, code_url=code_url)
    return upload_folder(folder, repo_id, private=private, token=token, commit_message=commit_message)


def main(argv: list[str] | None = None) -> int:
    """`python -m gan.hub push DIR REPO_ID`: publish an exported model folder to the Hub."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="gan-hub", description="Publish model folders to the Hub.")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="upload an exported model folder (with a fresh model card) as one commit")
    push.add_argument("folder", help="exported model folder, e.g. runs/NAME/export")
    push.add_argument("repo_id", help="model repo, e.g. user/fashion-mnist-cgan")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    push.add_argument("--message", default="Upload model", help="commit message")
    push.add_argument("--code-url", default=None,
                      help="where the card says the `gan` package lives (a git URL pip can install from, e.g. the "
                           "Space that `python -m gan.space deploy` made)")
    args = parser.parse_args(argv)
    try:
        url = publish_folder(args.folder, args.repo_id, private=args.private or None, token=args.token,
                             commit_message=args.message, code_url=args.code_url)
    except GanError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"pushed {args.folder} to {args.repo_id}: {url}")
    return 0
