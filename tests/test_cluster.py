"""What breaks only on a cluster, checked without one: a NaN on one rank, run directories that
never collide, preemption under SLURM, extending a finished run, and a resumed run's history
(docs/design.md#one-run-one-directory, #preemption-and-atomic-checkpoints, #exact-resume)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_gans.launch.loggers import wandb_run_id
from lightning_gans.launch.run_dir import RUN_DIR_ENV, new_run_dir
from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY, TINY_VAE, run_module

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

TOY = ["--config", str(ROOT / "configs" / "toy" / "wgan_gp.yaml"), *TINY_TOY, *TINY_GAN, *QUIET]
EXACT = ["--seed_everything", "7", "--trainer.deterministic", "true"]
EXACT += ["--trainer.limit_val_batches", "2", "--trainer.val_check_interval", "5"]


def weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]


def differing(a: Path, b: Path) -> list[str]:
    wa, wb = weights(a), weights(b)
    return [k for k in wa if not torch.equal(wa[k], wb[k])]


# --- a NaN on one rank stops every rank ------------------------------------------------------


def test_a_nan_on_rank_1_stops_both_ranks_at_the_same_step(tmp_path):
    ddp = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]
    start = time.time()
    proc = run_module(
        "fit", *TOY, *ddp, "--trainer.callbacks+=tests.helpers.NaNOnRank1",
        "--trainer.max_steps", "20", "--trainer.log_every_n_steps", "5",
        "--checkpoint.every_n_train_steps", "2", "--trainer.limit_val_batches", "0",
        "--run.root", str(tmp_path), "--run.name", "run", "--run.logger", "csv",
        env={"OMP_NUM_THREADS": "1"}, timeout=120,
    )  # fmt: skip
    assert time.time() - start < 90  # not the 30-minute collective timeout
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert errors and all("non-finite loss at generator step 3: g_loss" in e for e in errors)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ckpts = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step*.ckpt")) == ["step000002.ckpt"]
    last = weights(ckpts / "last.ckpt")  # the periodic save's copy: step 2, finite
    assert all(torch.isfinite(v).all() for v in last.values())
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["global_step"] == 2


def test_validation_fakes_differ_across_ranks(monkeypatch):
    from lightning_gans import WGANGP

    model = WGANGP(latent_dim=2)
    draws = []
    for rank in (0, 1):
        monkeypatch.setattr(WGANGP, "global_rank", property(lambda self, r=rank: r))
        draws.append([torch.randn(3, generator=model.eval_noise(b)) for b in (0, 0, 1)])
    (a0, a0_again, a1), (b0, _, _) = draws
    assert torch.equal(a0, a0_again)  # the same at every evaluation
    assert not torch.equal(a0, a1) and not torch.equal(a0, b0)  # other batches, other ranks


# --- run directories and W&B runs never collide ----------------------------------------------


PAIRS = {
    "same second": ({}, {}),
    "srun steps of one job": (
        {"SLURM_JOB_ID": "41", "SLURM_STEP_ID": "0"},
        {"SLURM_JOB_ID": "41", "SLURM_STEP_ID": "1"},
    ),
    "array tasks": (
        {"SLURM_JOB_ID": "50", "SLURM_ARRAY_JOB_ID": "49", "SLURM_ARRAY_TASK_ID": "1"},
        {"SLURM_JOB_ID": "51", "SLURM_ARRAY_JOB_ID": "49", "SLURM_ARRAY_TASK_ID": "2"},
    ),
    "torchrun without an id": (
        {"TORCHELASTIC_RUN_ID": "none", "MASTER_PORT": "29500", "RANK": "0"},
        {"TORCHELASTIC_RUN_ID": "none", "MASTER_PORT": "29511", "RANK": "0"},
    ),
}
LAUNCHER_VARS = {v for a, b in PAIRS.values() for v in (*a, *b)} | {"SLURM_NTASKS", "LOCAL_RANK"}


def test_new_runs_never_share_a_directory_or_a_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261123-120000")  # one second
    dirs = []
    for first, second in PAIRS.values():
        for env in (first, second):
            for var in LAUNCHER_VARS | {RUN_DIR_ENV}:
                monkeypatch.delenv(var, raising=False)
            for var, value in env.items():
                monkeypatch.setenv(var, value)
            dirs.append(new_run_dir(str(tmp_path), None, "wgan", "toy8"))
    assert len(set(dirs)) == 8 and all(d.is_dir() for d in dirs), dirs
    assert len({wandb_run_id(d) for d in dirs}) == 8
    names = [d.name for d in dirs]
    assert names[:2] == ["wgan-toy8-20261123-120000", "wgan-toy8-20261123-120000-2"]
    assert names[2:6] == ["wgan-toy8-41", "wgan-toy8-41.1", "wgan-toy8-49_1", "wgan-toy8-49_2"]


def test_an_existing_run_name_is_refused_not_overwritten(tmp_path):
    args = ["fit", *TOY, "--trainer.max_steps", "2", "--run.root", str(tmp_path)]
    args += ["--run.name", "run", "--run.logger", "csv"]
    bad = run_module(*args, "--model.n_critic", "0")
    assert bad.returncode == 2 and not (tmp_path / "run").exists()  # no start, no directory
    assert run_module(*args).returncode == 0
    before = (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes()
    proc = run_module(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "run directory" in proc.stderr and "exists" in proc.stderr
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").read_bytes() == before


# --- preemption under SLURM, in our code, at a step boundary ---------------------------------


def slurm_env(tmp_path: Path, restarts: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "scontrol"  # records its arguments instead of requeueing
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", RUN_DIR_ENV))}
    env |= {"SLURM_JOB_ID": "777", "SLURM_JOB_NAME": "lgans", "SLURM_NTASKS": "1"}
    env |= {"SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}
    env |= {"SLURM_RESTART_COUNT": str(restarts), "PATH": f"{bin_dir}:{env['PATH']}"}
    return env


@pytest.mark.slow  # 80 s; the plain SIGUSR1 path stays in the default suite (test_resume.py)
def test_sigusr1_under_slurm_checkpoints_requeues_and_the_requeued_job_resumes_exactly(tmp_path):
    steps = 150
    common = [sys.executable, "-m", "lightning_gans", "fit", *TOY, *EXACT]
    common += ["--trainer.max_steps", str(steps), "--run.root", str(tmp_path / "runs")]
    common += ["--run.logger", "csv", "--trainer.callbacks+=tests.helpers.TrainedSteps"]
    proc = subprocess.Popen(common, cwd=ROOT, env=slurm_env(tmp_path, 0), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    run = tmp_path / "runs" / "wgangp-toy8-777"
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.csv").exists():
        time.sleep(0.2)  # it has logged: it is well inside the training loop
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-3000:]
    assert (tmp_path / "scontrol.log").read_text().split("\n")[:-1] == ["requeue 777"]
    ckpts = run / "checkpoints"
    assert [p.name for p in ckpts.glob("*.ckpt")] == ["last.ckpt"]  # no hpc_ckpt_* pile
    assert not list(run.glob("hpc_ckpt*"))
    stopped = torch.load(ckpts / "last.ckpt", weights_only=False)["global_step"]
    assert 0 < stopped < steps

    again = subprocess.run(common, cwd=ROOT, env=slurm_env(tmp_path, 1), text=True,
                           capture_output=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.load(ckpts / "last.ckpt", weights_only=False)["global_step"] == steps
    assert trained_spans(run) == [(0, stopped), (stopped, steps - stopped)]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["wgangp-toy8-777"]

    straight = run_module("fit", *TOY, *EXACT, "--trainer.max_steps", str(steps),
                          "--run.root", str(tmp_path), "--run.name", "straight",
                          "--run.logger", "csv")  # fmt: skip
    assert straight.returncode == 0, straight.stderr[-3000:]
    assert differing(ckpts / "last.ckpt", tmp_path / "straight" / "checkpoints" / "last.ckpt") == []


# --- extending a finished run, and its history -----------------------------------------------


@pytest.mark.parametrize(
    ("config", "tiny"),
    [  # one model in the default suite, the others with `make test-all` (30 s each)
        ("toy/wgan_gp", TINY_GAN),
        pytest.param("toy/gan", TINY_GAN, marks=pytest.mark.slow),
        pytest.param("toy/vae", TINY_VAE, marks=pytest.mark.slow),
    ],
)
def test_extending_a_finished_run_equals_running_it_straight(tmp_path, config, tiny):
    base = ["fit", "--config", str(ROOT / "configs" / f"{config}.yaml"), *TINY_TOY, *tiny]
    base += [*QUIET, *EXACT, "--run.root", str(tmp_path), "--run.logger", "csv"]
    base += ["--data.toy_size", "1024"]  # n_critic 5: 6 steps an epoch, so 10 -> 30 crosses
    base += ["--trainer.callbacks+=tests.helpers.TrainedSteps"]
    for name, steps, resume in (("straight", 30, []), ("part", 10, []), (None, 30, ["part"])):
        named = ["--run.name", name] if name else ["--ckpt_path", str(tmp_path / resume[0])]
        proc = run_module(*base, "--trainer.max_steps", str(steps), *named)
        assert proc.returncode == 0, proc.stderr[-3000:]
    last = [tmp_path / n / "checkpoints" / "last.ckpt" for n in ("straight", "part")]
    assert torch.load(last[1], weights_only=False)["global_step"] == 30
    assert differing(*last) == []
    # the extension trained steps 10..29 only: a retrain from 0 would end alike in this mode
    assert trained_spans(tmp_path / "part") == [(0, 10), (10, 20)]


def trained_spans(run: Path) -> list[tuple[int, int]]:
    """(first step, steps trained) of each process that trained in run (TrainedSteps)."""
    lines = [json.loads(ln) for ln in (run / "trained_steps.jsonl").read_text().splitlines()]
    return [(t["first_step"], t["trained"]) for t in lines if t["event"] == "end"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


HISTORY = [*TOY, *EXACT, "--run.logger", "csv", "--trainer.log_every_n_steps", "3"]
HISTORY += ["--checkpoint.every_n_train_steps", "10", "--data.toy_size", "1024"]


def history(tmp_path: Path, *args: str) -> None:
    """One fit through the real CLI, in this process."""
    from lightning_gans.launch.main import main

    main(["fit", *HISTORY, "--run.root", str(tmp_path), *args])


def test_the_history_of_every_kind_of_resume_is_the_uninterrupted_runs(tmp_path):
    """Row for row and label for label: mid-run from a checkpoint step (with later rows on
    file), after a signal between checkpoints, and extending a finished run. Every row of step
    s is labelled s, the number in the names of that step's checkpoint and pictures."""
    history(tmp_path, "--run.name", "straight", "--trainer.max_steps", "30")
    straight = read_csv(tmp_path / "straight" / "metrics.csv")
    train = [int(r["step"]) for r in straight if r.get("train/g_loss")]
    assert train == list(range(3, 31, 3))
    assert [int(r["step"]) for r in straight if r.get("val/critic_emd")] == list(range(5, 31, 5))

    shutil.copytree(tmp_path / "straight", tmp_path / "mid")  # resumed where rows go on
    history(tmp_path, "--trainer.max_steps", "30",
            "--ckpt_path", str(tmp_path / "mid" / "checkpoints" / "step000010.ckpt"))  # fmt: skip
    history(tmp_path, "--run.name", "extended", "--trainer.max_steps", "20")
    history(tmp_path, "--trainer.max_steps", "30", "--ckpt_path", str(tmp_path / "extended"))
    signal_at = ["--trainer.callbacks+=tests.helpers.SignalAt", "--trainer.callbacks.step=13"]
    history(tmp_path, "--run.name", "signal", "--trainer.max_steps", "30", *signal_at)
    # no row at the stop step: neither Lightning's repeat of step 12's figures nor a validation
    assert [int(r["step"]) for r in read_csv(tmp_path / "signal" / "metrics.csv")][-2:] == [10, 12]
    history(tmp_path, "--trainer.max_steps", "30", "--ckpt_path", str(tmp_path / "signal"))
    for run in ("mid", "extended", "signal"):
        assert read_csv(tmp_path / run / "metrics.csv") == straight, run

    # an evaluation of a checkpoint is labelled with its step, after the history it belongs to
    from lightning_gans.launch.main import main

    ckpt = tmp_path / "straight" / "checkpoints" / "step000020.ckpt"
    main(["validate", *HISTORY, "--run.root", str(tmp_path), "--ckpt_path", str(ckpt)])
    rows = read_csv(tmp_path / "straight" / "metrics.csv")
    assert rows[: len(straight)] == straight and [r["step"] for r in rows[len(straight) :]] == [
        "20"
    ]
