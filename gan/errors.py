"""The one exception type the command-line tools turn into a single clear error line."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


class GanError(Exception):
    """A problem the user can fix (bad flag, bad data, bad checkpoint); the message says what and how."""


def reports_errors(main: Callable[..., int]) -> Callable[..., int]:
    """For a command's `main`: a GanError becomes one `error: ...` line on stderr and exit status 2, as argparse
    does for bad flags, instead of a traceback."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        try:
            return main(*args, **kwargs)
        except GanError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            return 2

    return wrapper
