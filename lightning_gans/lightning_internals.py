"""Every touch of a private Lightning name, in one place (docs/design.md#private-lightning-apis).

Nothing else in the package reads or writes a Lightning attribute that starts with ``_``,
overrides a private method or filters Lightning's message texts: it calls a function here.
Each touch has a canary in ``tests/test_lightning_internals.py`` that fails, naming the touch,
when Lightning renames, removes or changes what it relies on. Each is here because no public
API gives the same thing; what each buys was measured (docs/design.md).

- ``should_update_logs``: Lightning's own decision whether this step's figures are written.
- ``align_log_counter``, ``label_epoch_rows``: Lightning's log-step counter, set so that every
  row (step and epoch rows alike) is labelled with the generator step it belongs to.
- ``forget_step_figures``: drops the template's own figures of a training step from
  Lightning's result collection once they are written (else Lightning reads them again, with a
  host sync, at every later step), or at a stop on a step that logged nothing.
- ``count_optimizer_step``: the counters ``LightningOptimizer.step`` keeps, for the lean path.
- ``lightning_sigterm_off``: Lightning's SIGTERM handler and its per-step DDP broadcast.
- ``stop_without_extra_validation``: stops after this step without Lightning's validation at
  a stop (a row the uninterrupted run never logged).
- ``CheckpointHparamsHook``: a hook around ``LightningCLI._parse_ckpt_path``.
- ``drop_wandb_anonymous``: the ``anonymous`` value Lightning hands ``wandb.init``.
- ``start_wandb_run_again``: Lightning's W&B logger keeps the run it started; this starts it
  again with the same ``wandb.init`` arguments after W&B's service stopped.
- ``LIGHTNING_INFO_UNSAID``, ``LIGHTNING_WARNINGS_UNSAID``: Lightning's messages kept off the
  console (launch/console.py installs the filters).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import lightning as L
from lightning.pytorch.cli import LightningCLI

# --- logging: docs/design.md#one-step-label ------------------------------------------------


def should_update_logs(trainer: L.Trainer) -> bool:
    """Whether Lightning writes this step's training figures (its ``log_every_n_steps`` rule,
    and any stop). Recomputing it from public counters would drift from Lightning's rule."""
    return trainer._logger_connector.should_update_logs


def align_log_counter(trainer: L.Trainer, step: int) -> None:
    """Lightning's log-step counter (which picks the logging steps and labels rows without a
    ``step`` figure) set to ``step``, the generator updates done before this batch. It equals
    that in an uninterrupted run, but resumes one ahead from a checkpoint written at the end
    of a fit: an extended run would otherwise log other steps than a straight one."""
    trainer.fit_loop.epoch_loop._batches_that_stepped = step


def label_epoch_rows(trainer: L.Trainer, step: int) -> None:
    """Epoch-level rows (a figure logged with ``on_epoch=True``) get ``step``: Lightning labels
    them with its counter minus one (``fit_loop.on_advance_end``), one below the training row
    of the same step. ``align_log_counter`` resets the counter at the next batch."""
    trainer.fit_loop.epoch_loop._batches_that_stepped = step + 1


def forget_step_figures(trainer: L.Trainer, names: Iterable[str]) -> None:
    """Drops ``names``, figures logged in ``training_step``, from Lightning's results of the
    current step; any other figure (a fork's own ``self.log``, its epoch means) is untouched.
    Their values stay in ``trainer.callback_metrics`` and ``progress_bar_metrics``."""
    results = getattr(trainer, "_results", None)
    if results is None:
        return
    names = set(names)
    for item in results.values():
        if item.meta.fx == "training_step" and item.meta.name in names and item.is_tensor:
            item.reset()


# --- the lean update path: docs/design.md#the-lean-update-path -----------------------------


def count_optimizer_step(optimizer: Any, step: Any) -> None:
    """``step()`` of the raw optimizer between the two callbacks ``LightningOptimizer.step``
    runs around it: they count the step in ``global_step`` and time it in the profiler."""
    optimizer._on_before_step()
    step()
    optimizer._on_after_step()


# --- preemption: docs/design.md#preemption-and-atomic-checkpoints --------------------------


def _off(*args: Any) -> None:
    """In place of Lightning's SIGTERM handler and its per-step broadcast of it."""


def lightning_sigterm_off(trainer: L.Trainer) -> None:
    """Lightning's SIGTERM handling switched off for this trainer: its handler stops the loop
    without a checkpoint, and under DDP it broadcasts a flag (and reads it back with
    ``.item()``) at every step. Preemption is the template's, at a step boundary."""
    trainer._signal_connector.register_signal_handlers = _off
    trainer.fit_loop.epoch_loop._broadcast_sigterm_tensor = _off


def stop_without_extra_validation(trainer: L.Trainer) -> None:
    """Stops the fit after this step. Lightning validates at any stop; after a signal that
    would add a row the uninterrupted run never logged (and delay the exit), so only a
    validation due at this step anyway runs."""
    epoch_loop = trainer.fit_loop.epoch_loop
    due = epoch_loop._should_check_val_fx(trainer.fit_loop._data_fetcher)  # before should_stop
    trainer.should_stop = True
    epoch_loop._skip_next_val = not due


# --- the CLI ----------------------------------------------------------------------------------


class CheckpointHparamsHook(LightningCLI):
    """LightningCLI reads the model's options from ``--ckpt_path`` (``_parse_ckpt_path``)
    before any public hook runs. ``before_checkpoint_hparams`` runs first and says whether
    Lightning may read them at all (a corrupt file must be one line naming it, and a fit keeps
    the checkpoint's model by the template's resume rule, not by Lightning's merge)."""

    def before_checkpoint_hparams(self) -> bool:
        return True

    def _parse_ckpt_path(self) -> None:
        if self.before_checkpoint_hparams():
            super()._parse_ckpt_path()


# --- W&B --------------------------------------------------------------------------------------


def drop_wandb_anonymous(logger: Any) -> None:
    """Lightning always hands ``wandb.init`` an ``anonymous`` value, and wandb then prints
    "The anonymous setting has no effect" on every run."""
    getattr(logger, "_wandb_init", {}).pop("anonymous", None)


def start_wandb_run_again(logger: Any) -> Any:
    """Lightning's ``WandbLogger`` starts its run once and keeps it: after W&B's service
    stopped (docs/design.md#wandb-through-a-preemption) the same ``wandb.init`` arguments start
    it again (the same run id), with the x-axis Lightning gives a new run."""
    import wandb

    logger._experiment = run = wandb.init(**logger._wandb_init)
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
    return run


# --- the console: docs/design.md#the-console --------------------------------------------------

# Lightning's info lines that say nothing about this run (substrings)
LIGHTNING_INFO_UNSAID = (
    "litlogger",  # a tip printed at every fit from Lightning 2.6.1 on
    "Trainer already configured with model summary",
    "Ignoring `Trainer(max_time=...)`",  # callbacks/timer.py's AgreedTimer stands in for it
    "Seed set to",  # config.yaml records the seed; said before a bad flag, it is a second line
    "Restoring states from the checkpoint",  # the run report names the run; a 2nd error line
)
# Lightning's warnings that say nothing about this run (regular expressions, as warnings takes)
LIGHTNING_WARNINGS_UNSAID = (
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*no pre-optimization state was saved.*",
    # on a login node: Lightning's hint that srun exists is not about this run (make slurm is)
    ".*The `srun` command is available.*",
    # a resumed run writes into its own checkpoints/ again, by design
    ".*Checkpoint directory .* exists and is not empty.*",
    # the CSV logger's directory is the run's (config.yaml beside metrics.csv), by design
    ".*Experiment logs directory .* exists and is not empty.*",
)
# the Lightning release that first says a message, where it is later than the lowest allowed
SAID_SINCE = {"litlogger": "2.6.1"}
