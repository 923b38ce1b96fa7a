"""The one exception type the command-line tools turn into a single clear error line."""


class GanError(Exception):
    """A problem the user can fix (bad flag, bad data, bad checkpoint); the message says what and how."""
