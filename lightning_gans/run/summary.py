"""What a run prints around training: the model's parts before, the run's results after."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from lightning_gans.nets.blocks import Squeeze


class ParameterSummary(ModelSummary):
    """Lightning's model summary as one short table: name, type and parameters of each part of
    the model. A part that only wraps a net (the critic's ``Squeeze`` to one score) shows the
    net's type. Lightning's FLOPs column is dropped: it reads 0 unless a model defines
    ``example_input_array``, which a generator and a critic with different inputs cannot share."""

    def __init__(self, max_depth: int = 1, **kwargs) -> None:
        super().__init__(max_depth=max_depth, **kwargs)
        self.depth = max_depth

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.depth or not trainer.is_global_zero:
            return
        from rich import get_console
        from rich.table import Table

        table = Table(header_style="bold")
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for name, part in pl_module.named_children():
            shown = part.net if isinstance(part, Squeeze) else part
            n = sum(p.numel() for p in part.parameters())
            table.add_row(name, type(shown).__name__, get_human_readable_count(n))
        total = sum(p.numel() for p in pl_module.parameters())
        table.add_row("total", "", get_human_readable_count(total), style="bold")
        get_console().print(table)


# the figures a run ends with: the first logged of each group (validation before training)
FINAL = [
    ("val/critic_emd", "train/critic_emd"),
    ("val/exact_w1",),
    ("val/domain_fid", "val/fid"),
    ("val/elbo", "train/elbo"),
    ("val/d_real", "train/d_real"),
]


def run_report(trainer: L.Trainer, run_dir: Path) -> str:
    """A few lines after training: where everything is, and the last figures."""
    pictures = sorted((run_dir / "samples").glob("step_*.png"))
    lines = [
        f"run directory: {run_dir}",
        f"  checkpoints: {run_dir / 'checkpoints'} (last.ckpt = newest)",
        f"  samples:     {pictures[-1] if pictures else run_dir / 'samples'}",
    ]
    metrics = trainer.callback_metrics
    found = [next((k for k in group if k in metrics), None) for group in FINAL]
    figures = [f"{k} {float(metrics[k]):.4g}" for k in found if k]
    if figures:
        lines.append(f"  at step {trainer.global_step}: " + ", ".join(figures))
    offline_wandb = trainer.is_global_zero and any(  # this fit logged to W&B offline
        isinstance(logger, WandbLogger)  # (by choice, or after a failed start online)
        and getattr(logger.experiment.settings, "mode", None) in ("offline", "dryrun")
        for logger in trainer.loggers
    )
    if offline_wandb and list(run_dir.glob("wandb/offline-run-*")):
        lines.append(f"  W&B ran offline; upload with: wandb sync {run_dir}/wandb/offline-run-*")
    return "\n".join(lines)
