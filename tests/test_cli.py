"""The real entry points (python -m lightning_gans, lightning-gans, make): flags, configs and the
one-line errors with their exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY, cli_args, fit, fit_cli, run_module


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return lines[0]


def test_print_config_resolves_overrides():
    proc = run_module(
        "fit",
        "--config",
        "configs/wgan.yaml",
        "--model.n_critic",
        "3",
        "--data.dataset",
        "toy8",
        "--trainer.max_steps",
        "200",
        "--print_config",
    )
    assert proc.returncode == 0, proc.stderr
    config = yaml.safe_load(proc.stdout)
    assert config["model"]["init_args"]["n_critic"] == 3
    assert config["data"]["dataset"] == "toy8"
    assert config["trainer"]["max_steps"] == 200
    assert "data_shape" not in config["model"]["init_args"]  # linked at instantiation, not stated


@pytest.mark.slow
def test_fit_validate_test_through_console_script(tmp_path):
    exe = Path(sys.executable).parent / "lightning-gans"
    common = [*TINY_TOY, *TINY_GAN, *QUIET, "--run.root", str(tmp_path), "--run.logger", "csv"]
    fit = subprocess.run(
        [
            str(exe),
            "fit",
            "--config",
            "configs/toy/wgan.yaml",
            *common,
            "--run.name",
            "a",
            "--trainer.max_steps",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert fit.returncode == 0, fit.stderr[-2000:]
    run = tmp_path / "a"
    assert f"run directory: {run}" in fit.stdout + fit.stderr
    ckpt = run / "checkpoints" / "last.ckpt"
    for sub in ("validate", "test"):
        proc = run_module(
            sub,
            "--config",
            "configs/toy/wgan.yaml",
            *common,
            "--run.name",
            sub,
            "--ckpt_path",
            str(ckpt),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "critic_emd" in proc.stdout


@pytest.mark.slow
def test_empty_and_corrupt_image_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    base = [
        "fit",
        "--config",
        "configs/wgan.yaml",
        *QUIET,
        "--run.root",
        str(tmp_path / "runs"),
        "--run.logger",
        "csv",
        "--trainer.max_steps",
        "2",
        "--data.dataset",
        "folder",
    ]
    # with the W&B logger too: a failed start leaves no run directory, no offline W&B run
    proc = run_module(*base, "--data.root", str(empty), "--run.logger", "wandb",
                      env={"WANDB_MODE": "offline"})  # fmt: skip
    assert proc.returncode == 2 and "holds no images" in one_line_error(proc)
    runs = tmp_path / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8 truncated")
    proc = run_module(
        *base,
        "--data.root",
        str(bad),
        "--data.val_fraction",
        "0.5",
        "--data.batch_size",
        "1",
        "--model.n_critic",
        "1",
    )
    assert proc.returncode == 2 and "corrupt.jpg" in one_line_error(proc)
    assert not runs.exists() or list(runs.iterdir()) == []


def test_make_help_is_the_default_target():
    proc = subprocess.run(["make"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for target in ("install", "train", "test", "lint", "format", "clean"):
        assert target in proc.stdout


def test_a_rerun_from_a_saved_config_is_a_new_run_that_writes_only_its_own_directory(tmp_path):
    """config.yaml carries checkpoint.dirpath and default_root_dir of its run: a rerun from it
    (as the README suggests) must not write into the old run's checkpoints/."""
    fit(tmp_path, "toy/wgan_gp", "--trainer.limit_val_batches", "0", steps=2, name="old")
    old = tmp_path / "old" / "checkpoints" / "last.ckpt"
    before = old.read_bytes()
    again = fit_cli(["--config", str(tmp_path / "old" / "config.yaml"), "--run.name", "new",
                     "--trainer.max_steps", "3"])  # fmt: skip
    assert again.trainer.global_step == 3
    assert old.read_bytes() == before  # the old run's file is untouched
    assert (
        torch.load(tmp_path / "new" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
        == 3
    )


def test_the_users_plugins_keep_the_atomic_checkpoint_io(tmp_path):
    from lightning_gans.callbacks.checkpoints import AtomicCheckpointIO

    env = "lightning.fabric.plugins.environments.LightningEnvironment"
    cli = fit(tmp_path, "toy/wgan_gp", "--trainer.plugins", env, steps=1)
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_time_valued_validation_interval_is_accepted(tmp_path):
    cli = fit(tmp_path, "toy/wgan_gp", "--trainer.val_check_interval", "00:00:00:01", steps=3)
    assert cli.trainer.global_step == 3


def test_an_option_group_switched_off_is_left_out_of_the_trainer(tmp_path):
    """Lightning calls every hook of every callback at every step: a callback with nothing to do
    is not handed to the trainer, and its options still read as given."""
    from lightning_gans.callbacks.measurements import PeriodicImageQuality, TransportDistance
    from lightning_gans.callbacks.summary import ParameterSummary
    from lightning_gans.launch.cli import build_cli

    def kinds(*flags: str) -> set[type]:
        name = "run-" + "-".join(f.strip("-").replace(".", "_") for f in flags)
        cli = build_cli(cli_args(tmp_path, "wgan_gp", *flags, name=name), run=False)
        return {type(c) for c in cli.trainer.callbacks}

    quiet = kinds("--fid.every_n_steps", "0")  # QUIET: no summary; FID off, transport on
    assert TransportDistance in quiet and not {PeriodicImageQuality, ParameterSummary} & quiet
    on = kinds("--trainer.enable_model_summary", "true")  # the config measures FID
    assert {PeriodicImageQuality, ParameterSummary, TransportDistance} <= on
    assert TransportDistance not in kinds("--transport.n_points", "0")
