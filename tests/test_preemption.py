"""Preemption as a cluster job meets it, without a scheduler: 2 DDP ranks of the default image
config (DCGAN with batch norm) with a DataLoader worker each, every process of the job signalled
at once (as Slurm signals a step), then resumed; and what a DDP step sends between the ranks
(docs/design.md#preemption-and-atomic-checkpoints)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import QUIET, ROOT, TINY_GAN_DIGITS, TINY_TOY

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
# batch 180: 1,800 training digits per rank make 10 steps an epoch, so the ranks' every-10-steps
# agreement stops on an epoch's last step, where a resume is easiest to get wrong
IMAGE = ["--config", "configs/gan.yaml", "--data.batch_size", "180", *TINY_GAN_DIGITS, *QUIET, *DDP]
IMAGE += ["--data.num_workers", "1", "--run.logger", "csv", "--seed_everything", "3"]
IMAGE += ["--trainer.deterministic", "true", "--trainer.limit_val_batches", "1"]
IMAGE += ["--trainer.val_check_interval", "50", "--trainer.log_every_n_steps", "10"]
IMAGE += ["--trainer.callbacks+=tests.helpers.TrainedSteps", "--run.time_budget", "null"]
STEPS = 100
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV = {k: v for k, v in ENV.items() if not k.startswith(("SLURM_", "LIGHTNING_GANS_"))}


def fit(root: Path, *extra: str, **popen) -> subprocess.Popen:
    args = [sys.executable, "-m", "lightning_gans", "fit", *IMAGE, "--run.root", str(root)]
    args += ["--trainer.max_steps", str(STEPS), *extra]
    return subprocess.Popen(args, cwd=ROOT, env=ENV, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, **popen)  # fmt: skip


def trained(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "trained_steps.jsonl").read_text().splitlines()]


def state(ckpt: Path) -> tuple[int, dict]:
    found = torch.load(ckpt, map_location="cpu", weights_only=False)
    return found["global_step"], found["state_dict"]


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """The uninterrupted run's last.ckpt."""
    root = tmp_path_factory.mktemp("straight")
    proc = fit(root, "--run.name", "run")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.mark.parametrize(  # SIGTERM in `make test-all`; both signals in `make test-slurm`
    "sig", [pytest.param(signal.SIGTERM, marks=pytest.mark.slow), signal.SIGUSR1]
)
def test_a_signal_to_every_process_saves_the_step_and_the_resume_trains_the_rest(
    tmp_path, sig, straight
):
    proc = fit(
        tmp_path, "--run.name", "run", start_new_session=True
    )  # its own process group: the job
    run = tmp_path / "run"
    deadline = time.time() + 180
    log = run / "trained_steps.jsonl"
    while time.time() < deadline and not (log.exists() and len(trained(run)) == 2):
        time.sleep(0.2)  # both ranks wrote their start line
    time.sleep(1)  # both ranks are training
    os.killpg(proc.pid, sig)  # both ranks and both DataLoader workers, as Slurm does
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out and "killed by signal" not in out, out[-3000:]
    stops = re.findall(rf"\[rank: (\d)\] {sig.name} at generator step (\d+): ([^[\n]*)", out)
    assert sorted(r for r, _, _ in stops) == ["0", "1"], out[-3000:]  # each rank says it ...
    assert len({s for _, s, _ in stops}) == 1  # ... at the same step
    stopped = int(stops[0][1])
    assert 0 < stopped < STEPS and stopped % 10 == 0  # the ranks compare every 10 steps
    assert state(run / "checkpoints" / "last.ckpt")[0] == stopped
    assert "resume with RESUME=" in stops[0][2]  # not under SLURM: nothing to requeue

    again = fit(tmp_path, "--ckpt_path", str(run))  # continues in the run's directory
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out[-3000:]
    resumed = [t for t in trained(run) if t["event"] == "end"][-2:]
    # the second process trained the remaining steps only: a retrain from 0 would show 0, STEPS
    assert {(t["first_step"], t["trained"]) for t in resumed} == {(stopped, STEPS - stopped)}
    step, weights = state(run / "checkpoints" / "last.ckpt")
    want = state(straight)[1]
    assert step == STEPS and [k for k in want if not torch.equal(want[k], weights[k])] == []


# --- what a DDP step sends: the gradients' all-reduce, and every k steps the agreement --------


def test_a_ddp_step_sends_no_collective_and_waits_on_nothing_between_checks(tmp_path):
    args = [sys.executable, "-m", "lightning_gans", "fit", "--config", "configs/toy/wgan_gp.yaml"]
    args += [*TINY_TOY, "--model.g_width", "32", "--model.d_width", "32", *QUIET, *DDP]
    args += ["--trainer.max_steps", "24", "--trainer.log_every_n_steps", "1000"]
    args += ["--trainer.limit_val_batches", "0", "--trainer.max_time", "00:01:00:00"]
    args += ["--samples.every_n_steps", "1000", "--run.logger", "csv", "--run.root", str(tmp_path)]
    args += ["--run.name", "run", "--trainer.callbacks+=tests.helpers.CountCollectives"]
    proc = subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        calls = json.loads((tmp_path / "run" / f"collectives_rank{rank}.json").read_text())
        calls = {int(k): v for k, v in calls.items() if 1 <= int(k) < 24}
        # every 10 steps: the preemption agreement and max_time's clock, an all-reduce and a read
        checks = {9: ["all_reduce", "tolist", "all_reduce", "tolist"]}
        checks[19] = checks[9]
        # 12 steps an epoch: a new epoch's order is drawn on the host, once (DistributedSampler's
        # randperm(...).tolist() and the DataLoader's worker seed .item(): CPU tensors)
        checks[11] = ["item", "tolist"]
        assert {k: sorted(v) for k, v in calls.items()} == {
            k: sorted(v) for k, v in checks.items()
        }, calls
