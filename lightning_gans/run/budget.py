"""How long a run trains: the first run's time budget, and ``max_time`` without a per-step
collective (docs/design.md#the-first-runs-time-budget).

The default configs give each model up to 100k generator steps and ``run.time_budget`` (4.5
minutes): a first ``make train`` on a laptop shows results in minutes. That budget caps a fresh
run of one process started outside SLURM and torchrun, and nothing else: a cluster job, a
multi-process run and a resumed or extended run train for ``max_steps``. An explicit
``--trainer.max_time`` applies to every run.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.models.distributed import AGREE_EVERY, agreement_due, any_rank


def one_process(trainer: Any) -> bool:
    """Whether the trainer options ask for a single process on one device."""
    devices, accelerator = trainer.devices, str(trainer.accelerator)
    if isinstance(devices, list | tuple):
        n = len(devices)
    elif str(devices) in ("auto", "-1"):
        n = (
            1
            if accelerator == "cpu" or not torch.cuda.is_available()
            else torch.cuda.device_count()
        )
    else:
        n = int(devices) if str(devices).lstrip("-").isdigit() else 2  # "0,1": GPU ids
    return n == 1 and int(trainer.num_nodes or 1) == 1


def launched() -> bool:
    """Whether a cluster launcher started this process (SLURM's srun or an sbatch job, torchrun)."""
    return (
        SLURMEnvironment.detect()
        or "SLURM_JOB_ID" in os.environ
        or "TORCHELASTIC_RUN_ID" in os.environ
    )


def apply_time_budget(config: Any, resuming: bool) -> None:
    """Sets ``trainer.max_time`` to ``run.time_budget`` for a first run (see above), so the
    run's ``config.yaml`` shows the limit it trained under."""
    budget = config.run.time_budget
    first_run = not resuming and one_process(config.trainer) and not launched()
    if budget and config.trainer.max_time is None and first_run:
        config.trainer.max_time = budget


class AgreedTimer(Timer):
    """Lightning's ``max_time`` Timer, except that under DDP the ranks compare their clocks
    every ``check_every_n_steps`` generator steps, with one all-reduce (stop when any rank's
    time is up): Lightning's broadcasts a pickled flag on every step, a collective and host
    syncs that every training step would wait on."""

    def __init__(self, duration: Any, check_every_n_steps: int = AGREE_EVERY) -> None:
        super().__init__(duration=duration, interval="step", verbose=True)
        self.check_every = check_every_n_steps

    @property
    def state_key(self) -> str:
        return "Timer"  # the elapsed time in checkpoints written with Lightning's own Timer

    def on_train_batch_end(self, trainer, *args, **kwargs) -> None:
        remaining = self.time_remaining()  # None without a duration
        if remaining is None:
            return
        if not agreement_due(trainer.world_size, trainer.global_step, self.check_every):
            return
        (over,) = any_rank([remaining <= 0], trainer.strategy.root_device)
        if over and not trainer.should_stop:
            trainer.should_stop = True
            elapsed = timedelta(seconds=int(self.time_elapsed(RunningStage.TRAINING)))
            rank_zero_info(f"Time limit reached after {elapsed} of training: stopping.")
