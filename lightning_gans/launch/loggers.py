"""The loggers. W&B is the default and never blocks training: it runs offline
unless the user is logged in (or sets WANDB_MODE) and the server answers
(docs/design.md#wandb-never-blocks-training)."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import netrc
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from lightning_gans.errors import ConfigError
from lightning_gans.launch.run_dir import launcher_rank
from lightning_gans.lightning_internals import drop_wandb_anonymous
from lightning_gans.run_lock import lock_lost

LOGGERS = ("wandb", "csv", "tensorboard", "none")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


MODES = ("online", "offline", "disabled", "dryrun")


def wandb_mode() -> str:
    """offline / online / disabled. Without ``WANDB_MODE``: online only when logged in and the
    server answers within 3 seconds. ``WANDB_MODE=online`` asks for the server: refused in one
    line when not logged in, offline with one warning when the server does not answer (W&B
    never blocks training). Any other value is a typo, refused, not quietly offline."""
    asked = os.environ.get("WANDB_MODE", "").lower()
    if asked and asked not in MODES:
        raise ConfigError(
            f"WANDB_MODE {asked!r} (make: WANDB=) must be online, offline or disabled"
        )
    if asked in ("offline", "dryrun", "disabled"):
        return {"dryrun": "offline"}.get(asked, asked)
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    logged_in = bool(os.environ.get("WANDB_API_KEY"))
    if not logged_in:
        try:
            logged_in = netrc.netrc().authenticators(urlparse(base).hostname or "") is not None
        except (OSError, netrc.NetrcParseError):
            logged_in = False
    if not logged_in:
        if asked == "online":
            raise ConfigError(
                "WANDB_MODE online (make: WANDB=online): not logged in to W&B; run `wandb "
                "login` (or set WANDB_API_KEY), or log offline and `wandb sync` later"
            )
        return "offline"
    if not _reachable(base):
        rank_zero_warn(
            f"W&B server {base} is unreachable: logging offline instead "
            "(upload later with `wandb sync`)"
        )
        return "offline"
    return "online"


def wandb_run_id(run_dir: Path) -> str:
    """One W&B run per run directory: a resumed or requeued run continues it
    (docs/design.md#one-run-one-directory)."""
    path = run_dir / "wandb_run_id"
    if path.exists():
        return path.read_text().strip()
    run_id = re.sub(r"[^a-zA-Z0-9_-]", "-", run_dir.name)[:48] + "-" + os.urandom(3).hex()
    if launcher_rank() == 0:  # other ranks' W&B loggers are dummies
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id)
    return run_id


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


class FallbackWandbLogger(WandbLogger):
    """Lightning's W&B logger, except that a server which answers the reachability probe but
    then fails to start the run (an error, or nothing within ``wandb_timeout`` seconds)
    leaves the run logging offline, with one warning
    (docs/design.md#wandb-never-blocks-training)."""

    fell_back = False  # whether the run logs offline after a failed online start

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        try:
            return super().experiment
        except Exception as err:  # wandb's CommError, or its init timeout
            if self.fell_back or os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
                raise
            import wandb

            wandb.teardown()  # its service still holds the run id the offline run takes
            # a service this process shares with its parent (WANDB_SERVICE, inherited: a sweep
            # agent's, say) keeps that id too, and outlives the teardown: start one of our own
            os.environ.pop("WANDB_SERVICE", None)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            rank_zero_warn(
                f"W&B could not start the run online ({first[:200]}): logging offline "
                "instead (upload later with `wandb sync`)"
            )
            self.fell_back = True
        asked = os.environ.get("WANDB_MODE")
        os.environ["WANDB_MODE"] = "offline"  # what wandb.init reads, for this start only
        try:
            return super().experiment
        finally:
            if asked is None:
                os.environ.pop("WANDB_MODE", None)
            else:
                os.environ["WANDB_MODE"] = asked


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


def finish_wandb(trainer) -> None:
    """Ends the W&B run so that its history is written; Lightning leaves it open. A server
    that has stopped taking the run's data holds it up for ``wandb_timeout`` seconds at most:
    the data stays in the run's W&B directory, for ``wandb sync``."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.global_rank == 0:
            run = logger.experiment
            timeout, saved = run.settings.finish_timeout, run.settings.sync_dir
            try:
                run.finish()
            except TimeoutError:
                rank_zero_warn(
                    f"W&B server did not take the run's data within {timeout:g} s: it is "
                    f"saved in {saved}; upload it with `wandb sync --include-online {saved}`"
                )
