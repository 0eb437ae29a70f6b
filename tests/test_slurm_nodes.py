"""Two nodes on a real Slurm (tests/slurm/cluster.sh with NODES=2): each slurmd in a network and
UTS namespace of its own, so each node has its own hostname and address, and the four ranks of
`make slurm NODES=2 GPUS=0 TASKS=2` meet over gloo across a bridge, as across a network
(README "On a cluster"). `make test-slurm` runs them beside the one-node tests."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import QUIET, ROOT, TINY_TOY, run_module
from tests.test_slurm_cluster import (
    CLUSTER,
    STEPS,
    job,
    job_log,
    logged_step,
    signal_job,
    step_of,
    trained,
    wait,
    wait_done,
)

pytestmark = pytest.mark.slurm
NODES = "NODES=2"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    """SLURM_CONF of a running two-node cluster, its namespaces removed after the tests."""
    state = tmp_path_factory.mktemp("slurm2")
    start = subprocess.run([CLUSTER, "start", state], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "NODES": "2", "CPUS": "4"})  # fmt: skip
    if start.returncode == 3:
        pytest.skip(f"no Slurm here: {start.stderr.strip()}")
    assert start.returncode == 0, start.stderr
    env = {**os.environ, "SLURM_CONF": str(state / "slurm.conf"), "WANDB_MODE": "offline"}
    nodes = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], env=env, capture_output=True,
                           text=True).stdout.split()  # fmt: skip
    assert len(nodes) == 2
    yield env, nodes
    subprocess.run([CLUSTER, "stop", state], capture_output=True, timeout=60)
    hosts = Path("/etc/hosts").read_text().splitlines()
    assert not [ln for ln in hosts if "lightning-gans cluster" in ln]  # all of it removed


def submit(env: dict, runs, args: str) -> str:
    """``make slurm`` of the toy WGAN-GP as 2 nodes x 2 CPU tasks: 4 ranks over gloo."""
    cmd = ["make", "-s", "slurm", "MODEL=wgan_gp", "TOY=1", "GPUS=0", "TASKS=2", "CPUS=1", NODES]
    cmd += ["TIME=00:10:00", f"ARGS=--run.root {runs} {args}"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return re.search(r"Submitted batch job (\d+)", proc.stdout).group(1)


def test_four_ranks_on_two_nodes_make_one_run_with_one_wandb_id_and_disjoint_data(
    two_nodes, tmp_path
):
    env, nodes = two_nodes
    runs = tmp_path / "runs"
    # 6 steps of 5 critic batches of 32 on 4 ranks: 3,840 of the 4,096 points, one epoch
    args = f"{STEPS} --trainer.max_steps 6 --trainer.limit_val_batches 0 --run.logger wandb"
    job_id = submit(env, runs, args + " --trainer.callbacks+=tests.helpers.RecordBatches")
    fields = wait_done(env, job_id)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), job_log(runs, job_id)
    assert sorted(p.name for p in runs.iterdir()) == ["slurm", f"wgangp-toy8-{job_id}"]
    run = runs / f"wgangp-toy8-{job_id}"
    ends = {t["rank"]: t for t in trained(run) if t["event"] == "end"}
    assert sorted(ends) == [0, 1, 2, 3] and all(t["trained"] == 6 for t in ends.values())
    hosts = {r: ends[r]["host"] for r in ends}  # node rank x local rank: two ranks a node
    assert hosts == {0: nodes[0], 1: nodes[0], 2: nodes[1], 3: nodes[1]}
    run_id = (run / "wandb_run_id").read_text().strip()
    (wandb_run,) = (run / "wandb").glob("offline-run-*")  # one W&B run, rank 0's
    assert wandb_run.name.endswith(f"-{run_id}")
    batches = [torch.load(run / f"batches_rank{r}.pt") for r in range(4)]
    assert all(len(b) == 6 * 5 * 32 for b in batches)
    seen = torch.cat(batches)
    assert torch.unique(seen, dim=0).shape[0] == len(seen)  # no point twice, on any node


def test_four_ranks_on_two_nodes_end_with_the_weights_of_one_process_of_the_global_batch(
    two_nodes, tmp_path
):
    env, _ = two_nodes
    runs = tmp_path / "runs"
    same = "--trainer.callbacks+=tests.helpers.SameDraws --trainer.callbacks.global_batch 64"
    args = f"{STEPS} --data.batch_size 16 --trainer.max_steps 3 --trainer.limit_val_batches 0"
    job_id = submit(env, runs, f"{args} --run.logger csv {same}")
    assert wait_done(env, job_id)["JobState"] == "COMPLETED", job_log(runs, job_id)
    one = run_module(
        "fit", "--config", "configs/toy/wgan_gp.yaml", *TINY_TOY[2:], *QUIET,
        "--model.g_width", "32", "--model.d_width", "32", "--data.batch_size", "64",
        "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0", "--run.logger", "csv",
        "--trainer.callbacks+=tests.helpers.SameDraws", "--trainer.callbacks.global_batch", "64",
        "--run.root", str(tmp_path), "--run.name", "one", env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    four, single = (
        torch.load(d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        for d in (runs / f"wgangp-toy8-{job_id}", tmp_path / "one")
    )
    assert four.keys() == single.keys()
    for key in four:  # 3 generator steps of 5 critic updates, averaged over 4 x 16 == 64
        torch.testing.assert_close(four[key], single[key], atol=1e-5, rtol=1e-4, msg=key)
    moved = torch.load(tmp_path / "one" / "draws_rank0.pt")["grads"][0]
    assert any(g.abs().max() > 1e-3 for g in moved)  # the weights did move


def test_a_two_node_job_preempted_twice_resumes_each_time_with_only_the_rest(two_nodes, tmp_path):
    env, _ = two_nodes
    runs = tmp_path / "runs"
    job_id = submit(env, runs, f"{STEPS} --trainer.max_steps 400 --run.logger csv")
    run = runs / f"wgangp-toy8-{job_id}"
    wait(lambda: logged_step(run, 39), 180, "training to log step 39")
    signal_job(env, job_id, "USR1")  # the time limit's warning: a checkpoint and a requeue

    def requeued_and_training() -> bool:
        return any(t["restart"] == 1 for t in trained(run))

    wait(requeued_and_training, 240, "the requeued attempt to train")
    first = {t["step"] for t in trained(run) if t["event"] == "end" and t["restart"] == 0}
    assert len(first) == 1, trained(run)  # all 4 ranks stopped at one step
    (stop1,) = first
    time.sleep(3)
    signal_job(env, job_id, "TERM")  # preemption: a checkpoint, no requeue of its own
    wait(lambda: job(env, job_id).get("JobState") in ("COMPLETED", "FAILED", "CANCELLED"), 120,
         "the second attempt to stop")  # fmt: skip
    second = [t for t in trained(run) if t["event"] == "end" and t["restart"] == 1]
    assert len({t["step"] for t in second}) == 1 and len(second) == 4, trained(run)
    stop2 = second[0]["step"]
    assert {t["first_step"] for t in second} == {stop1} and stop1 < stop2 < 400
    assert job(env, job_id)["JobState"] == "COMPLETED"  # preempted, not FAILED
    subprocess.run(["scontrol", "requeue", job_id], env=env, check=True)  # as Slurm would
    fields = wait_done(env, job_id, restarts=2)
    log = job_log(runs, job_id)
    assert fields["JobState"] == "COMPLETED" and "Traceback" not in log, log
    third = [t for t in trained(run) if t["event"] == "end" and t["restart"] == 2]
    assert {(t["first_step"], t["trained"]) for t in third} == {(stop2, 400 - stop2)}
    assert len(third) == 4 and step_of(run / "checkpoints" / "last.ckpt") == 400


def test_a_rank_killed_on_the_second_node_fails_the_job_within_a_minute(two_nodes, tmp_path):
    env, nodes = two_nodes
    runs = tmp_path / "runs"
    job_id = submit(env, runs, f"{STEPS} --trainer.max_steps 100000 --run.logger csv")
    run = runs / f"wgangp-toy8-{job_id}"

    def all_started() -> list[dict]:
        found = [t for t in trained(run) if t["event"] == "start"]
        return found if len(found) == 4 else []

    starts = wait(all_started, 180, "all 4 ranks to start")
    (victim,) = [t for t in starts if t["rank"] == 3]
    assert victim["host"] == nodes[1]
    wait(lambda: logged_step(run, 19), 60, "training to log step 19")
    killed = time.time()
    os.kill(victim["pid"], 9)  # the machine shares its process table with the "nodes"
    fields = wait_done(env, job_id, timeout=90)
    assert fields["JobState"] == "FAILED" and time.time() - killed < 60, fields
