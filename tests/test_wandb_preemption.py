"""W&B, the default logger, through a preemption: Slurm's SIGTERM reaches every process of the
job, W&B's service (wandb-core) as well as training. The run still writes its checkpoint, ends
without a traceback (exit 0) and hands W&B every row through the stop; its resume continues the
same W&B run, each row once. Online against the stand-in server (tests/helpers/fake_wandb.py),
offline through a later ``wandb sync`` (docs/design.md#wandb-through-a-preemption). The same on
a real Slurm: tests/test_slurm_cluster.py."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY, signal_every_process
from tests.helpers.fake_wandb import FakeWandbServer, figure_steps, sync

pytestmark = pytest.mark.slow  # make test-all

ARGS = ["--config", "configs/toy/wgan_gp.yaml", *TINY_TOY, *TINY_GAN, *QUIET]
ARGS += ["--run.logger", "wandb", "--run.name", "run", "--trainer.log_every_n_steps", "10"]
ARGS += ["--trainer.val_check_interval", "50", "--run.time_budget", "null"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "WANDB_"))}


def start(root: Path, env: dict, steps: int, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lightning_gans", "fit", *ARGS, "--run.root", str(root)]
    return subprocess.Popen([*cmd, "--trainer.max_steps", str(steps), *extra], cwd=ROOT,
                            env={**ENV, **env}, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def csv_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(float(row["step"])) for row in csv.DictReader(f)]


def stop_with_sigterm_to_every_process(
    proc: subprocess.Popen, run: Path, uploaded=lambda: True
) -> str:
    """SIGTERM to the run and all its processes once it has logged 8 rows (and ``uploaded()``
    holds); its stderr."""
    deadline = time.time() + 180
    while not ((run / "metrics.csv").is_file() and len(csv_steps(run)) >= 8 and uploaded()):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.2)
    names = signal_every_process(proc.pid, signal.SIGTERM)
    assert "wandb-core" in names  # W&B's service is stopped along with training
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert "SIGTERM at generator step" in out + err and "started it again" in err, err[-3000:]
    assert "raised exception" not in err  # asyncio's noise about the stopped service's socket
    return err


def last_step(run: Path) -> int:
    ckpt = run / "checkpoints" / "last.ckpt"
    return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]


def test_online_every_row_reaches_wandb_through_a_sigterm_and_the_resume_continues_it(tmp_path):
    run = tmp_path / "run"
    with FakeWandbServer() as server:
        env = {"WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40, "WANDB_BASE_URL": server.url}
        env["WANDB__FILE_STREAM_TRANSMIT_INTERVAL"] = "0.5"  # uploads every 0.5 s, not 15 s
        # stopped once the server holds some of the rows and the service holds others
        stop_with_sigterm_to_every_process(
            start(tmp_path, env, 100_000), run, lambda: server.history >= 3
        )
        stopped, end = last_step(run), (last_step(run) // 10 + 10) * 10  # a logged step
        (held,) = server.runs.values()  # one W&B run
        assert figure_steps(held) == csv_steps(run)  # every row through the stop, each once
        assert max(csv_steps(run)) > stopped - 10

        resume = start(tmp_path, env, end, "--ckpt_path", str(run))
        _, err = resume.communicate(timeout=300)
        assert resume.returncode == 0 and "Traceback" not in err, err[-3000:]
    assert list(server.runs) == [(run / "wandb_run_id").read_text().strip()]  # the same run
    steps = csv_steps(run)
    assert max(steps) == end and figure_steps(held) == steps  # no gap, no repeat


def test_offline_a_later_wandb_sync_uploads_every_row_once(tmp_path):
    run = tmp_path / "run"
    stop_with_sigterm_to_every_process(start(tmp_path, {"WANDB_MODE": "offline"}, 100_000), run)
    end = (last_step(run) // 10 + 10) * 10  # a logged step
    resume = start(tmp_path, {"WANDB_MODE": "offline"}, end, "--ckpt_path", str(run))
    _, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err[-3000:]
    offline = sorted((run / "wandb").glob("offline-run-*"))  # what the run report says to sync
    assert len(offline) == 2  # the stopped attempt's (written again) and the resume's
    with FakeWandbServer() as server:
        synced = sync(offline, server)
    assert synced.returncode == 0, synced.stderr[-2000:]
    (held,) = server.runs.values()
    steps = csv_steps(run)
    assert max(steps) == end and figure_steps(held) == steps
