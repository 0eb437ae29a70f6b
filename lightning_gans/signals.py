"""The signals a scheduler sends, recorded rather than obeyed. Standard library only, so the
entry point installs it before torch is imported: a signal that arrives while Python starts is
kept, not fatal (docs/design.md#preemption-and-atomic-checkpoints).

- SIGUSR1: SLURM's warning before the time limit (``sbatch --signal=USR1@N``).
- SIGTERM: ``scancel``, preemption, and the kill that follows ``scontrol requeue``.
- SIGINT (Ctrl-C): during a fit the first one is recorded like the others; a second one, or
  one outside a fit, stops at once (``KeyboardInterrupt``, as Python has it).

``LastCheckpoint`` reads ``received`` at step boundaries; nothing acts inside a handler.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
from typing import Any, NoReturn

CAUGHT = (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT)
received: list[int] = []  # the signals this process got, in order
_previous: dict[int, Any] = {}  # the handlers catch_signals replaced, restored by release
_fitting = False  # a fit is running: the first Ctrl-C saves at the step's end (save_on_ctrl_c)
CTRL_C_SAID = (
    "\nCtrl-C: saving a checkpoint at the end of this step (Ctrl-C again stops at once, "
    "without one)\n"
)


ctrl_c: list[int] = []  # the Ctrl-Cs of this command (kept after release, for its exit status)


def _record(signum: int, frame: Any) -> None:
    if signum == signal.SIGINT:
        ctrl_c.append(signum)
    if signum == signal.SIGINT and (not _fitting or signal.SIGINT in received):
        received.append(signum)
        raise KeyboardInterrupt  # a second Ctrl-C, or one before or after the fit
    if signum == signal.SIGINT and os.environ.get("LOCAL_RANK", "0") == "0":
        os.write(2, CTRL_C_SAID.encode())  # safe in a handler, unlike print
    received.append(signum)


def save_on_ctrl_c(fitting: bool) -> None:
    """Whether the first Ctrl-C is recorded for a checkpoint at the next step boundary (while
    a fit trains) or stops at once (``KeyboardInterrupt``)."""
    global _fitting
    _fitting = fitting


def interrupted() -> bool:
    """Whether a Ctrl-C reached this process during this command."""
    return bool(ctrl_c)


INTERRUPTED = 130  # a shell's status for a command ended by Ctrl-C (128 + SIGINT)


def exit_interrupted() -> NoReturn:
    """The end of a command that Ctrl-C stopped outside a fit: one line, never a traceback."""
    sys.stderr.write("interrupted (Ctrl-C)\n")
    sys.exit(INTERRUPTED)


def main_thread() -> bool:
    """Whether this is the main thread: Python delivers signals there, and only there can a
    handler be set (a fit in a thread of a search tool has no signals to act on)."""
    return threading.current_thread() is threading.main_thread()


def catch_signals() -> None:
    """From now on SIGUSR1 and SIGTERM are only recorded, and Ctrl-C too while a fit trains
    (idempotent; in the main thread)."""
    if not main_thread():
        return
    for sig in CAUGHT:
        if signal.getsignal(sig) is not _record:
            _previous[sig] = signal.getsignal(sig)
            signal.signal(sig, _record)


def release_signals() -> None:
    """The handlers from before ``catch_signals``, back in place; the record is cleared."""
    if not main_thread():
        return
    for sig, handler in _previous.items():
        signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    _previous.clear()
    received.clear()
    save_on_ctrl_c(False)


def keep_caught_until_exit() -> None:
    """The process is ending (a requeued job): what arrives now is ignored, never fatal, also
    while Python shuts down (which resets its own handlers to the default, deadly one), and
    ``release_signals`` no longer restores the old handlers."""
    for sig in CAUGHT:
        signal.signal(sig, signal.SIG_IGN)
    _previous.clear()


if hasattr(multiprocessing.context, "ForkProcess"):  # POSIX

    class _HeldForkProcess(multiprocessing.context.ForkProcess):
        def start(self) -> None:
            held = signal.pthread_sigmask(signal.SIG_BLOCK, CAUGHT)
            try:
                super().start()  # the child is forked with the signals held, as this thread
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

    class _HeldForkContext(multiprocessing.context.ForkContext):
        Process = _HeldForkProcess


def worker_context() -> multiprocessing.context.BaseContext | None:
    """The DataLoader's ``multiprocessing_context``: a forked worker starts with the caught
    signals held (blocked, kept pending) until ``ignore_in_worker`` ignores them. torch's
    worker sets its own SIGTERM handler, which dies on a SIGTERM from anyone but its rank,
    before it calls ``worker_init_fn``: a SLURM SIGTERM in that moment killed a worker that an
    epoch's start had just forked, and its rank with it. None (the default start) where the
    start method is not fork: a spawned or forkserver child does not start from this mask."""
    if multiprocessing.get_start_method() != "fork" or not hasattr(signal, "pthread_sigmask"):
        return None
    return _HeldForkContext()


def ignore_in_worker(worker_id: int) -> None:
    """A DataLoader worker's ``worker_init_fn``: SLURM signals every process of a step, and a
    terminal's Ctrl-C every process of its foreground group, workers too; a worker killed by
    SIGTERM or ended by SIGINT would crash its rank before the rank can save. It dies
    with its rank instead (Linux: ``PR_SET_PDEATHSIG``): a worker that outlived a SIGKILLed rank
    0 was measured holding the rank's inherited TCPStore port, so the requeued job, which gets
    the same port from its job id, could not start."""
    for sig in CAUGHT:
        signal.signal(sig, signal.SIG_IGN)  # a signal held since the fork is dropped here
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, CAUGHT)  # held by worker_context's start
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
