"""Never lose work: atomic checkpoint writes, ``last.ckpt`` at the last step, and preemption
handled at a step boundary: SIGUSR1 (SLURM's warning before the time limit) or SIGTERM is
recorded, every rank agrees at the next check, ``last.ckpt`` is written and, for SIGUSR1 under
SLURM, rank 0 requeues the job at the end (docs/design.md#preemption-and-atomic-checkpoints).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.rank_zero import rank_prefixed_message

from lightning_gans.errors import plain_name, require
from lightning_gans.files import atomic_save
from lightning_gans.lightning_internals import lightning_sigterm_off, stop_without_extra_validation
from lightning_gans.models.distributed import AGREE_EVERY, agreement_due, any_rank
from lightning_gans.run_lock import lock_lost
from lightning_gans.signals import (
    catch_signals,
    keep_caught_until_exit,
    received,
    release_signals,
    save_on_ctrl_c,
)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file in the same directory, then renames it over the
    target: a kill during a save leaves the previous file intact, never a truncated one. The
    file takes the umask as any other file does (a group can read a shared run's checkpoints)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        atomic_save(checkpoint, path)


class PeriodicCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint (``--checkpoint.*``: every N generator steps, ``last.ckpt``
    beside each), except at the end of training, where ``LastCheckpoint`` alone writes
    ``last.ckpt``. Lightning's would write it once more after the loop has closed the epoch:
    over a preemption's checkpoint taken on an epoch's last step, that state starts the next
    epoch on resume, and the resumed run is no longer the uninterrupted one."""

    def __init__(self, dirpath: str | Path | None = None, **kwargs) -> None:
        require(  # before Lightning's, which looks for the store's file-system package
            dirpath is None or "://" not in str(dirpath),
            "checkpoint.dirpath",
            repr(dirpath),
            "a local or shared directory (checkpoints are written atomically by rename, which "
            "remote stores do not offer; train into a file system and copy the run)",
        )
        super().__init__(dirpath=dirpath, **kwargs)
        name = self.filename or ""
        require(
            "{step" in name and plain_name(name),
            "checkpoint.filename",
            repr(name),
            "a file name with {step} in it, e.g. step{step:06d} (without it each save "
            "overwrites the last; the directory is --checkpoint.dirpath)",
        )
        require(
            self.save_last is True,
            "checkpoint.save_last",
            self.save_last,
            "true (resume, preemption and make eval read checkpoints/last.ckpt)",
        )
        folder = self.dirpath
        require(
            folder is None or not os.path.exists(folder) or os.path.isdir(folder),
            "checkpoint.dirpath",
            repr(folder),
            "a directory (this is a file)",
        )

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        self.trainer = trainer

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        pass

    def format_checkpoint_name(self, metrics: dict, *args, **kwargs) -> str:
        # the models log a ``step`` (the row label) on logging steps only; Lightning would name
        # the file after that, which is stale between them: the file is named after this step
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            metrics = {**metrics, "step": torch.tensor(trainer.global_step)}
        return super().format_checkpoint_name(metrics, *args, **kwargs)


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where a run's checkpoints go: beside the periodic ones, else ``<run>/checkpoints``."""
    periodic = getattr(trainer.checkpoint_callback, "dirpath", None)
    return Path(periodic or Path(trainer.default_root_dir) / "checkpoints")


class LastCheckpoint(L.Callback):
    """Keeps ``last.ckpt`` current where periodic checkpoints would miss it, and owns preemption.

    - At the end of training.
    - On SIGUSR1 or SIGTERM (recorded by ``lightning_gans/signals.py`` from the start), or a
      first Ctrl-C while training: the ranks compare their records when training starts and
      then every ``check_every_n_steps`` generator steps (one all-reduce and a host sync under
      DDP, none on the other steps; alone, every step). When any rank has one, every rank
      finishes the step, ``last.ckpt`` is written and training stops (exit 0; 130 for Ctrl-C,
      as a shell reports an interrupted command).
    - SIGUSR1 under SLURM: after the run has closed its logs, rank 0 runs ``scontrol requeue``
      (``requeue_if_preempted``); the requeued job resumes from ``last.ckpt`` in the same run
      directory. SIGTERM never requeues: a user's ``scancel`` stays done, and a preempting SLURM
      requeues the job itself. Elsewhere ``make train RESUME=<run dir>`` continues.

    Lightning's own SIGTERM handling is switched off for the fit: it would stop the loop without
    a checkpoint, and under DDP it broadcasts on every step (docs/design.md#private-lightning-apis).
    """

    def __init__(self, check_every_n_steps: int = AGREE_EVERY) -> None:
        self.check_every = check_every_n_steps
        self.path = Path("last.ckpt")
        self.saved_step = -1
        self.stopped_by: str | None = None  # "SIGUSR1", "SIGTERM" or "SIGINT": what stopped the fit

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        self.path = checkpoint_dir(trainer) / "last.ckpt"
        # already caught by the entry point; a fit started in Python gets it here, one started
        # in another thread has no signals to catch (Python delivers them to the main thread)
        catch_signals()
        save_on_ctrl_c(True)
        lightning_sigterm_off(trainer)

    @property
    def requeue(self) -> bool:
        """Whether the run stopped on SLURM's warning signal, so the job is to be requeued."""
        return self.stopped_by == "SIGUSR1" and bool(os.environ.get("SLURM_JOB_ID"))

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage == "fit" and not self.requeue:  # a requeue keeps them caught to the end
            release_signals()

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        release_signals()  # Lightning calls no teardown on an exception

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.agree(trainer)  # a signal that came while the job started is not lost

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if agreement_due(trainer.world_size, trainer.global_step, self.check_every):
            self.agree(trainer)

    def agree(self, trainer: L.Trainer) -> None:
        """Every rank takes the same decision from every rank's record (a collective under DDP,
        or the ranks would deadlock), and acts on it at this step boundary."""
        if self.stopped_by:
            return
        lost = lock_lost()  # the run directory's lock: set by its heartbeat thread, on rank 0
        mine = [lost == "taken", lost == "vanished"]
        mine += [sig in received for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)]
        got = any_rank(mine, trainer.strategy.root_device)  # under DDP: a host sync
        if not any(got):
            return
        # a SIGTERM (scancel) wins over Ctrl-C and SIGUSR1: neither of the two is requeued
        self.stopped_by = ("taken", "vanished", "SIGTERM", "SIGINT", "SIGUSR1")[got.index(True)]
        stop_without_extra_validation(trainer)
        if self.stopped_by in ("taken", "vanished"):
            self.stop_for_lost_run_dir(trainer)
            return
        self.save(trainer)
        job = os.environ.get("SLURM_JOB_ID")
        if self.stopped_by == "SIGUSR1" and job:
            then = f"requeueing SLURM job {job}"
        elif job:
            then = f"not requeued; resume with RESUME={self.run_dir}"
        else:
            then = f"resume with RESUME={self.run_dir}"
        what = "Ctrl-C" if self.stopped_by == "SIGINT" else self.stopped_by
        said = f"{what} at generator step {trainer.global_step}: wrote {self.path}; {then}"
        # every rank says it: a log shows that all of them stopped at the same step
        print(rank_prefixed_message(said, trainer.global_rank) if trainer.world_size > 1 else said,
              flush=True)  # fmt: skip

    def stop_for_lost_run_dir(self, trainer: L.Trainer) -> None:
        """Another process took the run directory over (this process looked dead to it): it
        owns the checkpoints now, and nothing is written. The directory vanished (deleted, or
        its file system unmounted): every checkpoint in it is gone, so this step's is written
        into it again, the only copy of the work left."""
        at = f"run directory {self.run_dir} {{}} at generator step {trainer.global_step}: "
        if self.stopped_by == "taken":
            self.saved_step = trainer.global_step  # so that the end of training writes none
            said = at.format("was taken over by another process") + "stopped, writing nothing"
        else:
            self.save(trainer)
            said = at.format("vanished") + f"wrote {self.path} into a new one; the earlier "
            said += "checkpoints and logs are gone"
        if trainer.is_global_zero:
            print(said, file=sys.stderr, flush=True)

    @property
    def run_dir(self) -> Path:
        return self.path.parent.parent

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.global_step != self.saved_step:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # optimizers and loops too
        self.saved_step = trainer.global_step


def requeue_if_preempted(trainer: L.Trainer) -> None:
    """The last act of a run that SIGUSR1 stopped under SLURM: rank 0 requeues the job. The
    SIGTERM that ``scontrol requeue`` then sends to every task is ignored, so each process still
    exits 0 with its files closed; nothing saves twice. Not sooner: that SIGTERM also ends W&B's
    service process, and a W&B run still open would fail."""
    last = next((cb for cb in trainer.callbacks if isinstance(cb, LastCheckpoint)), None)
    if last is None or not last.requeue:
        return
    keep_caught_until_exit()
    job = os.environ["SLURM_JOB_ID"]
    if trainer.is_global_zero:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
        if done.returncode:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            rank_zero_warn(
                f"scontrol requeue {job} failed: {why}; resume with RESUME={last.run_dir}"
            )
