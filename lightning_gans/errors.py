"""User-facing errors: the CLI prints their message as one line and exits with status 2."""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn


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


def plain_name(name: str) -> bool:
    """Whether ``name`` is one file or directory name: no separator, not ``.`` or ``..``, so
    it stays inside the directory it is put in."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name


def fail(message: str) -> NoReturn:
    """A user's mistake, outside the training CLI: one line, exit status 2."""
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


class OneLineParser(argparse.ArgumentParser):
    """argparse with one line and exit 2 for a bad argument (not its usage block); ``hint`` is
    added to the line."""

    def __init__(self, *args: Any, hint: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hint = hint

    def error(self, message: str) -> NoReturn:
        fail(f"{message}{self.hint}")
