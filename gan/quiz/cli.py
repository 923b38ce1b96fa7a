"""`python -m gan.quiz stats [--db PATH] [--model ID] [--json]`: the quiz's results per model and class."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import reports_errors
from ..version import command_parser
from .scores import RESAMPLES, describe_interval, format_table, stats, stats_table
from .store import default_db_path


@reports_errors
def main(argv: list[str] | None = None) -> int:
    """`python -m gan.quiz stats [--db PATH] [--json]`: the quiz's results per model and class."""
    parser, commands = command_parser("python -m gan.quiz", "Results of the fake-or-real quiz.")
    show = commands.add_parser("stats", help="error, fooling and miss rates per model and class, with 95%% intervals")
    show.add_argument("--db", default=None, help="quiz database (default: QUIZ_DB, /data/quiz.sqlite or "
                                                 "~/.cache/gan/quiz.sqlite)")
    show.add_argument("--model", default=None, help="only this model id")
    show.add_argument("--json", action="store_true", help="print the full statistics as JSON")
    show.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples of sessions")
    show.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error("--resamples must be at least 1")
    results = stats(Path(args.db) if args.db else default_db_path(), model=args.model,
                    resamples=args.resamples, seed=args.seed)
    if args.json:
        print(json.dumps(results, indent=2))
    elif not results:
        print("no judgments yet")
    else:
        print(format_table(stats_table(results)))
        print(f"\n{describe_interval(args.resamples, args.seed)}. Error rate near 0.5: humans cannot tell.")
    return 0
