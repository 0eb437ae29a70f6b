"""How often and how fast the networks are updated: the critic schedule, the learning-rate
schedule and the generator's moving average. Options every GAN shares."""

from __future__ import annotations

import itertools

import torch
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel

from lightning_gans.errors import ConfigError

LR_SCHEDULES = ("constant", "linear")
CRITIC_SCHEDULES = ("constant", "wgan")
# The WGAN reference code (Arjovsky et al., main.py): 100 critic iterations on the first 25
# generator iterations and on every 500th, n_critic on the others.
BURST_CRITIC, BURST_FIRST, BURST_EVERY = 100, 25, 500


def check_choice(option: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ConfigError(f"unknown {option} {value!r}; valid: {', '.join(valid)}")


def critic_iterations(schedule: str, n_critic: int, step: int) -> int:
    """Critic updates before generator update ``step`` (0-based): n_critic, or with the ``wgan``
    schedule 100 on steps 0-24 and on every 500th step, as in the WGAN reference code ("train
    the critic more at the start", when it is furthest from its optimum)."""
    if schedule == "wgan" and (step < BURST_FIRST or step % BURST_EVERY == 0):
        return max(n_critic, BURST_CRITIC)
    return n_critic


def linear_decay(optimizers: list[torch.optim.Optimizer], total: int | None) -> list[LambdaLR]:
    """Learning rates times 1 - t/T after t generator updates: 0 after the last one (step T), as
    in the WGAN-GP ResNet runs."""
    if total is None or total < 1:
        raise ConfigError(f"lr_schedule linear needs --trainer.max_steps > 0, got {total}")
    return [LambdaLR(o, lambda t, total=total: max(0.0, 1 - t / total)) for o in optimizers]


def make_ema(net: torch.nn.Module, decay: float | None) -> AveragedModel | None:
    """An exponential moving average of ``net``'s weights and batch-norm statistics:
    ema <- decay * ema + (1 - decay) * weights after each generator update (``update_ema``;
    Karras et al. 2018, Yazici et al. 2019), held in PyTorch's ``AveragedModel``. A submodule,
    so checkpointed. None without a decay."""
    if decay is None:
        return None
    return AveragedModel(net, use_buffers=True).requires_grad_(False)


@torch.no_grad()
def update_ema(ema: AveragedModel, net: torch.nn.Module, decay: float, copy: bool) -> None:
    """ema <- decay * ema + (1 - decay) * net, for weights and batch-norm statistics, or a copy
    of net when ``copy``: the arithmetic of ``AveragedModel.update_parameters`` with the EMA
    function, without its Python test of the ``n_averaged`` tensor, a host-device sync on every
    generator step. The caller decides ``copy`` from Python step counts."""
    averaged = itertools.chain(ema.module.parameters(), ema.module.buffers())
    current = itertools.chain(net.parameters(), net.buffers())
    for avg, now in zip(averaged, current, strict=True):
        if copy or not avg.is_floating_point():  # num_batches_tracked is a count: copied
            avg.copy_(now)
        else:
            avg.lerp_(now, 1 - decay)
    ema.n_averaged += 1
