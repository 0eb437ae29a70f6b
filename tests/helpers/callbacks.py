"""Callbacks the tests hand to the real CLI (``--trainer.callbacks+=tests.helpers.DumpParams``)
or to ``fit(..., callbacks=[...])``."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class CountSteps(L.Callback):
    """Counts optimizer steps per optimizer through the hook every step passes."""

    def __init__(self):
        self.calls: dict[str, int] = {"generator": 0, "critic": 0}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        opt_g = pl_module.optimizers()[0].optimizer
        self.calls["generator" if optimizer is opt_g else "critic"] += 1


class DumpParams(L.Callback):
    """Each rank writes its weights, its first noise draw and its world view to the run dir."""

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.first_noise = torch.randn(4, generator=pl_module.step_noise())
        self.start = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt"
        torch.save(
            {
                "start": self.start,
                "end": pl_module.state_dict(),
                "noise": self.first_noise,
                "world_size": trainer.world_size,
                "global_step": trainer.global_step,
            },
            out,
        )


class NaNOnRank1(L.Callback):
    """Makes rank 1's generator loss NaN from generator step 3 on; rank 0 stays finite."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, *args) -> None:
        if trainer.global_rank == 1 and trainer.global_step == 3:
            loss = pl_module.generator_loss
            pl_module.generator_loss = lambda f_fake: loss(f_fake) * torch.nan
