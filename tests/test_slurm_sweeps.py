"""W&B sweeps on a real Slurm: ``make slurm-sweep`` submits an array of one-trial agents to a
throwaway one-node cluster (tests/slurm/cluster.sh), against the stand-in W&B server that runs
the sweep (tests/helpers/fake_wandb.py). Each trial trains with its own values, in its own run
directory and W&B run, and reports its sweep's metric; a trial preempted with SIGUSR1 is
requeued and continues as the same trial. ``make test-slurm`` runs them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.fake_wandb import FakeWandbServer, figure_steps
from tests.helpers.sweeps import SWEEPS, check_trials, online, tiny_sweep
from tests.test_slurm_cluster import csv_steps, logged_step, signal_job, slurm, trained, wait

pytestmark = pytest.mark.slurm
assert slurm  # the module's one-node cluster (a fixture)


def slurm_sweep(env: dict, config: Path, agents: int) -> str:
    """``wandb sweep`` of ``config``, then ``make slurm-sweep`` of ``agents`` CPU tasks."""
    wandb = Path(sys.executable).parent / "wandb"
    made = subprocess.run([str(wandb), "sweep", "--project", "lightning-gans", str(config)],
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    sweep = re.search(r"wandb agent (\S+)", made.stdout + made.stderr)
    assert sweep, made.stderr[-2000:]
    cmd = ["make", "-s", "slurm-sweep", f"SWEEP={sweep[1]}", f"AGENTS={agents}", "GPUS=0"]
    proc = subprocess.run([*cmd, "CPUS=1", "TIME=00:10:00"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return re.search(r"Submitted batch job (\d+)", proc.stdout).group(1)


def array_done(env: dict, job_id: str) -> bool:
    queued = subprocess.run(["squeue", "-h", "-j", job_id], env=env, capture_output=True,
                            text=True).stdout  # fmt: skip
    return not queued.strip()


def sweep_log(job_id: str) -> str:
    return "".join(p.read_text() for p in (ROOT / "runs" / "slurm").glob(f"*-{job_id}_*.out"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_slurm_sweep_runs_each_trial_in_an_array_task(slurm, tmp_path, path):
    config = tiny_sweep(path, tmp_path / "runs")
    with FakeWandbServer(trials=2) as server:
        env = {**online(server), "SLURM_CONF": slurm["SLURM_CONF"]}
        job_id = slurm_sweep(env, config, agents=2)
        wait(lambda: array_done(env, job_id), 240, f"array {job_id} to end")
    assert "Traceback" not in sweep_log(job_id), sweep_log(job_id)[-3000:]
    check_trials(server, config, tmp_path / "runs")


def test_a_preempted_sweep_trial_is_requeued_and_continues_as_the_same_trial(slurm, tmp_path):
    runs = tmp_path / "runs"
    steps = {"trainer.max_steps": 400, "trainer.val_check_interval": 100}
    config = tiny_sweep(
        SWEEPS[-1], runs, **steps, **{"trainer.callbacks+": "tests.helpers.TrainedSteps"}
    )
    with FakeWandbServer(trials=1) as server:
        env = {**online(server), "SLURM_CONF": slurm["SLURM_CONF"]}
        env["WANDB__FILE_STREAM_TRANSMIT_INTERVAL"] = "0.5"
        job_id = slurm_sweep(env, config, agents=1)
        trial = lambda: next((d for d in runs.iterdir() if d.is_dir()), None)  # noqa: E731
        wait(lambda: trial() and logged_step(trial(), 50), 120, "the trial to log step 50")
        signal_job(env, f"{job_id}_1", "USR1")  # the time limit's warning, or a preemption
        wait(lambda: array_done(env, job_id), 240, f"array {job_id} to end")
    log = sweep_log(job_id)
    run = trial()
    (sweep,) = server.sweeps.values()
    assert list(sweep.handed) == [(run / "wandb_run_id").read_text().strip()]  # one trial
    assert [rid for rid, _ in sweep.resumed] == list(sweep.handed), log[-3000:]  # handed again
    assert [d for d in runs.iterdir() if d.is_dir()] == [run]  # in its own directory
    ends = [t for t in trained(run) if t["event"] == "end"]
    assert len(ends) == 2 and ends[1]["first_step"] == ends[0]["step"] < 400, ends  # resumed
    assert ends[1]["step"] == 400
    # the only traceback: wandb's agent (not the trial) at its exit, when the requeue's SIGTERM
    # has stopped the agent's own W&B service
    agent_exit = "Exception ignored in atexit callback: <function _start_and_connect_service"
    assert log.count("Traceback") == log.count(agent_exit) <= 1, log[-3000:]
    (held,) = server.runs.values()  # the same W&B run, each row once
    assert figure_steps(held) == csv_steps(run)
