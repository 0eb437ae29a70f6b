"""User-facing errors: the CLI prints their message as one line and exits with status 2."""


class ConfigError(ValueError):
    """A bad value from the user (a config, a flag, a path)."""
