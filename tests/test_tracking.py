"""W&B tracking; the EMD estimate checked against exact optimal transport (docs/theory.md §4-§6)."""

from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lightning_gans import WGAN, WGANGP
from lightning_gans.launch.loggers import wandb_mode
from lightning_gans.models.losses import critic_emd
from tests.helpers import (
    QUIET,
    ROOT,
    TINY_DIGITS,
    TINY_GAN,
    TINY_GAN_DIGITS,
    TINY_TOY,
    TINY_VAE,
    cli_args,
    fit,
    run_module,
)
from tests.helpers.fake_wandb import FakeWandbServer

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

SHORT = [
    *QUIET,
    "--trainer.max_steps",
    "6",
    "--trainer.val_check_interval",
    "3",
    "--trainer.log_every_n_steps",
    "2",
    "--trainer.limit_val_batches",
    "2",
    "--transport.n_points",
    "200",
    "--samples.every_n_steps",
    "3",
    "--run.logger",
    "wandb",
]
COMMON = [
    "train/g_loss",
    "train/d_loss",
    "val/grad_norm_real_mean",
    "val/grad_norm_fake_max",
    "val/grad_norm_interp_mean",
]
CASES = {
    "toy/wgan_gp": (
        [*TINY_TOY, *TINY_GAN],
        [
            *COMMON,
            "train/critic_emd",
            "val/critic_emd",
            "train/gradient_penalty",
            "val/exact_w1",
            "val/critic_emd_over_exact_w1",
        ],
    ),
    "toy/wgan": (
        [*TINY_TOY, *TINY_GAN],
        [
            *COMMON,
            "train/critic_emd",
            "val/critic_emd",
            "train/clip_fraction",
            "val/exact_w1",
            "val/critic_emd_over_exact_w1",
        ],
    ),
    "gan": (
        [*TINY_DIGITS, *TINY_GAN_DIGITS],
        [*COMMON, "train/d_real", "val/d_fake", "val/sliced_w1_lower_bound"],
    ),
    "vae": (
        [*TINY_DIGITS, *TINY_VAE, "--model.iw_samples", "2"],
        [
            "train/elbo",
            "train/kl",
            "train/recon",
            "train/bpd",
            "val/elbo",
            "val/iw_bound",
            "val/iw_bpd",
            "val/sliced_w1_lower_bound",
        ],
    ),
}


@pytest.mark.parametrize("config", list(CASES))
def test_offline_wandb_history_holds_the_keys(tmp_path, config):
    tiny, keys = CASES[config]
    proc = run_module(
        "fit",
        "--config",
        f"configs/{config}.yaml",
        *tiny,
        *SHORT,
        "--run.root",
        str(tmp_path),
        "--run.name",
        "run",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "run" / "metrics.csv") as f:  # the CSV copy of every logged figure
        history = [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]
    logged = {k for row in history for k in row}
    assert set(keys) <= logged, set(keys) - logged
    for key in keys:
        values = [row[key] for row in history if key in row]
        assert all(math.isfinite(v) for v in values), (key, values)
    steps = [row["step"] for row in history if keys[0] in row]
    assert steps == sorted(steps) and len(steps) >= 2  # plotted against generator steps
    assert list((tmp_path / "run").glob("wandb/offline-run-*/run-*.wandb"))  # the W&B run
    images = [p.name for p in (tmp_path / "run").rglob("files/media/images/*.png")]
    assert any(name.startswith("samples_") for name in images)
    if config == "vae":
        assert any(name.startswith("reconstructions_") for name in images)
    config_yaml = next((tmp_path / "run").glob("wandb/offline-run-*/files/config.yaml"), None)
    if config_yaml is not None:  # recorded with the run where this wandb writes it
        assert "git_commit" in config_yaml.read_text()


@pytest.mark.parametrize("mode", ["", "online"])  # logged in; online asked or not
def test_unreachable_wandb_server_falls_back_offline(tmp_path, mode):
    """A compute node without internet: a port that refuses connections. Never a traceback,
    never minutes of wandb's init timeout: one warning naming wandb sync, and it trains."""
    env = {"WANDB_MODE": mode, "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    start = time.time()
    proc = run_module(
        "fit",
        "--config",
        "configs/toy/wgan.yaml",
        *TINY_TOY,
        *TINY_GAN,
        *QUIET,
        "--trainer.max_steps",
        "3",
        "--run.root",
        str(tmp_path),
        "--run.name",
        "run",
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() - start < 120
    assert "Traceback" not in proc.stderr
    assert "unreachable: logging offline instead (upload later with `wandb sync`)" in proc.stderr
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def fit_against(server: FakeWandbServer, root, steps: int):
    """A toy fit logging online to ``server``, whose failures may hold it up for 5 s."""
    env = {"WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": server.url}
    return run_module("fit", *cli_args(root, "toy/wgan", "--trainer.log_every_n_steps", "2",
                                       "--run.wandb_timeout", "5", steps=steps, logger="wandb"),
                      env=env, timeout=240)  # fmt: skip


def test_wandb_server_failing_during_the_run_never_holds_it_up(tmp_path):
    """The server answers the start, then its port refuses connections. The run trains to the
    end, waits 5 s (--run.wandb_timeout) for the upload, not forever as wandb would, and names
    the command that uploads the rest; that command then uploads every logged step."""
    start = time.time()
    with FakeWandbServer(fail_after=1) as server:  # down after the first push
        proc = fit_against(server, tmp_path, steps=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.time() - start < 120 and "Traceback" not in proc.stderr
    warning = re.search(r"upload it with `wandb sync --include-online (\S+)`", proc.stderr)
    assert warning, proc.stderr[-2000:]
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = {float(row["step"]) for row in csv.DictReader(f)}
    assert max(steps) == 60 and server.history < len(steps)  # it failed before the upload
    with FakeWandbServer() as again:
        sync = subprocess.run([str(Path(sys.executable).parent / "wandb"), "sync",
                               "--include-online", warning[1]], capture_output=True, text=True,
                              env={**os.environ, "WANDB_API_KEY": "x" * 40,
                                   "WANDB_BASE_URL": again.url}, timeout=120)  # fmt: skip
    assert sync.returncode == 0, sync.stderr[-2000:]
    assert again.history >= len(steps)  # a row per logged step, and the samples' rows


def test_wandb_server_failing_at_the_start_leaves_the_run_offline(tmp_path):
    """The port answers the probe but every API call fails: the run starts offline after
    --run.wandb_timeout, with one warning, instead of wandb's traceback after 90 s."""
    with FakeWandbServer(status=500) as server:
        proc = fit_against(server, tmp_path, steps=3)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert "W&B could not start the run online" in proc.stderr
    assert "logging offline instead (upload later with `wandb sync`)" in proc.stderr
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_a_failed_online_start_under_a_parents_wandb_service_goes_offline(tmp_path):
    """A run started by a process with a W&B service of its own (a sweep agent) inherits it
    (WANDB_SERVICE): the failed online start leaves the run id held there, so the offline
    start takes a service of its own."""
    import wandb

    parent = wandb.init(mode="offline", dir=str(tmp_path), project="parent")
    try:
        service = os.environ["WANDB_SERVICE"]
        with FakeWandbServer(status=500) as server:
            env = {"WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40,
                   "WANDB_BASE_URL": server.url, "WANDB_SERVICE": service}  # fmt: skip
            proc = run_module("fit", *cli_args(tmp_path, "toy/wgan", "--run.wandb_timeout", "5",
                                               steps=3, logger="wandb"),
                              env=env, timeout=240)  # fmt: skip
    finally:
        parent.finish()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "W&B could not start the run online" in proc.stderr
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))


def test_wandb_mode_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode() == "disabled"
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)  # logged in, no mode asked for
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    assert wandb_mode() == "offline"  # the server is silent: never block training


def test_sweep_configs_run_the_cli_with_valid_flags(capsys):
    """Each sweep's command and flags parse (in this process: the parser the console script
    uses, without a Python start-up per sweep)."""
    from lightning_gans.launch.cli import build_cli

    for path in sorted((ROOT / "configs" / "sweeps").glob("*.yaml")):
        sweep = yaml.safe_load(path.read_text())
        command = sweep["command"]
        assert command[2:5] == ["-m", "lightning_gans", "fit"] and command[-1] == "${args}"
        flags = []
        for name, spec in sweep["parameters"].items():
            value = spec.get("value", spec.get("values", [spec.get("min")])[0])
            flags.append(f"--{name}={value}")
        with pytest.raises(SystemExit) as done:  # --print_config prints, then exits
            build_cli(["--config", command[6], *flags, "--print_config"], run=False)
        printed = capsys.readouterr()
        assert done.value.code in (0, None), (path.name, printed.err[-1500:])
        assert "model:" in printed.out, path.name


# --- docs/theory.md §4, example A: the critic alone against a fixed generator at P_theta ----


def lines(theta: float, n: int, g: torch.Generator):
    """n points of P0 = {0} x U[0, 1] and of P_theta = {theta} x U[0, 1]."""
    y0, y1 = torch.rand(n, 1, generator=g), torch.rand(n, 1, generator=g)
    return torch.cat([torch.zeros(n, 1), y0], 1), torch.cat([torch.full((n, 1), theta), y1], 1)


def train_critic_alone(model, opt, theta: float, steps: int, seed: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        real, fake = lines(theta, 256, g)
        loss, _ = model.critic_loss(real, fake, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.after_critic_step()
    real, fake = lines(theta, 8192, g)
    with torch.no_grad():
        return critic_emd(model.critic(real), model.critic(fake)).item()


@pytest.mark.parametrize("theta", [0.5, 1.0])
def test_wgan_gp_critic_estimates_w_equal_theta(theta):
    torch.manual_seed(0)
    model = WGANGP(data_shape=(2,), latent_dim=2, d_width=64, gp_lambda=10.0)
    opt = torch.optim.Adam(model.critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
    estimate = train_critic_alone(model, opt, theta, steps=400)
    assert estimate == pytest.approx(theta, rel=0.10)  # W(P0, P_theta) = |theta|


def test_wgan_clip_critic_estimate_is_proportional_to_theta():
    ratios = []
    for seed in range(3):  # one clipped critic's ratio spreads 1.9-2.9 over seeds: the median
        estimates = {}
        for theta in (1.0, 2.0):
            torch.manual_seed(seed)
            model = WGAN(data_shape=(2,), latent_dim=2, d_width=64)
            opt = torch.optim.RMSprop(model.critic.parameters(), lr=5e-4)
            estimates[theta] = train_critic_alone(model, opt, theta, steps=400)
        assert 0 < estimates[1.0] < 0.1 * 1.0 and estimates[2.0] < 0.1 * 2.0  # K unknown, small
        ratios.append(estimates[2.0] / estimates[1.0])
    assert sorted(ratios)[1] == pytest.approx(2.0, rel=0.2)


def test_a_run_directory_keeps_one_wandb_run_id(tmp_path):
    from lightning_gans.launch.loggers import wandb_run_id

    first = wandb_run_id(tmp_path / "run")
    assert wandb_run_id(tmp_path / "run") == first  # a resumed or requeued run continues it
    assert (tmp_path / "run" / "wandb_run_id").read_text() == first
    assert wandb_run_id(tmp_path / "other") != first


def test_wandb_receives_every_row_under_the_csv_label(tmp_path, monkeypatch):
    """W&B's x-axis (trainer/global_step) is the step each row of metrics.csv carries: the
    generator updates done, as in the checkpoint and picture names."""
    from lightning.pytorch.loggers import WandbLogger

    sent = []
    log_metrics = WandbLogger.log_metrics

    def spy(self, metrics, step=None):
        if any(k.startswith(("train/", "val/")) for k in metrics):  # figures, not pictures
            sent.append(step)
        return log_metrics(self, metrics, step)

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setattr(WandbLogger, "log_metrics", spy)
    fit(tmp_path, "toy/wgan_gp", "--trainer.log_every_n_steps", "3",
        "--trainer.val_check_interval", "5", "--trainer.limit_val_batches", "1",
        steps=10, logger="wandb")  # fmt: skip
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert sent == [int(r["step"]) for r in rows] == [3, 5, 6, 9, 10]
