"""The W&B logger. It never blocks training: it runs offline unless the user is logged in
(or sets WANDB_MODE) and the server answers (docs/design.md#wandb-never-blocks-training), and
it outlives the stop of its service: a preemption's SIGTERM reaches W&B's service process as
well as training, and the logger then starts a new one and hands it every row the run has
logged since (docs/design.md#wandb-through-a-preemption)."""

from __future__ import annotations

import contextlib
import logging
import netrc
import os
import re
import signal
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from lightning_gans import signals
from lightning_gans.errors import ConfigError
from lightning_gans.launch.run_dir import launcher_rank
from lightning_gans.lightning_internals import start_wandb_run_again


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
    (docs/design.md#one-run-one-directory). A sweep trial's run is the one its agent names
    (``WANDB_RUN_ID``), which the sweep waits for; a trial handed out again continues it."""
    path = run_dir / "wandb_run_id"
    trial = os.environ.get("WANDB_RUN_ID") if os.environ.get("WANDB_SWEEP_ID") else None
    if path.exists() and not trial:
        return path.read_text().strip()
    run_id = trial or re.sub(r"[^a-zA-Z0-9_-]", "-", run_dir.name)[:48] + "-" + os.urandom(3).hex()
    if launcher_rank() == 0:  # other ranks' W&B loggers are dummies
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id)
    return run_id


def drop_service() -> None:
    """Tears this process's W&B service down, and forgets a service it shares with its parent
    (``WANDB_SERVICE``, inherited: a sweep agent's), which outlives the teardown and holds the
    run id too: the next ``wandb.init`` starts one of this process's own."""
    import wandb

    try:
        wandb.teardown()
    finally:
        os.environ.pop("WANDB_SERVICE", None)


class FallbackWandbLogger(WandbLogger):
    """Lightning's W&B logger, except that a server which answers the reachability probe but
    then fails to start the run (an error, or nothing within ``wandb_timeout`` seconds)
    leaves the run logging offline, with one warning
    (docs/design.md#wandb-never-blocks-training)."""

    fell_back = False  # whether the run logs offline after a failed online start
    restarts = 0  # how many times this process started W&B's service again
    given_up = False  # W&B could not be started again: the rows stay in metrics.csv

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Every history row this process hands W&B, as the call that made it, in order: one
        # call, one row. A new service is handed those its run does not hold yet.
        self.rows: list[tuple[str, tuple, dict]] = []
        self.hyperparams: list[Any] = []
        self.first_row: int | None = None  # W&B's row number (its _step) of rows[0]
        self._replaying = False

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        run = self._started()
        if self.first_row is None:
            self.first_row = run.starting_step  # 0, or the rows a resumed run holds
        return run

    def _started(self) -> Any:
        try:
            return super().experiment
        except Exception as err:  # wandb's CommError, or its init timeout
            if self.fell_back or os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
                raise
            drop_service()  # it still holds the run id the offline run takes
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

    # --- a service stopped by a signal: docs/design.md#wandb-through-a-preemption -------------

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        self.hyperparams.append(params)
        self._hand_over(lambda: WandbLogger.log_hyperparams(self, params))

    @rank_zero_only
    def log_metrics(self, metrics: Any, step: int | None = None) -> None:
        if self._replaying:  # WandbLogger.log_image's own call: its row is already kept
            return WandbLogger.log_metrics(self, metrics, step)
        self._keep("log_metrics", (dict(metrics), step), {})

    @rank_zero_only
    def log_image(self, key: str, images: list, step: int | None = None, **kwargs: Any) -> None:
        self._keep("log_image", (key, list(images), step), kwargs)

    def _keep(self, name: str, args: tuple, kwargs: dict) -> None:
        self.rows.append((name, args, kwargs))
        self._hand_over(lambda: self._replay(name, args, kwargs))

    def _replay(self, name: str, args: tuple, kwargs: dict) -> None:
        self._replaying = True
        try:
            getattr(WandbLogger, name)(self, *args, **kwargs)
        finally:
            self._replaying = False

    def _hand_over(self, send: Any) -> None:
        """``send()``, unless W&B's service has gone: then a new one, which is handed every
        row its run lacks, this one included."""
        if self.given_up:
            return
        try:
            send()
        except ConnectionError:  # the service's socket: reset, refused or broken
            self.start_again()

    def start_again(self) -> None:
        """Starts W&B's service and the run again, the same run id, and hands it the rows it
        lacks: online, those after the rows the server holds (a resumed run's
        ``starting_step``); offline, all of this process's rows, into a new offline run
        directory that replaces the stopped one (which ``wandb sync`` then leaves out)."""
        stopped = self._experiment_or_none()
        # the stopped run's socket is closed: asyncio would say so at each write it drops
        logging.getLogger("asyncio").setLevel(logging.ERROR)
        with contextlib.suppress(Exception):  # its connection is broken: it cannot be closed
            drop_service()
        try:
            self.restarts += 1
            if self.restarts > 3:
                raise ConnectionError("it stopped again each time")
            run = start_wandb_run_again(self)
            if run.offline and stopped is not None:
                gone = Path(stopped.settings.sync_dir)
                with contextlib.suppress(OSError):  # its rows are all in the new directory
                    gone.rename(gone.with_name("superseded-" + gone.name))
            held = run.starting_step - (self.first_row or 0) if not run.offline else 0
            for params in self.hyperparams:
                WandbLogger.log_hyperparams(self, params)
            for name, args, kwargs in self.rows[max(held, 0) :]:
                self._replay(name, args, kwargs)
        except Exception as err:  # never stops training: the rows are in metrics.csv
            self.given_up = True
            rank_zero_warn(
                f"W&B's service stopped and could not be started again ({err}): the rest of "
                "this run's figures are in metrics.csv only"
            )
            return
        rank_zero_warn(
            "W&B's service was stopped (a signal reaches every process of a job): started "
            f"it again and handed it the run's rows ({len(self.rows)} this process logged)"
        )

    def _experiment_or_none(self) -> Any:
        try:
            return self.experiment
        except Exception:
            return None

    def finish(self) -> None:
        """Ends the W&B run (Lightning leaves it open) so that its history is written; a
        service stopped since the last row is started again first. A run stopped by the
        scheduler (SIGUSR1, SIGTERM) is marked preempted, not finished: a sweep hands such a
        trial out again, to be resumed."""
        if self.given_up:
            return
        preempted = any(s in signals.received for s in (signal.SIGUSR1, signal.SIGTERM))
        for _ in range(2):
            try:
                if preempted:
                    self.experiment.mark_preempting()
                self.experiment.finish()
                return
            except ConnectionError:
                self.start_again()
                if self.given_up:
                    return


def finish_wandb(trainer) -> None:
    """Ends the W&B run so that its history is written; Lightning leaves it open. A server
    that has stopped taking the run's data holds it up for ``wandb_timeout`` seconds at most:
    the data stays in the run's W&B directory, for ``wandb sync``."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.global_rank == 0:
            run = logger.experiment
            timeout, saved = run.settings.finish_timeout, run.settings.sync_dir
            try:
                logger.finish() if isinstance(logger, FallbackWandbLogger) else run.finish()
            except TimeoutError:
                rank_zero_warn(
                    f"W&B server did not take the run's data within {timeout:g} s: it is "
                    f"saved in {saved}; upload it with `wandb sync --include-online {saved}`"
                )
