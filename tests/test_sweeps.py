"""W&B sweeps against a server: the stand-in (tests/helpers/fake_wandb.py) creates each sweep
and hands its agents the trials' values, as W&B's sweep server does. ``make sweep`` runs a
2-trial sweep of each sweep config (its own command and parameters, with tiny settings added
so that a trial takes seconds): every trial trains with its own values (its run's config.yaml),
reports the metric its sweep optimises, and has its own run directory and W&B run. A value the
CLI refuses fails its trial in one line, and the agent ends. ``make slurm-sweep`` on a real
Slurm: tests/test_slurm_cluster.py."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import ROOT, own_lines
from tests.helpers.fake_wandb import FakeWandbServer
from tests.helpers.sweeps import SWEEPS, check_trials, online, tiny_sweep

pytestmark = pytest.mark.slow  # make test-all


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_make_sweep_trains_each_trial_with_its_values_and_reports_the_metric(path, tmp_path):
    config = tiny_sweep(path, tmp_path / "runs")
    with FakeWandbServer(trials=2) as server:
        proc = subprocess.run(["make", "-s", "sweep", f"SWEEP_CONFIG={config}"], cwd=ROOT,
                              env=online(server), capture_output=True, text=True,
                              timeout=600)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    check_trials(server, config, tmp_path / "runs")


def test_a_sweep_value_the_cli_refuses_fails_its_trial_in_one_line(tmp_path):
    config = tiny_sweep(SWEEPS[0], tmp_path / "runs", **{"trainer.max_steps": -5})
    with FakeWandbServer(trials=2) as server:
        proc = subprocess.run(["make", "-s", "sweep", f"SWEEP_CONFIG={config}"], cwd=ROOT,
                              env=online(server), capture_output=True, text=True,
                              timeout=300)  # fmt: skip
    errors = [ln for ln in own_lines(proc.stderr) if ln.startswith("error:")]
    assert errors and all("max_steps" in ln and "-5" in ln for ln in errors), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]  # no run was started
