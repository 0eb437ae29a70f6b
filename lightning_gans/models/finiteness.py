"""The finiteness guard every model has: a NaN or infinite loss (or weight) stops training on
every rank at the same step, before anything is logged or saved with it
(docs/design.md#a-nan-stops-every-rank)."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_gans.errors import NonFiniteLossError
from lightning_gans.models.distributed import is_distributed

NEVER = torch.iinfo(torch.long).max  # "no non-finite loss yet", above every step
GUARD_EVERY = 10  # steps between finiteness checks when nothing is logged


class FinitenessGuard:
    """A mixin of ``GenerativeModule``: ``check_finite`` notes on the device, ``verify_finite``
    acts on logging steps and at every save."""

    _first_bad: dict[str, Tensor]  # loss name -> first non-finite step, or NEVER

    def check_finite(self, step: int | None = None, **losses: Tensor) -> None:
        """Notes, on the device and without waiting for it, the first step (default: this one)
        at which each loss was NaN/inf (steps only grow, so the minimum is the first).
        ``verify_finite`` acts on it before anything is logged or saved."""
        step = self.global_step if step is None else step
        for name, value in losses.items():
            first = self._first_bad.get(name)
            if first is None:
                first = self._first_bad[name] = torch.full((), NEVER, device=value.device)
            bad_at = torch.where(torch.isfinite(value.detach()).all(), NEVER, step)
            torch.minimum(first, bad_at, out=first)
        # with logging off (log_every_n_steps 0) nothing would act on it until the next save:
        # the guard must not depend on the logging cadence
        trainer = self.attached_trainer
        off = trainer is not None and trainer.log_every_n_steps == 0
        if off and step % GUARD_EVERY == 0:
            self.verify_finite()

    def verify_finite(self, weights: bool = False) -> None:
        """Stops training if a loss was non-finite on any rank: on logging steps and before
        every checkpoint save, so no checkpoint holds weights updated with it. With
        ``weights`` (at a save) also if any parameter or buffer is: a finite loss can still
        meet a non-finite gradient (fp32/bf16 overflow, Adam on an inf). The ranks agree (one
        all-reduce), so every rank stops at the same step with the same error."""
        names = sorted(self._first_bad)
        firsts = [self._first_bad[n] for n in names]
        if weights:
            names.append("weights")
            firsts.append(self._non_finite_weights_step())
        if not firsts:
            return
        firsts = torch.stack(firsts)
        if is_distributed():
            torch.distributed.all_reduce(firsts, op=torch.distributed.ReduceOp.MIN)
        firsts = firsts.tolist()  # the guard's one host sync
        step = min(firsts)
        if step == NEVER:
            return
        bad = [n for n, s in zip(names, firsts, strict=True) if s == step and n != "weights"]
        if not bad:  # the losses were finite: the update itself went wrong
            raise NonFiniteLossError(
                f"non-finite weights at generator step {step} after finite losses; training "
                "stopped, no checkpoint holds them (the last one on disk is from before)"
            )
        raise NonFiniteLossError(
            f"non-finite loss at generator step {step}: {', '.join(bad)}; training stopped, "
            "no checkpoint holds the weights after it"
        )

    def _non_finite_weights_step(self) -> Tensor:
        """This step if any floating-point parameter or buffer is NaN/inf, else NEVER."""
        tensors = [t for t in self.state_dict().values() if t.is_floating_point()]
        finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
        return torch.where(finite, NEVER, self.global_step).to(self.device)
