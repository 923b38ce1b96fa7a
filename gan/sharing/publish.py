"""Publishing a model folder to the Hub: check that it loads strictly, (re)write its model card, upload it as one
commit; and `gan-hub push` / `python -m gan.hub push`, its command line."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import reports_errors
from ..hub import check_repo_id, upload_folder
from ..model_files import DISCRIMINATOR_FOLDER, INDEX_NAME, REAL_POOL_NAME
from ..models import load_discriminator, load_generator
from ..version import command_parser
from .card import write_model_card


def publish_folder(folder: str | Path, repo_id: str, *, private: bool | None = None, token: str | None = None,
                   commit_message: str = "Upload model", code_url: str | None = None, real_pool: bool = False,
                   training_thumbnails: bool = False) -> str:
    """Check a model folder loads strictly, (re)write its model card, and upload it as one commit. Files holding
    real images of the dataset go up only when asked: real_pool (held-out test images, for the quiz) and
    training_thumbnails (the copy check's index: every training image, shrunk)."""
    folder = Path(folder)
    check_repo_id(repo_id)
    load_generator(folder)  # refuse before uploading anything: missing, mismatched or non-safetensors weights
    if (folder / DISCRIMINATOR_FOLDER).exists():
        load_discriminator(folder)
    withheld = withheld_files(folder, real_pool=real_pool, training_thumbnails=training_thumbnails)
    write_model_card(folder, repo_id=repo_id, code_url=code_url, withheld=withheld)
    return upload_folder(folder, repo_id, private=private, token=token, commit_message=commit_message,
                         leave_out=list(withheld))


def withheld_files(folder: Path, *, real_pool: bool, training_thumbnails: bool) -> tuple[str, ...]:
    """The files of real images in folder that the owner did not agree to publish."""
    allowed = {REAL_POOL_NAME: real_pool, INDEX_NAME: training_thumbnails}
    return tuple(name for name, ok in allowed.items() if not ok and (folder / name).is_file())


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """`python -m gan.hub push DIR REPO_ID`: publish an exported model folder to the Hub."""
    parser, commands = command_parser("gan-hub", "Publish model folders to the Hub.")
    push = commands.add_parser("push", help="upload an exported model folder (with a fresh model card) as one commit")
    push.add_argument("folder", help="exported model folder, e.g. runs/NAME/export")
    push.add_argument("repo_id", help="model repo, e.g. user/fashion-mnist-cgan")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    push.add_argument("--message", default="Upload model", help="commit message")
    push.add_argument("--publish-real-pool", action="store_true",
                      help=f"also upload {REAL_POOL_NAME}: held-out real test images of the dataset, for the quiz "
                           "(only if the data's licence and its people allow it)")
    push.add_argument("--publish-training-thumbnails", action="store_true",
                      help=f"also upload {INDEX_NAME}: a thumbnail of every training image, for the copy check")
    push.add_argument("--code-url", default=None,
                      help="where the card says the `gan` package lives (a git URL pip can install from, e.g. the "
                           "Space that `python -m gan.space deploy` made)")
    args = parser.parse_args(argv)
    url = publish_folder(args.folder, args.repo_id, private=args.private or None, token=args.token,
                         commit_message=args.message, code_url=args.code_url, real_pool=args.publish_real_pool,
                         training_thumbnails=args.publish_training_thumbnails)
    print(f"pushed {args.folder} to {args.repo_id}: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
