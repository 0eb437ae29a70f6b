"""Callbacks the tests hand to the real CLI (``--trainer.callbacks+=tests.helpers.DumpParams``)
or to ``fit(..., callbacks=[...])``."""

from __future__ import annotations

import traceback
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
    """Each rank writes its weights, its first noise draw, its world view and the buffers
    (batch norm's running statistics) it evaluated with to the run dir."""

    def __init__(self) -> None:
        self.val_buffers: list[dict[str, torch.Tensor]] = []

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.first_noise = torch.randn(4, generator=pl_module.step_noise())
        self.start = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self.val_buffers.append({k: b.clone() for k, b in pl_module.named_buffers()})

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.pt"
        torch.save(
            {
                "start": self.start,
                "end": pl_module.state_dict(),
                "noise": self.first_noise,
                "world_size": trainer.world_size,
                "global_step": trainer.global_step,
                "val_buffers": self.val_buffers,
                "parameters": [k for k, _ in pl_module.named_parameters()],
            },
            out,
        )


class NaNOnRank1(L.Callback):
    """Makes rank 1's generator loss NaN from generator step 3 on; rank 0 stays finite."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, *args) -> None:
        if trainer.global_rank == 1 and trainer.global_step == 3:
            loss = pl_module.generator_loss
            pl_module.generator_loss = lambda f_fake: loss(f_fake) * torch.nan


class TrainedSteps(L.Callback):
    """Each rank of each attempt appends one JSON line to ``<run>/trained_steps.jsonl``: its pid
    when training starts (so a test can kill it), then the first generator step it trained and
    how many it trained. A resume that retrained from step 0 would show first_step 0."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.batches = 0

    def write(self, trainer: L.Trainer, **fields) -> None:
        import json
        import os
        import socket

        line = {"rank": trainer.global_rank, "pid": os.getpid(), **fields}
        line["host"] = socket.gethostname()
        line["restart"] = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        with open(Path(trainer.default_root_dir) / "trained_steps.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self.write(trainer, event="start", step=trainer.global_step)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, *args) -> None:
        if self.first is None:
            self.first = trainer.global_step
        self.batches += 1

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self.write(trainer, event="end", first_step=self.first, trained=self.batches,
                   step=trainer.global_step)  # fmt: skip


COLLECTIVES = ("all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "barrier",
               "reduce", "reduce_scatter", "gather", "scatter", "broadcast_object_list",
               "all_gather_object", "gather_object", "scatter_object_list")  # fmt: skip
SYNCS = ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__")
# torch.optim keeps an optimiser's ``step`` count on the host unless fused or capturable, and
# reads it with ``.item()``: a host tensor, so no wait for the device (torch/optim/adam.py)
HOST_SIDE = (("optimizer.py", "_get_value"),)


class CountCollectives(L.Callback):
    """Counts, per generator step and rank, the Python-level collectives of torch.distributed and
    the syncing Tensor methods called from the start of one training batch to the next; each
    rank writes ``<run>/collectives_rank<r>.json`` ({step: [names]}). The gradient all-reduce
    runs in DDP's C++ reducer and is not among them."""

    def __init__(self) -> None:
        self.calls: dict[int, list[str]] = {}
        self.step = -1
        self.saved: list[tuple[object, str, object]] = []

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        import torch.distributed as dist

        def wrap(owner, name):
            original = getattr(owner, name)

            def counted(*args, **kwargs):
                where = traceback.extract_stack(limit=3)[-2]
                if (where.filename.rsplit("/", 1)[-1], where.name) not in HOST_SIDE:
                    self.calls.setdefault(self.step, []).append(name)
                return original(*args, **kwargs)

            self.saved.append((owner, name, original))
            setattr(owner, name, counted)

        for name in COLLECTIVES:
            wrap(dist, name)
        for name in SYNCS:
            wrap(torch.Tensor, name)

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, *args) -> None:
        self.step = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self.step = -1

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        import json

        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)
        self.saved = []
        out = Path(trainer.default_root_dir) / f"collectives_rank{trainer.global_rank}.json"
        out.write_text(json.dumps({str(k): v for k, v in self.calls.items()}))


class SameDraws(L.Callback):
    """Makes a DDP rank's training step see its slice of one global step: the real batch and
    every noise draw of step s are rows ``[r*b, (r+1)*b)`` of what a single process with batch
    2b sees, so 2 ranks x b and 1 process x 2b must compute the same averaged gradients. Records
    every optimizer step's gradients (after DDP's all-reduce) and each rank's real batches, into
    ``<run>/draws_rank<r>.pt``, for the first ``steps`` generator steps."""

    def __init__(self, steps: int = 2, global_batch: int = 64) -> None:
        self.steps, self.global_batch = steps, global_batch
        self.grads: list[list[torch.Tensor]] = []
        self.reals: list[torch.Tensor] = []

    def rows(self, trainer: L.Trainer) -> slice:
        b = self.global_batch // trainer.world_size
        return slice(trainer.global_rank * b, (trainer.global_rank + 1) * b)

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        calls = [0]

        def draw(kind):
            def drawn(*shape, noise):
                g = torch.Generator().manual_seed(1000 * pl_module.global_step + calls[0])
                calls[0] += 1
                full = getattr(torch, kind)(self.global_batch, *shape[1:], generator=g)
                return full[self.rows(trainer)].to(pl_module.device)

            return drawn

        pl_module.randn, pl_module.rand = draw("randn"), draw("rand")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx) -> None:
        n = pl_module.hparams.n_critic
        g = torch.Generator().manual_seed(trainer.global_step)
        full = torch.randn(n, self.global_batch, *batch.shape[1:], generator=g)
        batch.copy_(full[:, self.rows(trainer)].flatten(0, 1))  # n_critic stacked batches

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.reals.append(batch.clone())

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module, optimizer) -> None:
        if trainer.global_step < self.steps:
            grads = [p.grad.clone() for g in optimizer.param_groups for p in g["params"]]
            self.grads.append(grads)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"draws_rank{trainer.global_rank}.pt"
        torch.save({"grads": self.grads, "reals": self.reals}, out)


class RecordBatches(L.Callback):
    """Each rank saves the real batches it trained on to ``<run>/batches_rank<r>.pt``."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches.append(batch.clone())

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        out = Path(trainer.default_root_dir) / f"batches_rank{trainer.global_rank}.pt"
        torch.save(torch.cat(self.batches), out)


class BreakFID(L.Callback):
    """Makes rank 0's periodic FID fail: ``nan`` (every sample NaN, on every rank, as NaN
    weights would make them) or ``raise`` (an error inside the evaluation, on rank 0 only, as
    an out-of-memory would)."""

    def __init__(self, mode: str = "nan") -> None:
        self.mode = mode

    def on_fit_start(self, trainer: L.Trainer, pl_module) -> None:
        if self.mode == "nan":
            sample = pl_module.sample
            pl_module.sample = lambda *a, **k: sample(*a, **k) * torch.nan
        elif trainer.global_rank == 0:
            quality = next(c for c in trainer.callbacks if hasattr(c, "quality")).quality

            def out_of_memory(*args, **kwargs):
                raise RuntimeError("stand-in: out of memory while embedding")

            quality.embed = out_of_memory


class SignalAt(L.Callback):
    """Sends this process a real signal (``sig``: USR1 or TERM) at the end of generator step
    ``step``."""

    def __init__(self, step: int, sig: str = "USR1") -> None:
        import signal

        self.step, self.sig = step, getattr(signal, f"SIG{sig}") if isinstance(sig, str) else sig

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        import os

        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.sig)


class SlowSteps(L.Callback):
    """Each generator step takes ``seconds`` longer, and ``<run>/at_step`` says which step is
    training: a test can signal a run inside a step, twice if it likes."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        import time

        (Path(trainer.default_root_dir) / "at_step").write_text(str(trainer.global_step))
        time.sleep(self.seconds)


class SlowSave(L.Callback):
    """Each checkpoint takes ``seconds`` longer to save, and ``<run>/saving`` appears while the
    slowest one is on: a test can signal a run inside a save."""

    def __init__(self, seconds: float = 3.0, after_step: int = 0) -> None:
        self.seconds, self.after_step = seconds, after_step

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module, checkpoint: dict) -> None:
        import time

        if trainer.global_step > self.after_step:
            (Path(trainer.default_root_dir) / "saving").write_text(str(trainer.global_step))
            time.sleep(self.seconds)
