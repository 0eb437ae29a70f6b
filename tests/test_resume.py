"""Exact resume, preemption and no lost work (docs/design.md#exact-resume)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch

from lightning_gans import WGAN
from lightning_gans.callbacks.checkpoints import AtomicCheckpointIO
from lightning_gans.models import NonFiniteLossError
from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY, SignalAt, fit, run_module

# toy8 with 4096 points, batch 32, n_critic 5: 25 generator steps per epoch
DETERMINISTIC = [
    "--trainer.deterministic",
    "true",
    "--trainer.val_check_interval",
    "10",
    "--trainer.limit_val_batches",
    "2",
]


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


class FirstStep(L.Callback):
    """The first generator step this fit trained, and how many batches it trained: a resume
    that retrained from step 0 ends with the same weights in deterministic mode, not with these
    numbers."""

    def __init__(self) -> None:
        self.first: int | None = None
        self.batches = 0

    def on_train_batch_start(self, trainer, pl_module, *args) -> None:
        self.first = trainer.global_step if self.first is None else self.first
        self.batches += 1


@pytest.mark.parametrize(
    ("config", "k"), [("toy/wgan_gp", 12), ("toy/wgan_gp", 25), ("toy/gan", 13), ("toy/vae", 12)]
)
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, config, k):
    n = 30
    full = fit(
        tmp_path, config, *DETERMINISTIC, "--checkpoint.every_n_train_steps", str(k), steps=n
    )
    ckpt = tmp_path / "run" / "checkpoints" / f"step{k:06d}.ckpt"
    assert ckpt.exists()

    counted = FirstStep()
    resumed = fit(tmp_path, config, *DETERMINISTIC, name="resumed", steps=n, ckpt_path=ckpt,
                  callbacks=[counted])  # fmt: skip
    assert resumed.trainer.global_step == n
    assert (counted.first, counted.batches) == (k, n - k)  # only the remaining steps
    a, b = weights(full.model), weights(resumed.model)
    assert all(torch.equal(a[key], b[key]) for key in a), [
        key for key in a if not torch.equal(a[key], b[key])
    ]
    opt_a = full.trainer.optimizers[-1].state_dict()["state"]
    opt_b = resumed.trainer.optimizers[-1].state_dict()["state"]
    assert all(
        torch.equal(opt_a[i][s], opt_b[i][s])
        for i in opt_a
        for s in opt_a[i]
        if torch.is_tensor(opt_a[i][s])
    )


@pytest.mark.parametrize("at", [19, 24])  # 20: an epoch's last step (10 a epoch); 25: mid-epoch
def test_preempted_on_any_step_resumes_bit_identical(tmp_path, at):
    """The signal is acted on at the step boundary and last.ckpt is that step's state, also on
    an epoch's last step, where Lightning's own checkpoint at the end of training (written
    after the loop has closed the epoch) would make the resumed run start the next epoch."""
    small = [*DETERMINISTIC, "--data.toy_size", "1600"]  # 1600 / (5 x 32): 10 steps an epoch
    full = fit(tmp_path, "toy/wgan_gp", *small, name="straight", steps=40)
    cut = fit(tmp_path, "toy/wgan_gp", *small, name="cut", steps=40, callbacks=[SignalAt(at)])
    assert cut.trainer.global_step == at + 1  # stopped at the end of the next step
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == at + 1
    counted = FirstStep()
    resumed = fit(tmp_path, "toy/wgan_gp", *small, name="resumed", steps=40, ckpt_path=last,
                  callbacks=[counted])  # fmt: skip
    assert (counted.first, counted.batches) == (at + 1, 40 - at - 1)
    a, b = weights(full.model), weights(resumed.model)
    assert [key for key in a if not torch.equal(a[key], b[key])] == []


def test_resume_accepts_a_run_directory(tmp_path):
    from lightning_gans.errors import ConfigError
    from lightning_gans.launch.run_dir import resolve_checkpoint

    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"x")
    with pytest.raises(ConfigError, match=f"cannot read checkpoint {last}: not a PyTorch"):
        resolve_checkpoint(str(tmp_path / "run"))  # read once, so a bad file is one line
    minimal = {"hyper_parameters": {"_class_path": "lightning_gans.WGAN"}, "state_dict": {}}
    torch.save({"global_step": 3, "pytorch-lightning_version": "2.6.6", **minimal}, last)
    assert resolve_checkpoint(str(tmp_path / "run")) == last
    assert resolve_checkpoint(str(last)) == last
    with pytest.raises(ConfigError, match="not found"):
        resolve_checkpoint(str(tmp_path / "missing"))


def test_sigusr1_writes_checkpoint_exits_0_and_resumes(tmp_path):
    args = [
        sys.executable,
        "-m",
        "lightning_gans",
        "fit",
        "--config",
        "configs/toy/wgan_gp.yaml",
        *TINY_TOY,
        *TINY_GAN,
        *QUIET,
        "--run.root",
        str(tmp_path),
        "--run.name",
        "run",
        "--run.logger",
        "csv",
        "--trainer.max_steps",
        "100000",
        "--checkpoint.every_n_train_steps",
        "100000",
    ]
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.stat().st_size > 200):
        time.sleep(0.5)  # training has logged a few steps: it is well inside the loop
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert "SIGUSR1 at generator step" in out and "resume with RESUME=" in out
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    step = torch.load(last, weights_only=False)["global_step"]
    assert step > 0

    resumed = subprocess.run(
        [*args[:-4], "--trainer.max_steps", str(step + 3), "--ckpt_path", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=False)["global_step"] == step + 3


def test_non_finite_loss_stops_with_step_and_keeps_checkpoint(tmp_path, monkeypatch):
    original = WGAN.generator_loss

    def poisoned(self, f_fake):
        loss = original(self, f_fake)
        return loss * torch.nan if self.global_step == 4 else loss

    monkeypatch.setattr(WGAN, "generator_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"generator step 4: g_loss;"):
        fit(tmp_path, "toy/wgan", "--checkpoint.every_n_train_steps", "2", steps=10)
    good = tmp_path / "run" / "checkpoints" / "step000004.ckpt"
    model = WGAN.load_from_checkpoint(good)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert torch.load(good, weights_only=False)["global_step"] == 4


class NaNGeneratorGradients(L.Callback):
    """From generator step 3 on, the generator's gradients are NaN while every loss stays
    finite: Adam then writes NaN weights (what an fp32/bf16 overflow does)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 3:
            for p in pl_module.generator.parameters():
                p.register_hook(lambda g: g * torch.nan)


def test_non_finite_weights_after_finite_losses_are_never_saved(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"non-finite weights at generator step 4 "):
        fit(tmp_path, "toy/wgan_gp", "--checkpoint.every_n_train_steps", "2",
            "--trainer.limit_val_batches", "0", steps=10,
            callbacks=[NaNGeneratorGradients()])  # fmt: skip
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("*.ckpt")) == ["last.ckpt", "step000002.ckpt"]
    for name in ("last.ckpt", "step000002.ckpt"):
        saved = torch.load(ckpts / name, weights_only=True)
        assert saved["global_step"] == 2
        assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())


def test_non_finite_loss_exit_code_and_message(tmp_path):
    proc = run_module(
        "fit",
        "--config",
        "configs/toy/wgan_gp.yaml",
        *TINY_TOY,
        *TINY_GAN,
        *QUIET,
        "--run.root",
        str(tmp_path),
        "--run.logger",
        "csv",
        "--trainer.max_steps",
        "5",
        "--model.lr",
        "1e30",
    )
    assert proc.returncode == 1
    assert "error: non-finite loss at generator step" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)

    def dies_midway(obj, f, *a, **kw):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt  # the job is killed during the save

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.load(path)["step"] == 1  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_the_finiteness_guard_acts_with_logging_off(tmp_path, monkeypatch):
    """log_every_n_steps 0: the guard still stops the run within GUARD_EVERY steps of a NaN,
    not at the next save (with a NaN at step 3 the run used to train on to step 40)."""
    from lightning_gans.models.finiteness import GUARD_EVERY

    original = WGAN.generator_loss
    steps = []

    def poisoned(self, f_fake):
        steps.append(self.global_step)
        loss = original(self, f_fake)
        return loss * torch.nan if self.global_step >= 3 else loss

    monkeypatch.setattr(WGAN, "generator_loss", poisoned)
    with pytest.raises(NonFiniteLossError, match=r"generator step 3: g_loss;"):
        fit(tmp_path, "toy/wgan", "--trainer.log_every_n_steps", "0",
            "--trainer.limit_val_batches", "0", steps=40)  # fmt: skip
    assert max(steps) < 3 + GUARD_EVERY


def test_a_fit_that_raises_leaves_the_signal_handlers_as_they_were(tmp_path, monkeypatch):
    """Lightning calls no teardown on an exception: a later SIGTERM must still end the process."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1)}
    original = WGAN.generator_loss
    monkeypatch.setattr(WGAN, "generator_loss", lambda self, f: original(self, f) * torch.nan)
    with pytest.raises(NonFiniteLossError):
        fit(tmp_path, "toy/wgan", steps=5)
    assert {s: signal.getsignal(s) for s in before} == before
