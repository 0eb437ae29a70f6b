"""How long a first run trains: its time budget (docs/design.md#the-first-runs-time-budget);
``callbacks/timer.py`` applies ``max_time`` without a per-step collective.

The default configs give each model up to 100k generator steps and ``run.time_budget`` (4.5
minutes): a first ``make train`` on a laptop shows results in minutes. That budget caps a fresh
run of one process started outside SLURM and torchrun, and nothing else: a cluster job, a
multi-process run and a resumed or extended run train for ``max_steps``. An explicit
``--trainer.max_time`` applies to every run.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from lightning.fabric.plugins.environments import SLURMEnvironment


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
