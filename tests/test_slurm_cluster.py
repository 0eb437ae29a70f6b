"""On a real Slurm: a throwaway one-node cluster (tests/slurm/cluster.sh), jobs submitted with
``make slurm`` and signalled with ``scancel`` and ``scontrol``, CPU tasks over gloo
(docs/design.md#preemption-and-atomic-checkpoints). ``make test-slurm`` runs them; they skip
where the cluster cannot start (not root, no Slurm packages)."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import ROOT, own_lines
from tests.helpers.fake_wandb import FakeWandbServer, figure_steps

pytestmark = pytest.mark.slurm
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
TINY = "--data.batch_size 32 --data.toy_size 4096 --model.g_width 32 --model.d_width 32"
EXACT = "--seed_everything 7 --trainer.deterministic true --trainer.log_every_n_steps 10"
STEPS = (
    TINY + " --trainer.callbacks+=tests.helpers.TrainedSteps --trainer.enable_model_summary false"
)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """SLURM_CONF of a running one-node cluster, stopped after the module's tests."""
    if shutil.which("sbatch") is None:
        subprocess.run([CLUSTER, "install"], capture_output=True, text=True, timeout=600)
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run([CLUSTER, "start", state], capture_output=True, text=True, timeout=60)
    if start.returncode == 3:
        pytest.skip(f"no Slurm here: {start.stderr.strip()}")
    assert start.returncode == 0, start.stderr
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "WANDB_MODE": "offline"}
    yield env
    subprocess.run([CLUSTER, "stop", state], capture_output=True, timeout=60)


def make_slurm(env: dict, runs: Path, args: str, *variables: str) -> subprocess.CompletedProcess:
    """``make slurm`` of the toy WGAN-GP as a 2-task CPU job, writing into ``runs``."""
    cmd = ["make", "-s", "slurm", "MODEL=wgan_gp", "TOY=1", "GPUS=0", "TASKS=2", "CPUS=1"]
    cmd += ["TIME=00:10:00", *variables, f"ARGS=--run.root {runs} --run.logger csv {args}"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def submit(env: dict, runs: Path, args: str, *variables: str) -> str:
    proc = make_slurm(env, runs, args, *variables)
    assert proc.returncode == 0, proc.stderr
    return re.search(r"Submitted batch job (\d+)", proc.stdout).group(1)


def job(env: dict, job_id: str) -> dict[str, str]:
    """``scontrol show job``'s fields (JobState, ExitCode, Restarts, ...)."""
    out = subprocess.run(["scontrol", "show", "job", job_id], env=env, capture_output=True,
                         text=True).stdout  # fmt: skip
    return dict(re.findall(r"(\w+)=(\S*)", out))


def wait(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_done(env: dict, job_id: str, restarts: int = 0, timeout: float = 240) -> dict:
    def done():
        fields = job(env, job_id)
        finished = fields.get("JobState") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")
        return fields if finished and int(fields.get("Restarts", 0)) >= restarts else None

    return wait(done, timeout, f"job {job_id} to end after {restarts} restarts")


def trained(run: Path) -> list[dict]:
    path = run / "trained_steps.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def logged_step(run: Path, at_least: int) -> bool:
    """The run has logged a training row at this step or later: well inside the loop."""
    try:
        with open(run / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error):
        return False
    return any(r.get("step") and float(r["step"]) >= at_least for r in rows)


def step_of(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=False)["global_step"]


def job_log(runs: Path, job_id: str) -> str:
    return "".join(p.read_text() for p in (runs / "slurm").glob(f"*-{job_id}.out"))


def signal_job(env: dict, job_id: str, sig: str) -> None:
    subprocess.run(["scancel", f"--signal={sig}", job_id], env=env, check=True)


def same_weights(a: Path, b: Path) -> list[str]:
    wa, wb = (torch.load(p, map_location="cpu", weights_only=False)["state_dict"] for p in (a, b))
    return [k for k in wa if not torch.equal(wa[k], wb[k])]


# --- 1. a CPU job, and 8. its budget --------------------------------------------------------


def test_a_cpu_job_of_two_tasks_completes_in_one_run_and_is_not_time_capped(slurm, tmp_path):
    runs = tmp_path / "runs"
    args = f"{STEPS} --trainer.max_steps 40 --run.logger wandb --run.time_budget 00:00:00:01"
    job_id = submit(slurm, runs, args)
    fields = wait_done(slurm, job_id)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), job_log(runs, job_id)
    (run,) = [p for p in runs.iterdir() if p.name != "slurm"]
    assert run.name == f"wgangp-toy8-{job_id}"
    ends = [t for t in trained(run) if t["event"] == "end"]
    assert sorted(t["rank"] for t in ends) == [0, 1]  # 2 srun tasks, one DDP run
    # a 1-second first-run budget does not cap a cluster job: it trains its max_steps
    assert all(t["step"] == 40 and t["trained"] == 40 for t in ends), ends
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["trainer"]["max_time"] is None and str(config["trainer"]["devices"]) == "2"
    assert config["trainer"]["accelerator"] == "cpu" and config["trainer"]["strategy"] == "ddp"
    run_id = (run / "wandb_run_id").read_text().strip()
    (wandb_run,) = (run / "wandb").glob("offline-run-*")  # one W&B run, of this run's id
    assert wandb_run.name.endswith(f"-{run_id}") and (wandb_run / f"run-{run_id}.wandb").is_file()
    assert "srun` command is available" not in job_log(runs, job_id)


def test_the_default_image_config_on_slurm_is_not_capped_either(slurm, tmp_path):
    runs = tmp_path / "runs"
    cmd = ["make", "-s", "slurm", "MODEL=wgan_gp", "GPUS=0", "TASKS=1", "CPUS=1", "TIME=5"]
    cmd += [f"ARGS=--run.root {runs} --run.logger csv --trainer.max_steps 2 --model.g_width 8 "
            "--model.d_width 8 --data.batch_size 16 --trainer.limit_val_batches 1"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, env=slurm, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    job_id = re.search(r"Submitted batch job (\d+)", proc.stdout).group(1)
    fields = wait_done(slurm, job_id)
    assert fields["JobState"] == "COMPLETED", job_log(runs, job_id)
    config = yaml.safe_load((runs / f"wgangp-mnist5k-{job_id}" / "config.yaml").read_text())
    assert config["run"]["time_budget"] == "00:00:04:30"  # the config's first-run budget ...
    assert config["trainer"]["max_time"] is None  # ... is not this job's limit


# --- 2. SIGUSR1: checkpoint, requeue, resume, bit-identical ---------------------------------


def test_sigusr1_checkpoints_requeues_once_and_the_restart_ends_bit_identical(slurm, tmp_path):
    runs, straight = tmp_path / "runs", tmp_path / "straight"
    args = f"{STEPS} {EXACT} --trainer.max_steps 300"
    job_id = submit(slurm, runs, args + " --run.logger wandb")
    other = submit(slurm, straight, args)  # the same job, never signalled
    run = runs / f"wgangp-toy8-{job_id}"
    wait(lambda: logged_step(run, 49), 120, "training to log step 49")
    signal_job(slurm, job_id, "USR1")
    fields = wait_done(slurm, job_id, restarts=1)
    log = job_log(runs, job_id)
    assert (fields["JobState"], fields["ExitCode"], fields["Restarts"]) == ("COMPLETED", "0:0", "1")
    stops = re.findall(r"\[rank: (\d)\] SIGUSR1 at generator step (\d+)", log)
    assert sorted(r for r, _ in stops) == ["0", "1"] and len({s for _, s in stops}) == 1, log
    stopped = int(stops[0][1])
    assert 49 < stopped < 300
    assert "SIGTERM at" not in log  # the requeue's own SIGTERM: no second save, no requeue
    assert "Traceback" not in log
    first, restart = (
        [t for t in trained(run) if t["event"] == "end" and t["restart"] == r] for r in (0, 1)
    )
    assert {(t["rank"], t["step"]) for t in first} == {(0, stopped), (1, stopped)}
    # the restart trained only the remaining steps: not a retrain from step 0
    assert {(t["rank"], t["first_step"], t["trained"]) for t in restart} == {
        (r, stopped, 300 - stopped) for r in (0, 1)
    }
    assert sorted(p.name for p in runs.iterdir()) == ["slurm", run.name]  # one run directory
    run_id = (run / "wandb_run_id").read_text().strip()  # and one W&B run, both attempts in it
    attempts = sorted((run / "wandb").glob("offline-run-*"))
    assert len(attempts) == 2 and all(p.name.endswith(f"-{run_id}") for p in attempts)
    assert not list(run.glob("checkpoints/.*"))  # no temporary file left
    assert wait_done(slurm, other)["JobState"] == "COMPLETED"
    ours, theirs = (
        d / "checkpoints" / "last.ckpt" for d in (run, straight / f"wgangp-toy8-{other}")
    )
    assert step_of(ours) == step_of(theirs) == 300
    assert same_weights(ours, theirs) == []


# --- 3. SIGTERM: checkpoint within KillWait, no requeue; a requeue then resumes --------------


def test_sigterm_checkpoints_at_once_never_requeues_and_a_requeue_resumes(slurm, tmp_path):
    """With W&B online (the stand-in server), as configured by default: Slurm's SIGTERM stops
    W&B's service too, and every row through the stop and after the requeue still reaches the
    one W&B run, each once (docs/design.md#wandb-through-a-preemption)."""
    runs = tmp_path / "runs"
    with FakeWandbServer() as server:
        env = {**slurm, "WANDB_MODE": "online", "WANDB_API_KEY": "x" * 40}
        env |= {"WANDB_BASE_URL": server.url, "WANDB__FILE_STREAM_TRANSMIT_INTERVAL": "0.5"}
        job_id = submit(env, runs, f"{STEPS} {EXACT} --trainer.max_steps 1000 --run.logger wandb")
        run = runs / f"wgangp-toy8-{job_id}"
        wait(lambda: server.history >= 3, 120, "3 rows uploaded")
        signal_job(env, job_id, "TERM")  # every process of the step: tasks, workers, wandb-core
        sent = time.time()
        fields = wait_done(env, job_id, timeout=60)
        assert time.time() - sent < 30  # within Slurm's KillWait
        log = job_log(runs, job_id)
        assert fields["Restarts"] == "0" and fields["ExitCode"] == "0:0", log
        stops = re.findall(r"\[rank: (\d)\] SIGTERM at generator step (\d+)", log)
        assert sorted(r for r, _ in stops) == ["0", "1"] and len({s for _, s in stops}) == 1, log
        stopped = int(stops[0][1])
        assert step_of(run / "checkpoints" / "last.ckpt") == stopped < 1000
        assert "killed by signal" not in log and "Traceback" not in log
        assert "W&B's service was stopped" in log
        (held,) = server.runs.values()
        assert figure_steps(held) == csv_steps(run)  # every row through the stop, each once

        subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)  # as preemption
        fields = wait_done(env, job_id, restarts=1)
        assert fields["JobState"] == "COMPLETED", job_log(runs, job_id)
    restart = [t for t in trained(run) if t["event"] == "end" and t["restart"] == 1]
    assert {(t["first_step"], t["trained"]) for t in restart} == {(stopped, 1000 - stopped)}
    assert step_of(run / "checkpoints" / "last.ckpt") == 1000
    assert list(server.runs) == [(run / "wandb_run_id").read_text().strip()]
    assert figure_steps(held) == csv_steps(run) and csv_steps(run)[-1] == 1000  # no gap, repeat


def csv_steps(run: Path) -> list[int]:
    with open(run / "metrics.csv", newline="") as f:
        return [int(float(row["step"])) for row in csv.DictReader(f)]


# --- 4. --ckpt_path FILE: a requeue continues from the job's own newer checkpoint ------------


def test_a_job_started_from_a_file_continues_from_its_own_last_checkpoint(slurm, tmp_path):
    runs = tmp_path / "runs"
    seed_job = submit(slurm, tmp_path / "seed", f"{STEPS} --trainer.max_steps 20")
    assert wait_done(slurm, seed_job)["JobState"] == "COMPLETED"
    start = tmp_path / "start.ckpt"  # a checkpoint from elsewhere, not in a run directory
    shutil.copy(tmp_path / "seed" / f"wgangp-toy8-{seed_job}" / "checkpoints" / "last.ckpt", start)
    job_id = submit(slurm, runs, f"{STEPS} --trainer.max_steps 300 --ckpt_path {start}")
    run = runs / f"wgangp-toy8-{job_id}"
    wait(lambda: logged_step(run, 69), 120, "training to log step 69")
    signal_job(slurm, job_id, "USR1")
    assert wait_done(slurm, job_id, restarts=1)["JobState"] == "COMPLETED"
    first, restart = ([t for t in trained(run) if t["event"] == "end" and t["restart"] == r]
                      for r in (0, 1))  # fmt: skip
    assert {t["first_step"] for t in first} == {20}
    stopped = first[0]["step"]
    assert stopped > 69 and {t["first_step"] for t in restart} == {stopped}  # not 20 again
    assert step_of(run / "checkpoints" / "last.ckpt") == 300


# --- 5. requeued before its first checkpoint: starts again in its directory -----------------


def test_a_two_task_job_requeued_before_any_checkpoint_starts_again_in_its_directory(
    slurm, tmp_path
):
    runs = tmp_path / "runs"
    job_id = submit(slurm, runs, f"{STEPS} --trainer.max_steps 200")
    run = runs / f"wgangp-toy8-{job_id}"
    pids = wait(lambda: [t["pid"] for t in trained(run)][:2] if len(trained(run)) > 1 else None,
                120, "both ranks to start training")  # fmt: skip
    for pid in pids:  # gone before any checkpoint (a scancel would send SIGTERM first)
        os.kill(pid, 9)
    assert wait_done(slurm, job_id)["JobState"] == "FAILED"
    assert not (run / "checkpoints" / "last.ckpt").exists()
    held = json.loads((run / "run.lock").read_text())  # left by the kill: the attempt's lock
    assert held["job"] == f"slurm:{job_id}" and held["pid"] == pids[0]
    subprocess.run(["scontrol", "requeue", job_id], env=slurm, check=True)
    fields = wait_done(slurm, job_id, restarts=1)
    assert fields["JobState"] == "COMPLETED", job_log(runs, job_id)  # not refused by its own
    assert not (run / "run.lock").exists()
    assert sorted(p.name for p in runs.iterdir()) == ["slurm", run.name]
    assert step_of(run / "checkpoints" / "last.ckpt") == 200
    restart = [t for t in trained(run) if t["event"] == "end"]
    assert {(t["restart"], t["first_step"], t["trained"]) for t in restart} == {(1, 0, 200)}


def test_a_second_job_on_a_training_run_is_refused_on_every_rank_and_the_first_goes_on(
    slurm, tmp_path
):
    runs = tmp_path / "runs"
    first = submit(
        slurm, runs, f"{STEPS} --trainer.max_steps 400 --checkpoint.every_n_train_steps 10"
    )
    run = runs / f"wgangp-toy8-{first}"
    wait(lambda: (run / "checkpoints" / "last.ckpt").is_file(), 120, "the first checkpoint")
    second = submit(slurm, runs, f"{STEPS} --trainer.max_steps 400 --ckpt_path {run}")
    fields = wait_done(slurm, second, timeout=120)
    log = job_log(runs, second)
    assert fields["JobState"] == "FAILED" and "Traceback" not in log, log
    refusals = [ln for ln in log.splitlines() if "is in use by another run" in ln]
    assert len(refusals) == 2, log  # both ranks, before either joins the process group
    assert f"slurm job {first}" in refusals[0]
    assert job(slurm, first)["JobState"] == "RUNNING"
    assert wait_done(slurm, first)["JobState"] == "COMPLETED"
    ends = [t for t in trained(run) if t["event"] == "end"]
    assert {(t["first_step"], t["trained"]) for t in ends} == {(0, 400)}  # alone, undisturbed


# --- 6. one rank fails: the job fails at once, not at its time limit ------------------------


def test_a_nan_on_one_rank_fails_the_job_within_a_minute(slurm, tmp_path):
    runs = tmp_path / "runs"
    args = f"{TINY} --trainer.max_steps 200 --trainer.callbacks+=tests.helpers.NaNOnRank1"
    start = time.time()
    job_id = submit(slurm, runs, args, "TIME=00:05:00")
    fields = wait_done(slurm, job_id, timeout=90)
    assert fields["JobState"] == "FAILED" and time.time() - start < 60
    assert "non-finite loss at generator step 3" in job_log(runs, job_id)


def test_a_rank_killed_with_sigkill_fails_the_job_within_a_minute(slurm, tmp_path):
    runs = tmp_path / "runs"
    job_id = submit(slurm, runs, f"{STEPS} --trainer.max_steps 100000", "TIME=00:05:00")
    run = runs / f"wgangp-toy8-{job_id}"
    pid = wait(lambda: next((t["pid"] for t in trained(run) if t["rank"] == 1), None), 120,
               "rank 1 to start training")  # fmt: skip
    wait(lambda: logged_step(run, 19), 60, "training to log step 19")
    killed = time.time()
    os.kill(pid, 9)
    fields = wait_done(slurm, job_id, timeout=90)
    assert fields["JobState"] == "FAILED" and time.time() - killed < 60, fields


# --- 7. a signal as the job starts ------------------------------------------------------------


def test_a_signal_while_the_job_starts_is_not_lost(slurm, tmp_path):
    runs = tmp_path / "runs"
    job_id = submit(slurm, runs, f"{STEPS} --trainer.max_steps 30")
    steps = ["squeue", "-h", "-s", "-j", job_id, "-o", "%i"]

    def step_started() -> bool:  # srun has started the tasks: Python is starting up
        return f"{job_id}.0" in subprocess.run(steps, env=slurm, capture_output=True,
                                                text=True).stdout  # fmt: skip

    wait(step_started, 60, "the srun step")
    time.sleep(0.5)
    run = runs / f"wgangp-toy8-{job_id}"
    assert not trained(run)  # training has not begun
    signal_job(slurm, job_id, "USR1")
    fields = wait_done(slurm, job_id, restarts=1)
    log = job_log(runs, job_id)
    assert fields["JobState"] == "COMPLETED" and fields["Restarts"] == "1", log
    assert re.search(r"SIGUSR1 at generator step 0: wrote", log), log
    assert step_of(run / "checkpoints" / "last.ckpt") == 30


# --- 9. what sbatch itself refuses, and the GPU script ---------------------------------------


def test_sbatch_refusal_is_one_line_and_the_gpu_script_passes_test_only(slurm, tmp_path):
    proc = make_slurm(slurm, tmp_path, "", "PARTITION=nosuch")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    ours = own_lines(proc.stderr)
    assert len(ours) == 1 and ours[0].startswith("error: sbatch refused"), proc.stderr
    assert "partition" in proc.stderr.lower()
    gpu = subprocess.run(["make", "-s", "slurm", "MODEL=wgan_gp", "GPUS=2", "CPUS=4", "DRY_RUN=1"],
                         cwd=ROOT, env=slurm, capture_output=True, text=True)  # fmt: skip
    assert "#SBATCH --gres=gpu:2" in gpu.stdout and "--trainer.accelerator gpu" in gpu.stdout
    script = tmp_path / "gpu.sbatch"
    script.write_text(gpu.stdout)
    check = subprocess.run(["sbatch", "--test-only", str(script)], env=slurm, capture_output=True,
                           text=True)  # fmt: skip
    assert check.returncode == 0 and "to start at" in check.stderr, check.stderr
