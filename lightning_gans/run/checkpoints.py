"""Never lose work: atomic checkpoint writes, and a checkpoint on SIGUSR1 / SIGTERM.

Under SLURM with auto-requeue, Lightning's own handler takes SIGUSR1 (it writes
``hpc_ckpt_*.ckpt`` into the run directory, requeues, and resumes from it on restart); this
callback then handles SIGTERM only. Elsewhere it handles both
(docs/design.md#preemption-and-atomic-checkpoints).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
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
    """Keeps ``last.ckpt`` current where periodic checkpoints would miss it: at the end of
    training, and on SIGUSR1 or SIGTERM, where it finishes the current step, writes
    ``last.ckpt`` beside the periodic checkpoints, stops and exits 0.
    ``make train RESUME=<run dir>`` continues from there."""

    def __init__(self) -> None:
        self.path = Path("last.ckpt")
        self.signalled = False
        self.previous: dict[int, Any] = {}
        self.saved_step = -1

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.global_step != self.saved_step:
            trainer.save_checkpoint(self.path)

    def _handler(self, signum, frame) -> None:
        self.signalled = True

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage != "fit":
            return
        periodic = trainer.checkpoint_callback
        dirpath = (
            getattr(periodic, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
        )
        self.path = Path(dirpath) / "last.ckpt"
        # private: Lightning exposes the cluster environment only on multi-device strategies
        env = trainer._accelerator_connector.cluster_environment
        slurm_requeue = isinstance(env, SLURMEnvironment) and env.auto_requeue
        signals = [signal.SIGTERM] + ([] if slurm_requeue else [signal.SIGUSR1])
        for sig in signals:
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._handler)

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        # every rank takes the same decision, or the collective calls would deadlock
        if trainer.strategy.reduce_boolean_decision(self.signalled, all=False):
            trainer.save_checkpoint(self.path)
            trainer.should_stop = True
            self.saved_step = trainer.global_step
            rank_zero_info(
                f"preempted at generator step {trainer.global_step}: wrote {self.path}; "
                f"resume with `make train ... RESUME={self.path.parent.parent}`"
            )
