"""Never lose work: atomic checkpoint writes, ``last.ckpt`` at the last step, and preemption
handled at a step boundary: SIGUSR1 (SLURM's warning before the time limit) or SIGTERM sets a
flag, and at the end of the current step every rank agrees, ``last.ckpt`` is written and, under
SLURM, rank 0 requeues the job (docs/design.md#preemption-and-atomic-checkpoints).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file in the same directory, then renames it over the
    target: a kill during a save leaves the previous file intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        import torch

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)  # atomic on POSIX within one file system
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class LastCheckpoint(L.Callback):
    """Keeps ``last.ckpt`` current where periodic checkpoints would miss it.

    - At the end of training.
    - On SIGUSR1 or SIGTERM: the current step finishes, every rank agrees, ``last.ckpt`` is
      written, training stops and the process exits 0. The ranks compare their flags every
      ``check_every_n_steps`` generator steps (one all-reduce and a host sync under DDP, none
      on the other steps), well inside SLURM's warning time. Under SLURM rank 0 then runs
      ``scontrol requeue $SLURM_JOB_ID``; the requeued job resumes from ``last.ckpt`` in the same
      run directory. Elsewhere ``make train RESUME=<run dir>`` continues from there.
    """

    def __init__(self, check_every_n_steps: int = 10) -> None:
        self.check_every = check_every_n_steps
        self.path = Path("last.ckpt")
        self.signalled = False
        self.previous: dict[int, Any] = {}
        self.saved_step = -1

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        periodic = getattr(trainer.checkpoint_callback, "dirpath", None)  # beside periodic ones
        self.path = Path(periodic or Path(trainer.default_root_dir) / "checkpoints") / "last.ckpt"
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:
        self.signalled = True  # acted on at the next step boundary, never inside the handler

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.world_size > 1 and trainer.global_step % self.check_every:
            return  # under DDP the flags are compared every check_every steps only
        # every rank takes the same decision, or the collective calls would deadlock
        if trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            self.save(trainer)
            trainer.should_stop = True
            job = os.environ.get("SLURM_JOB_ID")
            if job and trainer.is_global_zero:
                subprocess.run(["scontrol", "requeue", job], check=False)
            again = (
                f"requeued SLURM job {job}"
                if job
                else f"resume with RESUME={self.path.parent.parent}"
            )
            rank_zero_info(
                f"preempted at generator step {trainer.global_step}: wrote {self.path}; {again}"
            )

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.global_step != self.saved_step:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # optimizers and loops too
        self.saved_step = trainer.global_step
