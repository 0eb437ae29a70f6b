"""What the adversarial loop needs under DDP, where it calls the networks directly rather than
through the DDP wrapper (docs/design.md#every-parameter-in-every-backward)."""

from __future__ import annotations

import torch
from torch import Tensor


def is_distributed() -> bool:
    return torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def touch_every_parameter(loss: Tensor, net: torch.nn.Module) -> Tensor:
    """``loss`` + 0 * the sum of net's weights: under DDP every parameter must take part in
    every backward (plain strategy="ddp" raises otherwise, also for a single process, as in a
    one-task SLURM job). Without a process group, ``loss`` itself: not even the addition, whose
    graph node costs host time in every critic update."""
    if not torch.distributed.is_initialized():
        return loss
    return loss + 0.0 * sum(p.sum() for p in net.parameters())


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Batch-norm running statistics from rank 0 to all ranks, as DDP does at each forward of
    its wrapper (which never sees our forwards)."""
    if is_distributed():
        for buf in module.buffers():
            torch.distributed.broadcast(buf, src=0)


AGREE_EVERY = 10  # generator steps between the ranks' agreements (preemption, max_time)


def agreement_due(world_size: int, step: int, every: int = AGREE_EVERY) -> bool:
    """Whether the ranks compare their flags after this step: alone on every step (no
    collective), under DDP every ``every`` steps only."""
    return world_size == 1 or step % every == 0


def any_rank(flags: list[bool], device: torch.device | str) -> list[bool]:
    """Each flag, set if any rank set it: one all-reduce and one host read under DDP (the same
    answer on every rank, so every rank takes the same branch); alone, the flags themselves."""
    if not is_distributed():
        return list(flags)
    found = torch.tensor([float(f) for f in flags], device=device)
    torch.distributed.all_reduce(found, op=torch.distributed.ReduceOp.MAX)
    return [bool(v) for v in found.tolist()]
