"""The loggers: W&B (the default, launch/wandb_logger.py) with a CSV copy of its rows
beside it, CSV alone, TensorBoard or none."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from lightning_gans.errors import ConfigError
from lightning_gans.launch.wandb_logger import (  # noqa: F401 (finish_wandb, wandb_run_id: here too)
    FallbackWandbLogger,
    finish_wandb,
    wandb_mode,
    wandb_run_id,
)
from lightning_gans.lightning_internals import drop_wandb_anonymous
from lightning_gans.run_lock import lock_lost

LOGGERS = ("wandb", "csv", "tensorboard", "none")


def kept_history(path: Path, keep_through: int | None) -> tuple[list[str], list[dict]]:
    """The header and the rows of ``metrics.csv`` that a run resumed at generator step
    ``keep_through`` keeps: those labelled up to and including it (a run resumed from an
    earlier checkpoint logs the later ones again). Nothing for a run that is not resumed."""
    if keep_through is None or not path.is_file():
        return [], []
    text = path.read_text(errors="replace")
    if not text.endswith("\n"):  # the last row was cut by a kill (or a full disk): not kept
        text = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(text, newline=""))
    keys = list(reader.fieldnames or [])
    return keys, [row for row in reader if _whole(row, keys) and _step(row) <= keep_through]


def _whole(row: dict, keys: list[str]) -> bool:
    return None not in row and all(row.get(k) is not None for k in keys)


def _step(row: dict) -> float:
    try:
        return float(row.get("step") or "nan")
    except ValueError:
        return math.nan


class HistoryCSVLogger(CSVLogger):
    """Lightning's CSV logger into ``<run>/metrics.csv``, except that it keeps a resumed run's
    history. Every row is labelled with the generator updates done, so the rows of step s were
    all written by the time its checkpoint was, and none of them is logged again
    (docs/design.md#one-step-label). Lightning's writer deletes an existing file when it
    starts: the rows kept are read before and written back after."""

    def __init__(self, run_dir: Path, keep_through: int | None = None) -> None:
        super().__init__(str(run_dir), name="", version="")
        self.keep_through = keep_through
        self.history_restored = False

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self.history_restored:
            return super().experiment
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        keys, rows = kept_history(path, self.keep_through)
        writer = super().experiment  # deletes the file
        if keys:
            keys = sorted(keys)  # the writer's own order of the columns
            with open(path, "w", newline="") as f:
                table = csv.DictWriter(f, fieldnames=keys)
                table.writeheader()
                table.writerows(rows)
            writer.metrics_keys = keys
        self.history_restored = True
        return writer

    @rank_zero_only
    def save(self) -> None:
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.parent.is_dir() or lock_lost() == "taken":  # LastCheckpoint stops the run
            return  # without writing into a directory that is no longer this run's
        size = path.stat().st_size if path.is_file() else 0
        try:
            super().save()
        except OSError:  # a full disk: the rows appended so far go, no half row stays
            with contextlib.suppress(OSError):  # a read-only one cannot be, nor need be
                if path.stat().st_size > size:
                    os.truncate(path, size)
            raise


def make_loggers(options: Any, run_dir: Path, resume_step: float | None = None) -> list[Logger]:
    """The loggers ``options`` (the CLI's ``--run.*``) ask for: ``wandb`` (default; with a CSV
    copy of the metrics beside it), ``csv``, ``tensorboard`` or ``none``. ``resume_step``: the
    run continues from that generator step in ``run_dir``."""
    kind = options.logger
    if kind not in LOGGERS:
        raise ConfigError(f"unknown logger {kind!r}; valid: {', '.join(LOGGERS)}")
    timeout = options.wandb_timeout
    if not 0 < timeout < float("inf"):  # NaN fails too
        raise ConfigError(f"run.wandb_timeout must be a number of seconds > 0, got {timeout}")
    table = HistoryCSVLogger(run_dir, keep_through=resume_step)  # <run>/metrics.csv
    if kind == "none":
        return []
    if kind == "csv":
        return [table]
    if kind == "tensorboard":
        import importlib.util

        if not any(importlib.util.find_spec(m) for m in ("tensorboard", "tensorboardX")):
            raise ConfigError(
                "run.logger tensorboard needs the tensorboard package: "
                ".venv/bin/pip install tensorboard, or use --run.logger wandb or csv"
            )
        return [TensorBoardLogger(str(run_dir), name="", version="tensorboard"), table]
    mode = wandb_mode()
    if mode == "disabled":
        return [table]
    if options.log_model and mode == "offline":
        raise ConfigError(
            f"--run.log_model {options.log_model} uploads checkpoints, but W&B is offline: "
            "log in (wandb login) or set WANDB_MODE=online, or leave log_model false"
        )
    os.environ.setdefault("WANDB_SILENT", "true")
    import wandb as wandb_sdk

    wandb = FallbackWandbLogger(
        save_dir=str(run_dir),
        # a flag, else the W&B variables users set, else ours
        project=options.project or os.environ.get("WANDB_PROJECT") or "lightning-gans",
        entity=options.entity or os.environ.get("WANDB_ENTITY"),
        group=options.group,
        tags=options.tags or None,
        name=run_dir.name,
        id=wandb_run_id(run_dir),
        resume="allow",
        offline=mode == "offline",
        job_type=options.job_type,
        log_model=options.log_model,
        # a failing server holds up neither the start nor the end for longer than this
        settings=wandb_sdk.Settings(
            init_timeout=timeout, finish_timeout=timeout, finish_timeout_raises=True
        ),
    )
    drop_wandb_anonymous(wandb)  # else wandb warns on every run that it has no effect
    return [wandb, table]
