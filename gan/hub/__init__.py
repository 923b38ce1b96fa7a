"""Models on the Hugging Face Hub: `from_pretrained` / `push_to_hub` for our models, resolving a repo id (or a
folder) to a local folder, uploading a folder as one commit, and the Hub client's errors as one readable line.
The file format itself lives in gan/model_files.py; publishing a model folder (check, card, upload) in
gan/sharing/publish.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TypeVar

from ..config import ModelConfig, check_repo_id  # noqa: F401 - check_repo_id is part of this module's API
from ..errors import GanError
from ..model_files import (CONFIG_NAME, MODEL_FILES, WEIGHTS_NAME, load_model, looks_like_local_path, model_subfolder,
                           save_model)

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
                  token: str | None = None, commit_message: str = "Upload model", leave_out: list[str] = ()) -> str:
    """Create the repo if needed and upload the folder as one atomic commit, without the files leave_out names
    (paths relative to the folder); returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with hub_errors(check_repo_id(repo_id), None, writing=True):
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, path_in_repo=path_in_repo,
                                   commit_message=commit_message, ignore_patterns=[*IGNORED, *leave_out])
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
