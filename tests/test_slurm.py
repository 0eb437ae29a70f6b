"""SLURM: the generated sbatch script, and the CLI under SLURM's environment variables."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers import QUIET, ROOT, cli_args, own_lines


def test_make_slurm_dry_run_prints_a_requeueing_script():
    proc = subprocess.run(
        [
            "make",
            "slurm",
            "MODEL=wgan_gp",
            "NODES=2",
            "GPUS=4",
            "DRY_RUN=1",
            "TIME=01:00:00",
            "PARTITION=gpu",
            "ARGS=--trainer.max_steps 7",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gres=gpu:4",
        "#SBATCH --signal=USR1@90",
        "#SBATCH --requeue",
        "#SBATCH --time=01:00:00",
        "#SBATCH --partition=gpu",
    ):
        assert line in script.splitlines()
    srun = next(ln for ln in script.splitlines() if ln.startswith("srun "))
    assert "-m lightning_gans fit --config configs/wgan_gp.yaml" in srun  # python, no make
    assert srun.startswith("srun --kill-on-bad-exit=1 ")  # one failed task ends the others
    command = script[script.index("srun ") :]
    assert "--trainer.devices 4 --trainer.num_nodes 2" in command
    assert "--trainer.strategy ddp" in command and "--trainer.max_steps 7" in command


def test_cli_under_slurm_sees_world_size_and_rank(tmp_path, monkeypatch):
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from lightning_gans.launch.cli import build_cli

    env = {
        "SLURM_NTASKS": "4",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_JOB_NAME": "lgans-wgan",
        "SLURM_JOB_ID": "4242",
        "SLURM_PROCID": "3",
        "SLURM_LOCALID": "1",
        "SLURM_NODEID": "1",
        "SLURM_NODELIST": "node[1-2]",
        "SLURM_JOB_NUM_NODES": "2",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("LOCAL_RANK", "1")  # Lightning writes these process-wide: undo afterwards
    monkeypatch.delenv("LIGHTNING_GANS_RUN_DIR", raising=False)
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    monkeypatch.setattr(rank_zero_only, "rank", rank_zero_only.rank)
    args = cli_args(
        tmp_path,
        "toy/wgan",
        *QUIET,
        "--trainer.strategy",
        "ddp",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.num_nodes",
        "2",
    )
    i = args.index("--run.name")
    del args[i : i + 2]  # the run directory is named after the SLURM job, stable across requeues
    cli = build_cli(args, run=False)
    assert isinstance(cli.trainer._accelerator_connector.cluster_environment, SLURMEnvironment)
    assert cli.trainer.world_size == 4
    assert cli.trainer.global_rank == 3 and cli.trainer.local_rank == 1
    assert cli.trainer.node_rank == 1
    assert cli.run_dir.name == "wgan-toy8-4242"


def make_dry(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args, "DRY_RUN=1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_slurm_options_and_wandb_mode_reach_the_script():
    plain = make_dry("slurm", "MODEL=wgan_gp").stdout
    proc = make_dry(
        "slurm", "MODEL=wgan_gp", "WANDB=online", "CPUS=6", "ACCOUNT=proj7", "QOS=high",
        "MEM=64G", "CONSTRAINT=a100", "SBATCH_ARGS=--exclusive --mail-type=END",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for line in (
        "#SBATCH --cpus-per-task=6", "#SBATCH --account=proj7", "#SBATCH --qos=high",
        "#SBATCH --mem=64G", "#SBATCH --constraint=a100", "#SBATCH --exclusive",
        "#SBATCH --mail-type=END", "export WANDB_MODE=online",
    ):  # fmt: skip
        assert line in lines, line
    assert "export WANDB_MODE" not in plain and "--data.num_workers 5" in proc.stdout
    assert f"cd {ROOT}" in lines  # the repository, where configs/ and .venv live


def test_slurm_sweep_is_an_array_of_single_trial_agents():
    proc = make_dry("slurm-sweep", "SWEEP=me/lightning-gans/abc123", "AGENTS=4", "ACCOUNT=p")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "#SBATCH --array=1-4" in lines and "#SBATCH --account=p" in lines
    agent = next(ln for ln in lines if ln.startswith("srun "))
    assert agent.endswith("wandb agent --count 1 me/lightning-gans/abc123")
    missing = subprocess.run(["make", "slurm-sweep"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode != 0 and "SWEEP is required" in missing.stderr


def test_a_cpu_job_has_no_gres_and_the_warning_lead_is_a_variable():
    proc = make_dry("slurm", "MODEL=wgan_gp", "GPUS=0", "TASKS=2", "CPUS=3", "SIGNAL_LEAD=300")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert not any("--gres" in ln for ln in lines)
    for line in ("#SBATCH --ntasks-per-node=2", "#SBATCH --cpus-per-task=3",
                 "#SBATCH --signal=USR1@300"):  # fmt: skip
        assert line in lines, line
    command = proc.stdout[proc.stdout.index("srun ") :]
    assert "--trainer.accelerator cpu --trainer.devices 2" in command
    assert "--data.num_workers 2" in command


BAD = [  # make variables, and what the one line must name
    (["TIME=forever"], "TIME='forever' is not a SLURM time limit"),
    (["TIME=1:2:3:4"], "TIME='1:2:3:4' is not a SLURM time limit"),
    (["TIME=1"], "TIME=1 is not longer than SIGNAL_LEAD=90"),
    (["NODES=0"], "--nodes (NODES) must be >= 1, got 0"),
    (["NODES=two"], "argument --nodes: invalid int value: 'two'"),
    (["GPUS=-1"], "--gpus (GPUS) must be >= 0, got -1"),
    (["GPUS=0", "TASKS=0"], "--tasks (TASKS) must be >= 1, got 0"),
    (["GPUS=2", "TASKS=3"], "TASKS=3 with GPUS=2"),
    (["CPUS=0"], "--cpus (CPUS) must be >= 1, got 0"),
    (["SIGNAL_LEAD=0"], "--signal-lead (SIGNAL_LEAD) must be >= 1, got 0"),
    (["GPUS=2", "ARGS=--trainer.devices 4"], "ARGS --trainer.devices 4 contradicts the job's 2"),
    (["NODES=2", "ARGS=--trainer.num_nodes=1"], "ARGS --trainer.num_nodes 1 contradicts"),
    (["GPUS=0", "ARGS=--trainer.accelerator gpu"], "--trainer.accelerator gpu contradicts"),
]


@pytest.mark.parametrize(("variables", "needle"), BAD)
def test_bad_make_slurm_values_are_one_line_before_anything_is_submitted(
    variables, needle, tmp_path
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"  # records a submission, which must not happen
    sbatch.write_text(f"#!/bin/sh\necho submitted >> {tmp_path / 'sbatch.log'}\n")
    sbatch.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    args = ["make", "-s", "slurm", "MODEL=wgan_gp", *variables]
    if not any(v.startswith("ARGS=") for v in variables):
        args.append(f"ARGS=--run.root {tmp_path / 'runs'}")
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    ours = own_lines(proc.stderr)
    assert len(ours) == 1 and ours[0].startswith("error: ") and needle in ours[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "sbatch.log").exists() and not (tmp_path / "runs").exists()
