"""The real CLI's model, data and trainer for one benchmark run, and its fit timed per step:
what bench.py, null_workload.py and null_breakdown.py share (none imports another)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_gans.launch.cli import build_cli  # noqa: E402


class StepTimes(L.Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_batch_end(self, *args) -> None:
        self.times.append(time.perf_counter())


def lightning_cli(dataset: str, model: str, iters: int, seed: int, root: str, extra=()):
    """The real CLI's model, data and trainer for one run (``extra``: more flags), not yet
    fitted."""
    config = ROOT / "configs" / ("toy/" if dataset == "toy8" else "") / f"{model}.yaml"
    args = ["--config", str(config), "--seed_everything", str(seed), "--model.seed", str(seed)]
    args += ["--data.seed", str(seed), "--trainer.max_steps", str(iters)]
    args += ["--trainer.max_time", "null"]
    args += ["--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false"]
    args += ["--trainer.enable_model_summary", "false", "--trainer.logger", "true"]
    args += ["--run.logger", "csv", "--run.root", root, "--run.name", f"{model}-{dataset}-{seed}"]
    args += ["--samples.every_n_steps", "0", "--checkpoint.every_n_train_steps", str(10 * iters)]
    args += list(extra)
    cli = build_cli(args, run=False)
    cli.datamodule.setup("fit")
    hp = {**cli.model.hparams, "batch_size": cli.datamodule.hparams.batch_size}
    return cli, hp


def lightning_run(cli):
    timer = StepTimes()
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, cli.datamodule)
    return (lambda z: cli.model.sample(z=z)), timer.times
