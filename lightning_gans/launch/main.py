"""Entry point of ``python -m lightning_gans`` and ``lightning-gans``: a user's mistake ends
with one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

import re
import sys

from lightning.fabric.utilities.exceptions import MisconfigurationException

from lightning_gans.callbacks.checkpoints import LastCheckpoint
from lightning_gans.errors import ConfigError, NonFiniteLossError
from lightning_gans.files import storage_fault
from lightning_gans.launch.cli import build_cli
from lightning_gans.launch.console import quiet_lightning
from lightning_gans.launch.run_dir import MADE, release_failed_run_dir
from lightning_gans.launch.trainer_checks import trainer_error
from lightning_gans.signals import (
    INTERRUPTED,
    ctrl_c,
    exit_interrupted,
    interrupted,
    release_signals,
)


def main(args: list[str] | None = None) -> None:
    quiet_lightning()
    before = len(MADE)  # run directories set up by earlier runs in this process
    ctrl_c.clear()  # of an earlier command in this process
    try:
        status = exit_status(build_cli(args))  # a stop's checkpoint and its line are written
        if status:
            sys.exit(status)
    except (KeyboardInterrupt, SystemExit) as e:
        if not interrupted():
            raise
        # Ctrl-C outside a fit, or a second one: Lightning exits 1 from its own handler
        if isinstance(e, KeyboardInterrupt):
            exit_interrupted()
        sys.exit(INTERRUPTED)
    except Exception as e:
        cause = user_error(e)
        fault = storage_fault(e) if cause is None else None
        if fault:  # a full disk, a read-only or vanished directory: not the user's mistake
            sys.stderr.write(f"error: {fault}\n")
            sys.exit(1)
        if cause is None:
            raise
        made = len(MADE) > before  # a directory of this call's own
        if isinstance(cause, ConfigError) and made:  # a run that never began leaves none
            release_failed_run_dir()
        lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
        sys.stderr.write(f"error: {lines[-1] if lines else type(cause).__name__}\n")
        sys.exit(2 if isinstance(cause, ConfigError) else 1)
    finally:
        release_signals()  # on every way out (a requeued job keeps them: callbacks/checkpoints.py)


def exit_status(cli) -> int:
    """0 for a fit that ended or was preempted (a scheduler's signal: its job is requeued or
    done); 130 for one that Ctrl-C stopped; 1 for one whose run directory was lost to it."""
    trainer = getattr(cli, "trainer", None)
    last = [c for c in getattr(trainer, "callbacks", []) if isinstance(c, LastCheckpoint)]
    stopped_by = last[0].stopped_by if last else None
    return {"SIGINT": INTERRUPTED, "taken": 1, "vanished": 1}.get(stopped_by, 0)


def user_error(e: BaseException | None) -> BaseException | None:
    """The ConfigError or NonFiniteLossError behind e (jsonargparse and Lightning wrap them);
    Lightning's MisconfigurationException (a bad --trainer.* value) as a ConfigError."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, ConfigError | NonFiniteLossError):
            return e
        if isinstance(e, MisconfigurationException):
            return trainer_error(e)
        if isinstance(e, MemoryError | RuntimeError) and "allocate" in str(e):
            return ConfigError(out_of_memory(str(e)))
        newest = ConfigError.newest  # reported inside the parser's own error, not chained
        if newest is not None and str(newest) and str(newest) in str(e):
            return newest
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def out_of_memory(message: str) -> str:
    """One line for an allocation that failed (a net, batch or sample set too large here)."""
    asked = re.search(r"allocate (\d+) bytes", message)
    size = f"{int(asked[1]) / 1e9:.1f} GB" if asked else "more than there is"
    return (
        f"out of memory: a tensor of {size} did not fit; make the model (--model.*), the "
        "batch (--data.batch_size) or the evaluation (--fid.n_samples) smaller"
    )


if __name__ == "__main__":
    main()
