"""User-facing errors: the CLI prints these as one line and exits 2, no traceback."""


class UserError(ValueError):
    """A mistake in the user's input (config, path, trace, option), worded for them."""
