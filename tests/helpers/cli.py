"""Tiny settings for the real CLI, and the ways the tests start it: in this process
(``fit``: the CLI's model, data and trainer, so a test can read them afterwards) or as a user
does (``run_module``: ``python -m lightning_gans`` in a subprocess, exit code and output)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[2]

# Small nets and batches: each fit costs a few seconds on 2 CPU cores.
TINY_TOY = ["--data.batch_size", "32", "--data.toy_size", "4096"]
TINY_DIGITS = ["--data.batch_size", "16"]
TINY_GAN = ["--model.g_width", "32", "--model.d_width", "32"]
TINY_GAN_DIGITS = ["--model.g_width", "8", "--model.d_width", "8", "--model.latent_dim", "16"]
TINY_VAE = ["--model.width", "16"]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def cli_args(
    tmp_path: Path,
    config: str,
    *extra: str,
    steps: int = 4,
    logger: str = "csv",
    name: str = "run",
) -> list[str]:
    """Arguments for a short fit of ``configs/<config>.yaml`` writing into tmp_path/<name>."""
    toy = config.startswith("toy/")
    tiny = TINY_TOY if toy else TINY_DIGITS
    tiny = tiny + (TINY_VAE if config.endswith("vae") else TINY_GAN if toy else TINY_GAN_DIGITS)
    run = ["--run.root", str(tmp_path), "--run.name", name, "--run.logger", logger]
    steps_arg = ["--trainer.max_steps", str(steps)]
    return [
        "--config",
        str(ROOT / "configs" / f"{config}.yaml"),
        *tiny,
        *QUIET,
        *steps_arg,
        *run,
        *extra,
    ]


def fit_cli(
    args: Sequence[str], callbacks: Sequence[L.Callback] = (), ckpt_path: str | Path | None = None
):
    """Builds the real CLI (model, data, trainer) from ``args``, adds ``callbacks``, fits
    (resuming from ``ckpt_path``) and returns the CLI."""
    from lightning_gans.launch.cli import build_cli

    cli = build_cli(list(args), run=False)
    cli.trainer.callbacks.extend(callbacks)
    cli.trainer.fit(
        cli.model, cli.datamodule, ckpt_path=None if ckpt_path is None else str(ckpt_path)
    )
    return cli


def fit(
    tmp_path: Path,
    config: str,
    *extra: str,
    callbacks: Sequence[L.Callback] = (),
    ckpt_path: str | Path | None = None,
    **settings,
):
    """A short fit of ``configs/<config>.yaml``: ``cli_args(tmp_path, config, *extra,
    **settings)`` (steps, logger, name), then ``fit_cli``."""
    return fit_cli(cli_args(tmp_path, config, *extra, **settings), callbacks, ckpt_path)


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
        env={**{k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}, **(env or {})},
    )  # not this process's W&B service (an in-process test may have started one): its own


MAKE_SAYS = re.compile(r"^make(\[\d+\])?: \*\*\* ")  # make's own "Error 2" line, at any depth


def own_lines(stderr: str) -> list[str]:
    """What a command printed on stderr, less make's own report that a recipe failed (which
    reads ``make[1]: ***`` when ``make test`` runs the tests)."""
    return [ln for ln in stderr.splitlines() if not MAKE_SAYS.match(ln)]


def signal_every_process(pid: int, sig: int) -> list[str]:
    """Sends ``sig`` to ``pid`` and every process below it, whatever its session or process
    group (W&B's service, DataLoader workers), as Slurm signals the processes of a job step.
    Returns their names."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    todo, names = [pid], []
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            names.append(Path(f"/proc/{p}/comm").read_text().strip())
            os.kill(p, sig)
        except OSError:
            pass
    return names
