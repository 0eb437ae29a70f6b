"""Progress in generator steps, for the whole run: ``step 350/500  4.1 it/s  ETA 0:00:36``
(the ETA is the sooner of ``max_steps`` and ``max_time``).

A terminal gets a live rich bar; anything else (a SLURM ``.out`` file, a pipe) gets one plain
line every ``print_every`` steps, so a log shows live progress too. Built on Lightning's public
``ProgressBar`` base: its hooks and ``get_metrics`` only.
"""

from __future__ import annotations

import sys
import time
from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, Timer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

REDRAW_EVERY = 0.1  # seconds: rich redraws a live bar 10 times a second


class StepProgressBar(ProgressBar):
    """Counts generator steps (``trainer.global_step``) against ``trainer.max_steps``."""

    def __init__(self, print_every: int = 50):
        super().__init__()
        self.print_every = print_every
        self.enabled = True
        self.bar: Progress | None = None
        self.task = None
        self.start = (0, 0.0)  # (step, time) at the start of this process's training
        self.mark = (0, 0.0)  # (step, time) of the last line: the rate is measured since it
        self.printed = -1  # the step of the last plain line
        self.shown_at = 0.0  # when the bar's fields were last updated

    def disable(self) -> None:
        self.enabled = False

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        self.start = self.mark = (trainer.global_step, time.monotonic())
        if sys.stdout.isatty():
            self.bar = Progress(
                TextColumn("step"),
                MofNCompleteColumn(),
                BarColumn(),
                TextColumn("{task.fields[rate]} it/s  ETA {task.fields[eta]}"),
                TextColumn("{task.fields[metrics]}"),
            )
            total = trainer.max_steps if trainer.max_steps > 0 else None
            self.task = self.bar.add_task(
                "", total=total, completed=trainer.global_step, rate="-", eta="-", metrics=""
            )
            self.bar.start()

    def rate(self, step: int) -> float:
        """Generator steps per second over the steps since the last line (``print_every``), or
        since training started when none has passed: the current speed, not the average of a
        run whose start (compilation, warm-up) or an evaluation slowed down."""
        since, at = self.mark if step > self.mark[0] else self.start
        return (step - since) / max(time.monotonic() - at, 1e-9)

    def shown_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        """The progress-bar metrics, as floats written on the last logging step."""
        found = self.get_metrics(trainer, pl_module)
        shown = [(k, v) for k, v in found.items() if isinstance(v, int | float) and k != "v_num"]
        return "  ".join(f"{k.split('/')[-1]} {v:.4g}" for k, v in shown)

    def line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> str:
        """``step N/T  R it/s  ETA h:mm:ss  key value ...`` for the step just finished."""
        step, total = trainer.global_step, trainer.max_steps
        of = f"/{total}" if total > 0 else ""
        shown = self.shown_metrics(trainer, pl_module)
        rate, eta = self.rate(step), self.eta(trainer)
        return f"step {step}{of}  {rate:.2f} it/s  ETA {eta}  {shown}".rstrip()

    def eta(self, trainer: L.Trainer) -> str:
        """Time left: the sooner of reaching ``max_steps`` at this rate and ``max_time``."""
        step, total, rate = trainer.global_step, trainer.max_steps, self.rate(trainer.global_step)
        left = [(total - step) / rate] if total > 0 and rate > 0 else []
        timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]  # --trainer.max_time
        left += [t.time_remaining("train") for t in timers if t.time_remaining("train") is not None]
        return str(timedelta(seconds=round(max(0.0, min(left))))) if left else "-"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        if not (self.enabled and trainer.is_global_zero):
            return
        step = trainer.global_step
        if self.bar is not None:
            now = time.monotonic()
            if now - self.shown_at >= REDRAW_EVERY:  # fresher fields would never be drawn
                self.shown_at = now
                rate, eta = f"{self.rate(step):.2f}", self.eta(trainer)
                metrics = self.shown_metrics(trainer, pl_module)
                self.bar.update(self.task, completed=step, rate=rate, eta=eta, metrics=metrics)
        elif self.print_every > 0 and step % self.print_every == 0:
            self.print_line(trainer, pl_module)
        if self.print_every > 0 and step % self.print_every == 0:
            self.mark = (step, time.monotonic())

    def print_line(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        print(self.line(trainer, pl_module), flush=True)
        self.printed = trainer.global_step

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=trainer.global_step)  # the last step drawn
            self.bar.stop()
            self.bar = None
        elif self.enabled and trainer.is_global_zero and self.printed != trainer.global_step:
            self.print_line(trainer, pl_module)  # the final step, unless its line is out
