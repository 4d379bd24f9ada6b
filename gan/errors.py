"""The one exception type for mistakes a user can make (bad paths, bad flags, bad files).

The CLI prints the message of a `GanError` alone and exits with status 2; any other
exception is a programming error and keeps its traceback.
"""


class GanError(Exception):
    """A user-facing error whose message names the file, field or flag at fault."""
