"""Where the null workload's added host time goes (``null_workload.py``): one fit as configured,
with the plain loop side by side, and a timer around each part of Lightning's loop and of the
template's step. Per generator iteration, after ``--warmup``, in ms:

    added = Lightning's loop around training_step      (fetch, hooks, logger connector, ...)
          + the template's step around its updates     (guard, noise, batches, logging)
          + the updates themselves minus the plain loop's iteration

    python benchmarks/null_breakdown.py [--iters 1000] [--warmup 100] [--rounds 3]

The timers wrap methods of Lightning's loop classes for this process only; each costs about a
microsecond per call, which lands in the loop's unaccounted rest.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from lightning.pytorch.core.module import LightningModule
from lightning.pytorch.loops import fetchers, training_epoch_loop
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.trainer import call
from lightning.pytorch.trainer.connectors.logger_connector import logger_connector

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lightning_runs import lightning_cli  # noqa: E402
from null_workload import NULL, PlainBeside, null_args  # noqa: E402
from plain_loops import gan_loop  # noqa: E402

from lightning_gans.models.adversarial import AdversarialModule  # noqa: E402
from lightning_gans.models.generative import GenerativeModule  # noqa: E402

Connector = logger_connector._LoggerConnector
EpochLoop = training_epoch_loop._TrainingEpochLoop
# (owner, attribute, part): the parts of Lightning's loop around training_step ...
LOOP = [
    (fetchers._PrefetchDataFetcher, "__next__", "data fetch (DataLoader, CombinedLoader)"),
    (LightningModule, "_on_before_batch_transfer", "batch to device and its hooks"),
    (Strategy, "batch_to_device", "batch to device and its hooks"),
    (call, "_call_callback_hooks", CALLBACKS := "callback hooks (on_train_batch_start/_end)"),
    (call, "_call_lightning_module_hook", "module hooks (on_train_batch_start/_end)"),
    (Connector, "on_batch_start", "logger connector"),
    (Connector, "on_batch_end", "logger connector"),
    (Connector, "update_train_step_metrics", "logger connector"),
    (EpochLoop, "_build_kwargs", "training_step's signature (_build_kwargs)"),
    (EpochLoop, "update_lr_schedulers", "scheduler bookkeeping"),
]
# ... the template's step and its updates ...
STEP = [
    (AdversarialModule, "training_step", "training_step"),
    (AdversarialModule, "critic_update", "critic updates"),
    (AdversarialModule, "generator_update", "generator update"),
]
# ... and the step's own work around the updates
OWN = [
    (GenerativeModule, "log_train", "logging (self.log, logging steps)"),
    (GenerativeModule, "check_finite", "finiteness guard"),
    (GenerativeModule, "step_noise", "the step's noise generator"),
    (AdversarialModule, "real_batches", "the step's real batches"),
]


class Timers:
    """Wraps each (owner, attribute) with a timer; totals per part, per iteration. The loop's
    parts share one depth, so a part called inside another (a hook inside the batch transfer)
    is counted once; the step's parts nest (the updates inside training_step)."""

    def __init__(self) -> None:
        self.totals: list[dict[str, float]] = [defaultdict(float)]
        self.saved = []
        loop_depth = [0]
        for owner, name, part in LOOP:
            self.wrap(owner, name, part, loop_depth)
        for owner, name, part in STEP + OWN:
            self.wrap(owner, name, part, [0])

    def wrap(self, owner, name: str, part: str, depth: list[int]) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if depth[0]:
                return original(*args, **kwargs)
            depth[0] += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                depth[0] -= 1
                self.totals[-1][part] += time.perf_counter() - start

        self.saved.append((owner, name, original))
        setattr(owner, name, timed)

    def next_iteration(self) -> None:
        self.totals.append(defaultdict(float))

    def restore(self) -> None:
        for owner, name, original in reversed(self.saved):
            setattr(owner, name, original)


class Beside(PlainBeside):
    """PlainBeside, also closing each iteration's timer totals at the same moment."""

    def __init__(self, iterations, timers: Timers) -> None:
        super().__init__(iterations)
        self.timers = timers

    def on_train_batch_end(self, *args) -> None:
        start = time.perf_counter()
        super().on_train_batch_end(*args)
        # the plain iteration ran inside the callback hooks' timer: not Lightning's
        self.timers.totals[-1][CALLBACKS] -= time.perf_counter() - start
        self.timers.next_iteration()


def breakdown(iters: int, warmup: int, seed: int, root: str) -> dict[str, float]:
    """ms per iteration of each part, for one fit."""
    cli, hp = lightning_cli("toy8", "wgan_gp", iters + warmup, seed, root, NULL)
    _, plain = gan_loop(hp, cli.datamodule.train_set.x, seed, "wgan_gp")
    timers = Timers()
    beside = Beside(plain, timers)
    cli.trainer.callbacks.append(beside)
    try:
        cli.trainer.fit(cli.model, cli.datamodule)
    finally:
        timers.restore()
    # iteration i runs from the end of plain iteration i-1 to the start of plain iteration i;
    # its parts are the totals closed at the end of plain iteration i
    rows = timers.totals[warmup + 1 : len(beside.lightning) + 1]
    light, plain_ms = beside.lightning[warmup:], beside.plain[warmup + 1 :]

    def ms(part: str) -> float:
        return 1000 * statistics.mean(row.get(part, 0.0) for row in rows)

    out = {"Lightning iteration": 1000 * statistics.mean(light),
           "plain iteration": 1000 * statistics.mean(plain_ms)}  # fmt: skip
    out["added"] = out["Lightning iteration"] - out["plain iteration"]
    loop = {part: ms(part) for _, _, part in LOOP}  # (two rows may share a part)
    out |= {f"loop: {part}": value for part, value in loop.items()}
    out["loop: the rest (progress counters, profiler contexts, timers)"] = (
        out["Lightning iteration"] - ms("training_step") - sum(loop.values())
    )
    updates = ms("critic updates") + ms("generator update")
    own = {part: ms(part) for _, _, part in OWN}
    out |= {f"step: {part}": value for part, value in own.items()}
    out["step: the rest (metrics, Python)"] = ms("training_step") - updates - sum(own.values())
    out["the updates minus the plain iteration"] = updates - out["plain iteration"]
    return out


def main() -> None:
    args = null_args(__doc__, rounds=3)
    runs = []
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.rounds):
            runs.append(breakdown(args.iters, args.warmup, r, f"{root}/{r}"))
    print("| part | ms per iteration (median of rounds) | range |")
    print("|---|---|---|")
    for part in runs[0]:
        values = [run[part] for run in runs]
        print(f"| {part} | {statistics.median(values):.3f} | {min(values):.3f} to "
              f"{max(values):.3f} |")  # fmt: skip


if __name__ == "__main__":
    main()
