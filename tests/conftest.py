"""Shared fixtures: tiny sizes, offline W&B, every run inside tmp_path."""

from __future__ import annotations

import os

import pytest
import torch

from tests.helpers import fit

os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ.pop("WANDB_API_KEY", None)
if "OMP_NUM_THREADS" not in os.environ:
    torch.set_num_threads(2)


@pytest.fixture
def fit_run(tmp_path):
    """``fit`` into this test's tmp_path: ``fit_run("toy/wgan", "--model.clip", "0.1")``."""

    def _fit(config: str, *extra: str, **kwargs):
        return fit(tmp_path, config, *extra, **kwargs)

    return _fit
