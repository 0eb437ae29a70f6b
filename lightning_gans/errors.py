"""User-facing errors: the CLI prints their message as one line and exits with status 2."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad value from the user (a config, a flag, a path). The newest one raised is kept:
    a parser that reports it inside its own error, without the exception itself (jsonargparse
    before 4.40 does so for a model option), still gives the one line."""

    newest: ConfigError | None = None

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        ConfigError.newest = self


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss, weight or sample; nothing on disk holds it."""


def require(ok: bool, option: str, value: Any, accepted: str) -> None:
    """The one form of a range error: ``<option> must be <accepted>, got <value>``."""
    if not ok:
        raise ConfigError(f"{option} must be {accepted}, got {value}")
