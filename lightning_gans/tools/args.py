"""What the tools share on the command line: one line and exit 2 for a bad argument (argparse
would print its usage block), one line for a user's error, a non-finite result, a full disk or
Ctrl-C."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lightning_gans.errors import ConfigError, NonFiniteLossError
from lightning_gans.files import storage_fault
from lightning_gans.launch.run_dir import resolve_checkpoint, trust
from lightning_gans.signals import exit_interrupted


def one_line_errors(work: Callable[[], None]) -> None:
    """Runs ``work``; a ConfigError ends with its line and exit 2, a non-finite result with its
    line and exit 1 (the same codes as the training CLI)."""
    try:
        work()
    except (ConfigError, NonFiniteLossError) as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2 if isinstance(e, ConfigError) else 1)
    except KeyboardInterrupt:  # Ctrl-C: nothing half-written (results are written whole)
        exit_interrupted()
    except OSError as e:  # a full disk, a read-only or vanished directory
        fault = storage_fault(e)
        if fault is None:
            raise
        sys.stderr.write(f"error: {fault}\n")
        sys.exit(1)


def add_trust_flag(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="read CKPT as a full pickle: only for a file you trust, unpickling may run code",
    )


def trust_if_asked(args: argparse.Namespace) -> None:
    """The user's opt-in for the one file named (docs/design.md#a-checkpoint-is-untrusted-input)."""
    if args.trust_checkpoint:
        trust(resolve_checkpoint(args.ckpt, check=False))
