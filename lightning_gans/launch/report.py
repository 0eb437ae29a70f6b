"""What a run prints after training: where everything is, and the last figures."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger

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
    for callback in trainer.callbacks:  # the lowest FID measured, kept through resumes
        best = getattr(callback, "best", None)
        if isinstance(best, dict) and hasattr(callback, "best_path"):
            lines.append(f"  best:        {callback.best_path(trainer)} (generator step "
                         f"{best['step']}, {best['name']} {best['figure']:.4g})")  # fmt: skip
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
