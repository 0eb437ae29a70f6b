"""``max_time`` without a per-step collective: Lightning's Timer, with the ranks comparing
their clocks every few steps (docs/design.md#the-first-runs-time-budget)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from lightning.pytorch.callbacks import Timer
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.models.distributed import AGREE_EVERY, agreement_due, any_rank


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
