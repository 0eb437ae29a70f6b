"""User-facing errors: the CLI prints their message as one line and exits with status 2."""

from __future__ import annotations

from typing import Any


class ConfigError(ValueError):
    """A bad value from the user (a config, a flag, a path)."""


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss, weight or sample; nothing on disk holds it."""


def require(ok: bool, option: str, value: Any, accepted: str) -> None:
    """The one form of a range error: ``<option> must be <accepted>, got <value>``."""
    if not ok:
        raise ConfigError(f"{option} must be {accepted}, got {value}")
