"""Lightning's fixed cost per generator iteration, measured where the device work is nearly
zero: the toy WGAN-GP with 8-unit MLPs, batch 8, n_critic 5, one thread. What is left is host
time: the loop, the hooks, the logging, the template's own per-step work. Through the real CLI
(as ``bench.py`` runs it) against ``plain_loops.py`` doing the same updates, interleaved round
by round in alternating order; the figure is Lightning's ms per iteration minus the plain
loop's, per round, after ``--warmup`` iterations.

    python benchmarks/null_workload.py [--iters 1000] [--warmup 100] [--rounds 7]

``make bench`` runs it beside the other cases and writes the figure into results.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench import lightning_cli, lightning_run, ms_per_iter  # noqa: E402
from plain_loops import PLAIN  # noqa: E402

# the null workload: every update is a few microseconds of arithmetic
NULL = ["--model.g_width", "8", "--model.d_width", "8", "--data.batch_size", "8"]
NULL += ["--model.n_critic", "5", "--data.toy_size", "65536"]


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
    """Per variant and round: Lightning's ms per iteration, and the added ms over the plain
    loop of the same round; the order of the three runs alternates from round to round."""
    result = {name: {"lightning": [], "added": [], "added_typical": []} for name in VARIANTS}
    result |= {"plain": [], "plain_typical": []}
    for r in range(rounds):
        runs, typical, order = {}, {}, [*VARIANTS, "plain"]
        data_cli, hp = lightning_cli("toy8", "wgan_gp", iters + warmup, r, f"{root}/{r}", NULL)
        data = data_cli.datamodule.train_set.x  # the plain loop's: the same seed and points
        for impl in order if r % 2 == 0 else order[::-1]:
            if impl == "plain":
                _, times = PLAIN["wgan_gp"](hp, data, iters + warmup, r, "wgan_gp")
            else:
                flags = NULL + VARIANTS[impl]
                cli, hp = lightning_cli("toy8", "wgan_gp", iters + warmup, r, f"{root}/{r}{impl}",
                                        flags)  # fmt: skip
                if impl == "hooked updates":
                    cli.trainer.callbacks.append(Listens())
                _, times = lightning_run(cli)
            runs[impl] = ms_per_iter(times, warmup)
            typical[impl] = typical_ms(times, warmup)
        result["plain"].append(runs["plain"])
        result["plain_typical"].append(typical["plain"])
        for name in VARIANTS:
            result[name]["lightning"].append(runs[name])
            result[name]["added"].append(runs[name] - runs["plain"])
            result[name]["added_typical"].append(typical[name] - typical["plain"])
        print(f"round {r}: " + ", ".join(f"{k} {v:.3f} ms/it" for k, v in runs.items()), flush=True)
    return result


def typical_ms(times: list[float], warmup: int) -> float:
    """The median duration of one iteration: the typical one, untouched by the moments the
    shared machine takes the core away (which the mean of ``ms_per_iter`` counts). Logging
    steps are one in ten, so their extra cost is in the mean, not in this."""
    ends = times[warmup - 1 :]
    return 1000 * statistics.median(b - a for a, b in zip(ends, ends[1:], strict=False))


def summary(result: dict) -> list[str]:
    lines = []
    for name in VARIANTS:
        added, typical = result[name]["added"], result[name]["added_typical"]
        lines.append(
            f"{name}: added {statistics.median(added):.2f} ms per generator iteration (mean "
            f"over the iterations; median of {len(added)} rounds, range {min(added):.2f} to "
            f"{max(added):.2f}); typical iteration: added {statistics.median(typical):.2f} ms "
            f"(range {min(typical):.2f} to {max(typical):.2f}); Lightning "
            f"{statistics.median(result[name]['lightning']):.2f} ms, plain "
            f"{statistics.median(result['plain']):.2f} ms (typical "
            f"{statistics.median(result['plain_typical']):.2f} ms)"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iters", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    sys.argv = sys.argv[:1]
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        print("\n".join(summary(null_workload(args.iters, args.warmup, args.rounds, root))))


if __name__ == "__main__":
    main()
