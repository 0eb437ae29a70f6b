"""Where a run writes: one directory per run, found again on resume and by DDP children."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from lightning_gans.errors import ConfigError

RUN_DIR_ENV = "LIGHTNING_GANS_RUN_DIR"  # "<pid>:<dir>": rank 0's run directory for its children


def make_run_dir(root: str, name: str | None, model: str, dataset: str) -> Path:
    """``<root>/<name>``; by default ``<model>-<dataset>-<SLURM job id or timestamp>``, so a
    requeued SLURM job finds its own directory again (docs/design.md#one-run-one-directory)."""
    parent, _, inherited = os.environ.get(RUN_DIR_ENV, "").partition(":")
    child = os.environ.get("LOCAL_RANK", "0") != "0" and parent == str(os.getppid())
    if inherited and child:  # a DDP process started by rank 0 of this very run
        return Path(inherited)
    if not name:
        tag = (
            os.environ.get("SLURM_JOB_ID")
            or os.environ.get("TORCHELASTIC_RUN_ID")
            or time.strftime("%Y%m%d-%H%M%S")
        )
        name = f"{model}-{dataset}-{tag}"
    path = Path(root) / name
    os.environ[RUN_DIR_ENV] = f"{os.getpid()}:{path}"
    return path


def resolve_checkpoint(path: str | None) -> Path | None:
    """A checkpoint file, or a run directory meaning its ``checkpoints/last.ckpt``."""
    if not path or path in ("last", "best", "hpc", "registry"):  # Lightning's own keywords
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt" if (p / "checkpoints").is_dir() else p / "last.ckpt"
    if not p.is_file():
        raise ConfigError(
            f"checkpoint {path!r} not found: pass a .ckpt file or a run directory "
            "holding checkpoints/last.ckpt"
        )
    return p


def git_commit() -> str:
    """The commit the code ran at, recorded with every run ("unknown" outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
