"""The training hot path never waits on the device: between the start of a steady-state,
non-logging generator step and the start of the next, nothing the model, the loop or the
callbacks do calls a tensor method that blocks the host until the device catches up (``.item()``,
``bool(tensor)``, ``.tolist()``, ``.cpu()``, ...). On a CPU these calls are cheap, so they are
counted instead of timed; on CUDA the GPU suite runs the same steps under
``torch.cuda.set_sync_debug_mode("error")`` (tests/test_gpu.py)."""

from __future__ import annotations

import traceback

import lightning as L
import pytest
import torch

from lightning_gans.launch.cli import build_cli
from tests.helpers import cli_args
from tests.helpers.callbacks import HOST_SIDE
from tests.helpers.callbacks import SYNCS as SYNCING


class CountSyncs(L.Callback):
    """Patches the syncing Tensor methods from the start of step ``at`` to the start of the
    next, recording where each call came from. Put first, so it wraps every other hook."""

    def __init__(self, at: int):
        self.at = at
        self.calls: list[str] = []
        self.saved: dict[str, object] = {}

    def patch(self) -> None:
        for name in SYNCING:
            original = getattr(torch.Tensor, name)
            self.saved[name] = original

            def counting(tensor, *args, _original=original, _name=name, **kwargs):
                where = traceback.extract_stack(limit=4)[-2]
                if (where.filename.rsplit("/", 1)[-1], where.name) not in HOST_SIDE:
                    self.calls.append(f"{_name} at {where.filename}:{where.lineno}")
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counting)

    def unpatch(self) -> None:
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)
        self.saved = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.at:
            self.patch()
        elif trainer.global_step == self.at + 1:
            self.unpatch()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self.unpatch()


CASES = {
    "wgan_gp": ("toy/wgan_gp", []),
    "wgan_gp+ema+linear": (
        "toy/wgan_gp",
        ["--model.ema_decay", "0.99", "--model.lr_schedule", "linear"],
    ),
    "wgan": ("toy/wgan", []),
    "gan": ("toy/gan", []),
    "vae": ("vae", ["--model.iw_samples", "2"]),
    "wgan_gp images": ("wgan_gp", []),
}


def fit_counted(tmp_path, config: str, *extra: str, at: int, steps: int) -> CountSyncs:
    counter = CountSyncs(at)
    args = cli_args(tmp_path, config, *extra, "--trainer.log_every_n_steps", "10", steps=steps)
    cli = build_cli(args, run=False)
    cli.trainer.callbacks.insert(0, counter)  # its hooks run before every other callback's
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == steps and not counter.saved  # ran, and unpatched
    return counter


@pytest.mark.parametrize("case", list(CASES))
def test_a_steady_state_step_makes_no_host_sync(case, tmp_path):
    config, extra = CASES[case]
    counter = fit_counted(tmp_path, config, *extra, at=5, steps=7)  # 5: warm, not logging
    assert counter.calls == [], "\n".join(counter.calls[:10])


@pytest.mark.parametrize("case", ["wgan_gp", "vae"])
def test_a_step_after_a_logging_step_makes_no_host_sync(case, tmp_path):
    """Lightning keeps the figures of the last logging step and, at the end of every later
    step, turns the progress bar's into numbers (``.item()``) unless they are forgotten."""
    config, extra = CASES[case]
    counter = fit_counted(tmp_path, config, *extra, at=12, steps=14)  # the 10th step logged
    assert counter.calls == [], "\n".join(counter.calls[:10])


def test_the_counter_sees_a_sync(tmp_path):
    """The counter is not blind: a logging step does sync (the guard and the logs are read)."""
    counter = fit_counted(tmp_path, "toy/wgan_gp", at=9, steps=10)  # the 10th step logs
    assert any(c.startswith("tolist") for c in counter.calls), counter.calls
