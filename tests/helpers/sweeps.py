"""Sweeps against the stand-in W&B server: tiny copies of the sweep configs, the environment
that points W&B at the server, and the checks every trial must pass."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import ROOT
from tests.helpers.fake_wandb import FakeWandbServer

SWEEPS = sorted((ROOT / "configs" / "sweeps").glob("*.yaml"))
# added to each sweep's parameters (fixed values), so that a trial trains for seconds
TINY = {"trainer.max_steps": 20, "trainer.val_check_interval": 10, "trainer.limit_val_batches": 2,
        "trainer.enable_progress_bar": False, "run.time_budget": "null"}  # fmt: skip
TINY_TOY = {"data.toy_size": 4096, "data.batch_size": 32, "model.g_width": 16, "model.d_width": 16}
TINY_DIGITS = {"data.batch_size": 16, "model.width": 16}


def tiny_sweep(path: Path, root: Path, **values) -> Path:
    """A copy of the sweep config ``path`` whose trials write into ``root``, tiny."""
    sweep = yaml.safe_load(path.read_text())
    toy = any("configs/toy/" in str(part) for part in sweep["command"])
    fixed = {**TINY, **(TINY_TOY if toy else TINY_DIGITS), "run.root": str(root), **values}
    sweep["parameters"] |= {k: {"value": v} for k, v in fixed.items()}
    out = root / f"sweep-{path.name}"
    root.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(sweep))
    return out


def online(server: FakeWandbServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "SLURM_"))}
    return {**env, "WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": server.url}


def value_at(config: dict, dotted: str):
    """``model.lr`` in a saved config.yaml (where a model's values sit under init_args)."""
    for part in dotted.split("."):
        config = config.get("init_args", config)[part]
    return config


def check_trials(server: FakeWandbServer, sweep_config: Path, root: Path) -> None:
    """Each trial of the one sweep trained with its own values in its own run directory and
    W&B run, and reported the sweep's metric."""
    (sweep,) = server.sweeps.values()
    metric = yaml.safe_load(sweep_config.read_text())["metric"]["name"]
    runs = {(d / "wandb_run_id").read_text().strip(): d for d in root.iterdir()
            if (d / "config.yaml").is_file()}  # fmt: skip
    assert sorted(runs) == sorted(sweep.handed) and len(runs) == 2  # a directory per trial
    for run_id, (_, values) in sweep.handed.items():
        config = yaml.safe_load((runs[run_id] / "config.yaml").read_text())
        for key, value in values.items():
            expected = None if value["value"] == "null" else value["value"]
            assert value_at(config, key) == pytest.approx(expected), (run_id, key)
        held = server.runs[run_id]
        assert held.sweep == sweep.name and metric in held.summary, (run_id, held.summary)
    a, b = (values for _, values in sweep.handed.values())
    assert a != b  # the trials differ in some value
