"""The one exception type the CLI turns into a single clear error line."""


class RelmError(Exception):
    """A user-facing error: bad input, missing data or model, wrong configuration.

    The message names the file or thing at fault and, where it helps, what to do.
    """
