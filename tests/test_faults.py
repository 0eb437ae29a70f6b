"""Ordinary faults that must lose no work, each met for real: Ctrl-C (SIGINT to the run's
process group, as a terminal sends it), a file system that fills up (a small tmpfs), two
processes on one run directory, a holder that died or runs on another host (its own UTS
namespace), a read-only or vanished run directory, a metrics.csv cut mid-row, a missing
last.ckpt, and signals during a save (docs/design.md#one-writer-per-run-directory, README
"Resume, preemption, no lost work"). The tmpfs and namespace tests need root, as CI has."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lightning_gans.errors import ConfigError
from lightning_gans.run_lock import HEARTBEAT_S, LOCK_NAME, STALE_AFTER_S, lock_run_dir, me
from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY

TOY = ["--config", "configs/toy/wgan.yaml", *TINY_TOY, *QUIET, "--run.logger", "csv"]
TOY += ["--run.time_budget", "null", "--trainer.callbacks+=tests.helpers.TrainedSteps"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LIGHTNING_GANS_"))}
ENV = {**{k: v for k, v in ENV.items() if k != "WANDB_SERVICE"}, "OMP_NUM_THREADS": "1"}
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounts and namespaces need root")


def command(root: Path, *extra: str, name: str = "run", steps: int = 100_000) -> list[str]:
    args = [sys.executable, "-m", "lightning_gans", "fit", *TOY, "--run.root", str(root)]
    return [*args, *extra, "--run.name", name, "--trainer.max_steps", str(steps)]  # steps last


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def no_run_outlives_its_test():
    """A test that fails while its run trains (100,000 steps) must not leave it running."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def start(args: list[str], prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    """The run in a process group of its own, as a terminal's foreground job or a Slurm step."""
    proc = subprocess.Popen([*prefix, *args], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    STARTED.append(proc)
    return proc


def run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=ENV, text=True, capture_output=True, timeout=timeout)


def wait_until(done, timeout: float = 180, what: str = "") -> None:
    deadline = time.time() + timeout
    while not done():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def training(run_dir: Path, proc: subprocess.Popen, steps: int = 1) -> None:
    """Waits until the run has trained ``steps`` steps (its TrainedSteps line and log)."""
    metrics = run_dir / "metrics.csv"

    def far_enough() -> bool:
        assert proc.poll() is None, proc.communicate()
        return metrics.is_file() and logged_steps(run_dir)[-1:] >= [steps]

    wait_until(far_enough, what=f"step {steps}")


def logged_steps(run_dir: Path) -> list[int]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [int(float(row["step"])) for row in csv.DictReader(f) if row.get("step")]


def step_of(ckpt: Path) -> int:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]


def starts(run_dir: Path) -> list[int]:
    lines = (run_dir / "trained_steps.jsonl").read_text().splitlines()
    return [line["step"] for line in map(json.loads, lines) if line["event"] == "start"]


def leftovers(run_dir: Path) -> list[Path]:
    return [p for p in run_dir.rglob(".*") if p.name.endswith(".tmp")]


def error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


# --- Ctrl-C ---------------------------------------------------------------------------------


def test_ctrl_c_saves_the_step_says_how_to_resume_and_exits_130(tmp_path):
    proc = start(command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "100000"))
    run_dir = tmp_path / "run"
    training(run_dir, proc, steps=20)
    os.killpg(proc.pid, signal.SIGINT)  # every process of the group, as a terminal does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err
    last = run_dir / "checkpoints" / "last.ckpt"
    said = [ln for ln in out.splitlines() if ln.startswith("Ctrl-C at generator step")]
    assert said == [f"Ctrl-C at generator step {step_of(last)}: wrote {last}; "
                    f"resume with RESUME={run_dir}"], out  # fmt: skip
    assert step_of(last) >= 20  # the step it stopped at, not the last periodic checkpoint


def test_a_second_ctrl_c_stops_at_once_without_a_checkpoint(tmp_path):
    slow = ["--trainer.callbacks+=tests.helpers.SlowSteps", "--checkpoint.every_n_train_steps", "3"]
    proc = start(command(tmp_path, *TINY_GAN, *slow))
    at_step = tmp_path / "run" / "at_step"
    wait_until(lambda: at_step.is_file() and int(at_step.read_text() or 0) >= 4, what="step 4")
    os.killpg(proc.pid, signal.SIGINT)  # recorded: a checkpoint at the end of this step
    time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGINT)  # inside the same one-second step: stop now
    stopped = time.time()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-3000:]
    assert time.time() - stopped < 15
    assert "Traceback" not in err and "Ctrl-C again stops at once" in err
    assert "Ctrl-C at generator step" not in out  # no checkpoint for the interrupted step
    assert step_of(tmp_path / "run" / "checkpoints" / "last.ckpt") == 3  # the periodic one
    assert leftovers(tmp_path / "run") == []


@pytest.mark.slow
def test_ctrl_c_through_make_train_and_the_resume_trains_only_the_rest(tmp_path):
    args = [*TINY_GAN, "--run.root", str(tmp_path), "--run.name", "run", *QUIET]
    args += ["--trainer.callbacks+=tests.helpers.TrainedSteps", "--run.time_budget", "null"]
    make = ["make", "--no-print-directory", "train", "TOY=1", "MODEL=wgan", "LOGGER=csv"]
    proc = start([*make, f"ARGS={' '.join(args)} --trainer.max_steps 100000"])
    run_dir = tmp_path / "run"
    training(run_dir, proc, steps=20)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode in (-signal.SIGINT, 2, 130), err[-3000:]  # make's own way out
    assert "Traceback" not in err and f"resume with RESUME={run_dir}" in out
    step = step_of(run_dir / "checkpoints" / "last.ckpt")
    more = f"ARGS={' '.join(args)} --trainer.max_steps {step + 5}"
    resumed = run([*make, more, f"RESUME={run_dir}"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert starts(run_dir) == [0, step]  # not retrained from step 0
    assert step_of(run_dir / "checkpoints" / "last.ckpt") == step + 5
    assert logged_steps(run_dir) == sorted(logged_steps(run_dir))


# --- signals during a save ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signal_during_a_save_leaves_a_whole_checkpoint(tmp_path, sig):
    """SIGTERM during a save: it finishes, and the run stops after it. SIGKILL: the previous
    last.ckpt stays whole, and the resume takes the dead run's lock and trains the rest."""
    slow = ["--trainer.callbacks+=tests.helpers.SlowSave", "--trainer.callbacks.after_step", "4"]
    args = command(tmp_path, *TINY_GAN, *slow, "--checkpoint.every_n_train_steps", "4")
    proc = start(args)
    run_dir = tmp_path / "run"
    wait_until((run_dir / "saving").is_file, what="the save of step 8")
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    last = run_dir / "checkpoints" / "last.ckpt"
    stopped = step_of(last)
    if sig == signal.SIGTERM:  # recorded in the save of step 8, acted on at the next boundary
        assert proc.returncode == 0, err[-3000:]
        assert stopped in (8, 9) and f"SIGTERM at generator step {stopped}: wrote" in out
    else:
        assert stopped == 4  # the one before, whole
        leftover = last.parent / f".last.ckpt.{proc.pid}.00000000.tmp"  # what a kill mid-write
        leftover.write_bytes(b"half a checkpoint")  # leaves beside the whole one
    resumed = run([*args[:-2], "--trainer.max_steps", "12", "--ckpt_path", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert starts(run_dir)[-1] == stopped
    assert step_of(last) == 12 and leftovers(run_dir) == []


# --- a full disk, a read-only or vanished run directory -------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A real file system that fills up: 12 MB of tmpfs, room for one toy checkpoint (8.5 MB)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.slow
@root_only
def test_a_full_disk_is_one_line_leaves_nothing_half_written_and_the_resume_continues(small_disk):
    args = command(small_disk, "--checkpoint.every_n_train_steps", "20", steps=60)
    full = run(args)
    run_dir = small_disk / "run"
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    assert error_lines(full.stderr) == [
        f"error: cannot write last.ckpt in {run_dir / 'checkpoints'}: No space left on device; "
        "the file system is full: free space there. Files written before are intact "
        "(checkpoints are replaced whole or not at all): resume with "
        f"RESUME={run_dir} once it is fixed"
    ]
    kept = run_dir / "checkpoints" / "step000020.ckpt"
    assert step_of(kept) == 20  # whole, and read as data only
    assert leftovers(run_dir) == [] and not (run_dir / LOCK_NAME).exists()
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert len({len(row) for row in rows}) == 1  # no row half-written

    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    resumed = run([*args[:-2], "--trainer.max_steps", "30", "--ckpt_path", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "last.ckpt: using step000020.ckpt (generator step 20)" in resumed.stderr  # no last.ckpt
    assert starts(run_dir)[-1] == 20 and step_of(run_dir / "checkpoints" / "last.ckpt") == 30


@pytest.mark.slow
@root_only
def test_a_read_only_run_directory_is_one_line_and_stays_as_it_was(small_disk):
    args = command(small_disk, *TINY_GAN, steps=6)
    assert run(args).returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    resumed = run([*args[:-2], "--trainer.max_steps", "9", "--ckpt_path", str(small_disk / "run")])
    assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
    assert error_lines(resumed.stderr) == [
        f"error: run directory {small_disk / 'run'} is not writable: Read-only file system"
    ]
    assert step_of(small_disk / "run" / "checkpoints" / "last.ckpt") == 6


@pytest.mark.slow
def test_a_run_directory_that_vanishes_gets_the_step_written_again(tmp_path):
    proc = start(command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "100000"))
    run_dir = tmp_path / "run"
    training(run_dir, proc, steps=20)
    subprocess.run(["rm", "-rf", str(run_dir)], check=True)  # a scratch purge, a wrong rm
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    said = [ln for ln in err.splitlines() if "vanished at generator step" in ln]
    last = run_dir / "checkpoints" / "last.ckpt"
    assert said == [
        f"run directory {run_dir} vanished at generator step {step_of(last)}: wrote {last} into "
        "a new one; the earlier checkpoints and logs are gone"
    ]
    assert step_of(last) > 20


def test_a_run_directory_deleted_and_made_again_at_once_is_seen_to_have_vanished(tmp_path):
    """The run's loggers make the directory again at their next write, often before the lock's
    heartbeat looks: ext4 gives a new directory the inode number just freed, so the new one
    passed for the old, the lock was written again and training went on in an empty folder."""
    import shutil

    from lightning_gans.run_lock import lock_lost, release_run_locks

    run = tmp_path / "run"
    run.mkdir()
    lock_run_dir(run, writer=True)
    try:
        shutil.rmtree(run)
        run.mkdir()  # before the next heartbeat
        wait_until(lambda: lock_lost() == "vanished", 3 * HEARTBEAT_S, "the vanished directory")
    finally:
        release_run_locks()


# --- history and checkpoints a kill leaves --------------------------------------------------


def test_a_metrics_csv_cut_mid_row_is_resumed_without_the_cut_row(tmp_path):
    args = command(tmp_path, *TINY_GAN, "--trainer.log_every_n_steps", "5", steps=20)
    assert run(args).returncode == 0
    metrics = tmp_path / "run" / "metrics.csv"
    whole = metrics.read_text()
    metrics.write_text(whole[:-7])  # killed while writing the last row: cut inside a number
    resumed = run([*args[:-2], "--trainer.max_steps", "30", "--ckpt_path", str(tmp_path / "run")])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with open(metrics, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(tmp_path / "before.csv", "w") as f:
        f.write(whole)
    with open(tmp_path / "before.csv", newline="") as f:
        before = [{k: v for k, v in row.items() if v} for row in csv.DictReader(f)]
    kept = [{k: v for k, v in row.items() if v} for row in rows if float(row["step"]) <= 20]
    assert kept == before[:-1]  # every kept row as it was; the cut one is gone, not mangled
    assert [int(float(r["step"])) for r in rows][-1] == 30


@pytest.mark.slow
def test_a_missing_last_ckpt_resumes_from_the_newest_step_file(tmp_path):
    args = command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "5", steps=12)
    assert run(args).returncode == 0
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "last.ckpt").unlink()
    (checkpoints / "step000005.ckpt").touch()  # older, though newer on disk
    resumed = run([*args[:-2], "--trainer.max_steps", "14", "--ckpt_path", str(tmp_path / "run")])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"no {checkpoints / 'last.ckpt'}: using step000010.ckpt" in resumed.stderr
    assert starts(tmp_path / "run")[-1] == 10 and step_of(checkpoints / "last.ckpt") == 14


# --- one writer per run directory -----------------------------------------------------------


def test_a_second_process_on_a_training_run_is_refused_in_seconds(tmp_path):
    args = command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "10")
    first = start(args)
    run_dir = tmp_path / "run"
    training(run_dir, first, steps=20)
    t0 = time.time()
    second = run([*args[:-2], "--ckpt_path", str(run_dir)])  # a resubmitted job, a 2nd terminal
    took = time.time() - t0
    assert second.returncode == 2 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert error_lines(second.stderr) == [
        f"error: run directory {run_dir} is in use by another run (host {socket.gethostname()}, "
        f"process {first.pid}, since {json.loads((run_dir / LOCK_NAME).read_text())['since']}): "
        "one writer at a time; wait for it to end or stop it, then resume, or start a new run "
        "with another --run.name"
    ]
    assert took < 30  # the import of torch and Lightning, then at once: its holder is here
    assert first.poll() is None  # the first one trains on, alone
    os.killpg(first.pid, signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-3000:]
    steps = logged_steps(run_dir)
    assert steps == sorted(steps) and starts(run_dir) == [0]


def test_a_run_before_its_first_checkpoint_names_its_holder_to_a_resume_and_a_rerun(tmp_path):
    """The default keeps a checkpoint every 1,000 steps: a resume, or the same --run.name,
    started meanwhile is told who trains there, not only that nothing is there yet."""
    first = start(command(tmp_path, *TINY_GAN))
    run_dir = tmp_path / "run"
    training(run_dir, first, steps=10)
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()
    holder = f"is in use by another run (host {socket.gethostname()}, process {first.pid}"
    for again in (["--ckpt_path", str(run_dir)], []):  # a resume; a rerun of the same name
        second = run([*command(tmp_path, *TINY_GAN), *again])
        assert second.returncode == 2, second.stderr[-3000:]
        (line,) = error_lines(second.stderr)
        assert line.startswith(f"error: run directory {run_dir} {holder}"), line
    assert first.poll() is None


@pytest.mark.slow
def test_the_lock_of_a_killed_run_never_blocks_its_resume(tmp_path):
    args = command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "10")
    first = start(args)
    run_dir = tmp_path / "run"
    training(run_dir, first, steps=20)
    os.killpg(first.pid, signal.SIGKILL)  # no handler runs: run.lock stays behind
    first.communicate(timeout=30)
    assert json.loads((run_dir / LOCK_NAME).read_text())["pid"] == first.pid
    step = step_of(run_dir / "checkpoints" / "last.ckpt")
    t0 = time.time()
    resumed = run([*args[:-2], "--trainer.max_steps", str(step + 3), "--ckpt_path", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert time.time() - t0 < 60  # same host: the holder is known dead, nothing to wait for
    assert starts(run_dir) == [0, step] and not (run_dir / LOCK_NAME).exists()


@pytest.mark.slow
@root_only
def test_a_holder_on_another_host_is_refused_while_it_beats_and_taken_over_once_dead(tmp_path):
    """The holder in a UTS namespace of its own, as a second node: this host cannot see its
    process, only its heartbeat on the shared directory."""
    args = command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "10")
    other = ("unshare", "--uts", "sh", "-c", 'hostname node-b && exec "$0" "$@"')
    first = start(args, prefix=other)
    run_dir = tmp_path / "run"
    training(run_dir, first, steps=20)
    assert json.loads((run_dir / LOCK_NAME).read_text())["host"] == "node-b"
    second = run([*args[:-2], "--ckpt_path", str(run_dir)])
    assert second.returncode == 2, second.stderr[-3000:]
    assert "is in use by another run (host node-b, process" in second.stderr
    os.killpg(first.pid, signal.SIGKILL)  # the node is lost
    first.communicate(timeout=30)
    step = step_of(run_dir / "checkpoints" / "last.ckpt")
    t0 = time.time()
    resumed = run([*args[:-2], "--trainer.max_steps", str(step + 3), "--ckpt_path", str(run_dir)])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "took over the lock of a run that is gone (host node-b" in resumed.stderr
    assert starts(run_dir)[-1] == step and time.time() - t0 >= STALE_AFTER_S


@pytest.mark.slow
def test_a_run_whose_lock_another_process_took_stops_writing_nothing(tmp_path):
    """This run looked dead to another process (suspended, a lost network) that took the lock:
    it stops at its next step boundary and writes no checkpoint over the new holder's."""
    proc = start(command(tmp_path, *TINY_GAN, "--checkpoint.every_n_train_steps", "100000"))
    run_dir = tmp_path / "run"
    training(run_dir, proc, steps=20)
    other = {**me(), "host": "node-b", "pid": 4242}
    aside = run_dir / ".other.lock"
    aside.write_text(json.dumps(other))
    os.replace(aside, run_dir / LOCK_NAME)  # as a takeover puts its own lock in place
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    assert f"run directory {run_dir} was taken over by another process at generator step" in err
    assert not (run_dir / "checkpoints" / "last.ckpt").exists()  # nothing written over theirs
    assert json.loads((run_dir / LOCK_NAME).read_text()) == other  # its lock left alone


def beating(path: Path, holder: dict, stop: threading.Event) -> threading.Thread:
    """A live holder on another host, as this host sees it: its lock file, touched."""
    path.write_text(json.dumps(holder))

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S / 2):
            os.utime(path)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    return thread


def test_a_requeued_slurm_job_takes_its_own_earlier_attempts_lock_and_other_jobs_are_refused(
    tmp_path, monkeypatch
):
    stop = threading.Event()
    other_node = {**me(), "host": "node-b", "pid": 4242, "job": "slurm:77"}
    beating(tmp_path / LOCK_NAME, other_node, stop)
    try:
        monkeypatch.setenv("SLURM_JOB_ID", "78")  # another job: the live holder refuses it
        with pytest.raises(ConfigError, match="in use by another run .host node-b, process 4242, "
                                              "slurm job 77"):  # fmt: skip
            lock_run_dir(tmp_path, writer=True)
        monkeypatch.setenv("SLURM_JOB_ID", "77")  # its other ranks: they go on, writing nothing
        lock_run_dir(tmp_path, writer=False)
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == 4242
        t0 = time.time()  # its requeued attempt: at once, without watching for a heartbeat
        lock_run_dir(tmp_path, writer=True)
        assert time.time() - t0 < HEARTBEAT_S
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        stop.set()
        from lightning_gans.run_lock import release_run_locks

        release_run_locks()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_ranks_of_the_holders_job_go_on_and_a_live_process_of_it_is_not_taken_over(
    tmp_path, monkeypatch
):
    """Rank 1 beside its rank 0 on one node (the lock's holder, alive here) writes nothing and
    goes on; a process of the same job that would write (a second srun step) is refused."""
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    rank0 = subprocess.Popen(["sleep", "60"])
    try:
        held = {**me(), "pid": rank0.pid, "job": "slurm:77"}
        held["started"] = Path(f"/proc/{rank0.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (tmp_path / LOCK_NAME).write_text(json.dumps(held))
        lock_run_dir(tmp_path, writer=False)
        with pytest.raises(ConfigError, match=f"process {rank0.pid}, slurm job 77"):
            lock_run_dir(tmp_path, writer=True)
    finally:
        rank0.kill()
        rank0.wait()
    lock_run_dir(tmp_path, writer=True)  # its process is gone: taken over at once
    from lightning_gans.run_lock import release_run_locks

    release_run_locks()


def test_the_lock_of_a_process_that_exited_but_is_not_collected_yet_is_stale(tmp_path):
    """A zombie still answers kill(pid, 0): it must not pass for a live holder."""
    from lightning_gans.run_lock import alive_here, release_run_locks

    child = subprocess.Popen(["sleep", "0.5"])  # not waited for: a zombie once it ends
    stat = Path(f"/proc/{child.pid}/stat")
    held = {**me(), "pid": child.pid, "started": stat.read_text().rsplit(")", 1)[1].split()[19]}
    assert alive_here(held) is True
    wait_until(lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", 10, "a zombie")
    (tmp_path / LOCK_NAME).write_text(json.dumps(held))
    try:
        lock_run_dir(tmp_path, writer=True)  # taken over, not refused
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    finally:
        release_run_locks()
        child.wait()


@root_only
def test_a_config_rewritten_on_a_full_disk_stays_the_old_one(small_disk):
    """A resume rewrites the run's config.yaml: on a full disk the old one stays, whole."""
    from lightning_gans.launch.parsing import OneLineErrorParser

    parser = OneLineErrorParser()
    parser.add_argument("--notes", type=str)
    config = small_disk / "config.yaml"
    parser.save(parser.parse_args(["--notes", "the run's own"]), str(config))
    with open(small_disk / "filler", "wb", buffering=0) as f, pytest.raises(OSError):
        while True:  # the rest of the 12 MB
            f.write(b"\0" * 4096)
    with pytest.raises(OSError, match=f"No space left on device: '{config}'"):
        parser.save(parser.parse_args(["--notes", "x" * 100_000]), str(config))
    assert parser.parse_path(str(config)).notes == "the run's own"
    assert [p.name for p in small_disk.iterdir() if p.name.endswith(".tmp")] == []
