"""Publishing a model folder to the Hub: check that it loads strictly, (re)write its model card, upload it as one
commit; and `gan-hub push` / `python -m gan.hub push`, its command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .card import write_model_card
from .errors import reports_errors
from .files import DISCRIMINATOR_FOLDER
from .hub import check_repo_id, upload_folder
from .models import load_discriminator, load_generator


def publish_folder(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
                   commit_message: str = "Upload model", code_url: str | None = None) -> str:
    """Check a model folder loads strictly, (re)write its model card, and upload it as one commit."""
    folder = Path(folder)
    check_repo_id(repo_id)
    load_generator(folder)  # refuse before uploading anything: missing, mismatched or non-safetensors weights
    if (folder / DISCRIMINATOR_FOLDER).exists():
        load_discriminator(folder)
    write_model_card(folder, repo_id=repo_id, code_url=code_url)
    return upload_folder(folder, repo_id, private=private, token=token, commit_message=commit_message)


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """`python -m gan.hub push DIR REPO_ID`: publish an exported model folder to the Hub."""
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
    url = publish_folder(args.folder, args.repo_id, private=args.private or None, token=args.token,
                         commit_message=args.message, code_url=args.code_url)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
