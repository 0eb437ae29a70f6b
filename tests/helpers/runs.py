"""What a finished run left behind, read back: its metrics.csv rows and its best.ckpt."""

from __future__ import annotations

import csv
from pathlib import Path

import torch


def rows(run: Path) -> list[dict]:
    """``<run>/metrics.csv``, one dict per row, in the order written."""
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def figures(run: Path, key: str) -> dict[int, float]:
    """``key``'s figure by step, from the rows that hold it."""
    return {int(r["step"]): float(r[key]) for r in rows(run) if r.get(key)}


def best_of(run: Path) -> tuple[int, dict]:
    """``<run>/checkpoints/best.ckpt``'s generator step and the FID callback's kept best."""
    saved = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    (state,) = [v for k, v in saved["callbacks"].items() if "PeriodicImageQuality" in k]
    return saved["global_step"], state["best"]
