"""Lightning's fixed cost per generator iteration, measured where the device work is nearly
zero: the toy WGAN-GP with 8-unit MLPs, batch 8, n_critic 5, one thread. What is left is host
time: the loop, the hooks, the logging, the template's own per-step work. Through the real CLI
(as ``bench.py`` builds it) against ``plain_loops.py`` doing the same updates.

The two run side by side: after each Lightning iteration, a callback runs one iteration of the
plain loop and times it apart, so both see the same machine at the same moment. Run one after
the other, they did not: on a shared machine a whole run's speed moves by 10-20% between
runs, more than the figure measured. The figure of a round is Lightning's mean ms per
iteration minus the plain loop's, after ``--warmup`` iterations; the median over the rounds is
reported with their range.

    python benchmarks/null_workload.py [--iters 1000] [--warmup 100] [--rounds 5]

``make bench`` runs it beside the other cases and writes the figure into results.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from lightning_runs import lightning_cli  # noqa: E402
from plain_loops import gan_loop  # noqa: E402

# the null workload: every update is a few microseconds of arithmetic
NULL = ["--model.g_width", "8", "--model.d_width", "8", "--data.batch_size", "8"]
NULL += ["--model.n_critic", "5", "--data.toy_size", "65536"]


class PlainBeside(L.Callback):
    """One plain-loop iteration after each Lightning iteration, each timed apart (seconds)."""

    def __init__(self, iterations) -> None:
        self.iterations = iterations  # plain_loops.gan_loop's
        self.lightning: list[float] = []  # from the end of one plain iteration to the next start
        self.plain: list[float] = []
        self.end: float | None = None

    def on_train_batch_end(self, *args) -> None:
        start = time.perf_counter()
        if self.end is not None:
            self.lightning.append(start - self.end)
        next(self.iterations)
        self.end = time.perf_counter()
        self.plain.append(self.end - start)


class Listens(L.Callback):
    """Listens to a hook the lean update path skips, so the fit takes Lightning's hooked path
    (docs/design.md#the-lean-update-path): what the lean path saves."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        pass


# as configured (the toy config logs every 10 steps); with logging off: what logging costs;
# with a listener: Lightning's hooked updates, as before the lean path
VARIANTS = {"as configured": [], "logging off": ["--trainer.log_every_n_steps", "0"],
            "hooked updates": []}  # fmt: skip


def null_workload(iters: int, warmup: int, rounds: int, root: str) -> dict:
    """Per variant and round: Lightning's and the plain loop's mean ms per iteration, side by
    side, and the median ones (the typical iteration: untouched by the moments the shared
    machine slows, and by the logging steps, one in ten)."""
    keys = ("lightning", "plain", "lightning_typical", "plain_typical")
    result = {name: {k: [] for k in keys} for name in VARIANTS}
    for r in range(rounds):
        order = list(VARIANTS) if r % 2 == 0 else list(VARIANTS)[::-1]
        for name in order:
            cli, hp = lightning_cli("toy8", "wgan_gp", iters + warmup, r, f"{root}/{r}{name}",
                                    NULL + VARIANTS[name])  # fmt: skip
            _, plain = gan_loop(hp, cli.datamodule.train_set.x, r, "wgan_gp")
            beside = PlainBeside(plain)
            cli.trainer.callbacks += [Listens(), beside] if name == "hooked updates" else [beside]
            cli.trainer.fit(cli.model, cli.datamodule)
            light, plain_ms = beside.lightning[warmup:], beside.plain[warmup + 1 :]
            for key, values in (("lightning", light), ("plain", plain_ms)):
                result[name][key].append(1000 * statistics.mean(values))
                result[name][f"{key}_typical"].append(1000 * statistics.median(values))
        print(f"round {r}: " + ", ".join(
            f"{name} {result[name]['lightning'][-1]:.3f} vs {result[name]['plain'][-1]:.3f} ms/it"
            for name in VARIANTS), flush=True)  # fmt: skip
    return result


def summary(result: dict) -> list[str]:
    lines = []
    for name, runs in result.items():
        added = [a - b for a, b in zip(runs["lightning"], runs["plain"], strict=True)]
        typical = [a - b for a, b in zip(runs["lightning_typical"], runs["plain_typical"],
                                         strict=True)]  # fmt: skip
        lines.append(
            f"{name}: added {statistics.median(added):.2f} ms per generator iteration (mean "
            f"over the iterations; median of {len(added)} rounds, range {min(added):.2f} to "
            f"{max(added):.2f}); typical iteration: added {statistics.median(typical):.2f} ms "
            f"(range {min(typical):.2f} to {max(typical):.2f}); Lightning "
            f"{statistics.median(runs['lightning']):.2f} ms, plain "
            f"{statistics.median(runs['plain']):.2f} ms"
        )
    return lines


def null_args(doc: str, rounds: int) -> argparse.Namespace:
    """``--iters``, ``--warmup`` and ``--rounds``; torch on one thread, as the workload is set."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=rounds)
    args = ap.parse_args()
    sys.argv = sys.argv[:1]  # LightningCLI is given its arguments explicitly
    torch.set_num_threads(1)
    return args


def main() -> None:
    args = null_args(__doc__, rounds=5)
    with tempfile.TemporaryDirectory() as root:
        print("\n".join(summary(null_workload(args.iters, args.warmup, args.rounds, root))))


if __name__ == "__main__":
    main()
