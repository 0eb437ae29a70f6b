"""Shared fixtures: tiny sizes, offline W&B, every run inside tmp_path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(2)

# Small nets and batches: each fit costs a few seconds on 2 CPU cores.
TINY_TOY = ["--data.batch_size", "32", "--data.toy_size", "4096"]
TINY_DIGITS = ["--data.batch_size", "16"]
TINY_GAN = ["--model.g_width", "32", "--model.d_width", "32"]
TINY_GAN_DIGITS = ["--model.g_width", "8", "--model.d_width", "8", "--model.latent_dim", "16"]
TINY_VAE = ["--model.width", "16"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def cli_args(
    tmp_path: Path, config: str, *extra: str, steps: int = 4, logger: str = "csv"
) -> list[str]:
    """Arguments for a short fit of ``configs/<config>.yaml`` writing into tmp_path/run."""
    toy = config.startswith("toy/")
    tiny = TINY_TOY if toy else TINY_DIGITS
    if config.endswith("vae"):
        tiny = tiny + TINY_VAE
    else:
        tiny = tiny + (TINY_GAN if toy else TINY_GAN_DIGITS)
    return [
        "--config",
        str(ROOT / "configs" / f"{config}.yaml"),
        *tiny,
        *QUIET,
        "--trainer.max_steps",
        str(steps),
        "--run.root",
        str(tmp_path),
        "--run.name",
        "run",
        "--run.logger",
        logger,
        *extra,
    ]


def fit(tmp_path: Path, config: str, *extra: str, steps: int = 4, logger: str = "csv"):
    """Builds the real CLI (model, data, trainer) without running, then fits; returns the CLI."""
    from lightning_gans.cli import build_cli

    cli = build_cli(cli_args(tmp_path, config, *extra, steps=steps, logger=logger), run=False)
    cli.trainer.fit(cli.model, cli.datamodule)
    return cli


def run_module(
    *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    """``python -m lightning_gans ...`` in a subprocess: the real entry point, exit code too."""
    return subprocess.run(
        [sys.executable, "-m", "lightning_gans", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def fit_run(tmp_path):
    def _fit(config: str, *extra: str, steps: int = 4, logger: str = "csv"):
        return fit(tmp_path, config, *extra, steps=steps, logger=logger)

    return _fit
