"""What a run prints around training: the model's parts before, the run's results after."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count


class ParameterSummary(ModelSummary):
    """Lightning's model summary as one short table: name, type and parameters of each part.
    Its FLOPs column is dropped: it reads 0 unless a model defines ``example_input_array``,
    which a generator and a critic with different inputs cannot share."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from rich import get_console
        from rich.table import Table

        columns = dict(summary_data)
        table = Table(header_style="bold")
        for name in ("Name", "Type", "Params"):
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(columns["Name"], columns["Type"], columns["Params"], strict=True):
            table.add_row(*row)
        table.add_row("total", "", get_human_readable_count(int(total_parameters)), style="bold")
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
    if list(run_dir.glob("wandb/offline-run-*")):  # W&B logged offline (by choice or fallback)
        lines.append(f"  W&B ran offline; upload with: wandb sync {run_dir}/wandb/offline-run-*")
    return "\n".join(lines)
