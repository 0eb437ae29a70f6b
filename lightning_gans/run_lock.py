"""One writer per run directory: ``<run>/run.lock`` names the process that writes the run
(host, process, SLURM job), and a second process that would write there is refused in seconds
(docs/design.md#one-writer-per-run-directory).

Why a lock file with a heartbeat, not ``flock``/``fcntl``: those are only as good as the file
system's lock service. NFSv3 without ``lockd`` answers ENOLCK, Lustre mounted without
``-o flock`` answers ENOSYS, and BeeGFS by default takes them on the local node only, which
excludes nobody on another node. Creating a file with ``link(2)`` is atomic on every one of
them (open(2) recommends it for NFS), and what a lock file says can be checked:

- on the holder's own host, its process is alive or not (the pid and its start time, so a
  reused pid is not mistaken for it);
- from another host, the holder touches the file every ``HEARTBEAT_S`` seconds: a file whose
  time does not change for ``STALE_AFTER_S`` belongs to a process, or a node, that is gone;
- a SLURM job's requeued attempt takes the lock of its own earlier attempt at once (SLURM
  has ended every process of that attempt before it starts the next).

Under DDP the launcher's rank 0 takes the lock; the other ranks take the same decision from
the same file (refused when another live run holds it) and never write it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from lightning_gans.errors import ConfigError

LOCK_NAME = "run.lock"
HEARTBEAT_S = 2.0  # how often the holder touches its lock
STALE_AFTER_S = 5 * HEARTBEAT_S  # a lock not touched for this long, watched, is stale


def _boot_id() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _started(pid: int) -> str:
    """A process's start time since boot (Linux; "" elsewhere): with the pid, one process.
    "exited" for a zombie: it has ended, and only its parent has not collected it yet."""
    with contextlib.suppress(OSError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return "exited" if fields[0] in ("Z", "X") else fields[19]
    return ""


def job_tag() -> str:
    """The job this process belongs to: every rank of one job, and every attempt of a requeued
    SLURM job, share it ("" outside SLURM and torchrun)."""
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        return f"slurm:{env['SLURM_JOB_ID']}"
    if "TORCHELASTIC_RUN_ID" in env:  # its default id "none": one agent, the workers' parent
        run_id = env["TORCHELASTIC_RUN_ID"]
        agent = f"{socket.gethostname()}-{os.getppid()}-{env.get('MASTER_PORT', '')}"
        return f"torchrun:{run_id if run_id != 'none' else agent}"
    return ""


def me() -> dict:
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "started": _started(pid),
        "boot": _boot_id(),
        "job": job_tag(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def describe(holder: dict) -> str:
    job = holder.get("job", "")
    job = f", {job.replace(':', ' job ', 1)}" if job else ""
    return (
        f"host {holder.get('host', '?')}, process {holder.get('pid', '?')}{job}, "
        f"since {holder.get('since', '?')}"
    )


def read_holder(path: Path) -> dict | None:
    """What a lock file says; {} for one that cannot be read as a lock; None when there is none."""
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def alive_here(holder: dict) -> bool | None:
    """Whether the holder's process runs: known on its own host (since the same boot) only."""
    if holder.get("host") != socket.gethostname() or holder.get("boot") != _boot_id():
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        pass
    return _started(pid) == holder.get("started")


def touched(path: Path) -> int | None:
    """The lock's modification time, read through an open: NFS revalidates a file's attributes
    on open (close-to-open consistency), where a plain stat may answer from a minute-old cache."""
    try:
        with open(path, "rb") as f:
            return os.fstat(f.fileno()).st_mtime_ns
    except OSError:
        return None


def holder_alive(path: Path, holder: dict) -> bool:
    """Whether the lock's holder still runs: asked of this host, else watched for a heartbeat.
    A lock that changes hands while watched belongs to a live process."""
    here = alive_here(holder)
    if here is not None:
        return here
    first = touched(path)
    deadline = time.monotonic() + STALE_AFTER_S
    while time.monotonic() < deadline:
        time.sleep(HEARTBEAT_S / 4)
        now = touched(path)
        if now is None:  # released meanwhile
            return False
        if now != first:
            return True
    return False


class RunLock:
    """The lock this process holds on a run directory, kept fresh by a heartbeat thread."""

    def __init__(self, path: Path, content: dict) -> None:
        self.path, self.content = path, content
        self.lost: str | None = None  # why the lock is no longer ours, once it is not
        self.held_dir = None  # the directory held open keeps its inode number from being reused:
        with contextlib.suppress(OSError):  # one made again in its place (by a logger's next
            self.held_dir = os.open(path.parent, os.O_RDONLY)  # write) is then told apart
        self.dir_id = _identity(path.parent)
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="run-lock")
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            holder = read_holder(self.path)
            if _identity(self.path.parent) != self.dir_id:
                self.lost = "vanished"  # deleted (perhaps made again), or unmounted
                return
            if holder is None:  # removed by hand: this process still writes the run
                with contextlib.suppress(ConfigError):
                    _create(self.path, self.content, self.path.parent)
            elif holder and holder != self.content:
                self.lost = "taken"
                return
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self._stop.set()
        if self.held_dir is not None:
            os.close(self.held_dir)
            self.held_dir = None
        if read_holder(self.path) == self.content:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        found = folder.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


HELD: list[RunLock] = []  # the locks this process holds (one per run it writes)


def lock_lost() -> str | None:
    """Why this process's run directory is no longer its own ("vanished": deleted or
    unmounted; "taken": another process took the lock), or None."""
    return next((lock.lost for lock in HELD if lock.lost), None)


def release_run_locks() -> None:
    while HELD:
        HELD.pop().release()


def _refuse(run_dir: Path, holder: dict) -> ConfigError:
    return ConfigError(
        f"run directory {run_dir} is in use by another run ({describe(holder)}): one writer "
        "at a time; wait for it to end or stop it, then resume, or start a new run with "
        "another --run.name"
    )


def _not_writable(run_dir: Path, e: OSError) -> ConfigError:
    return ConfigError(f"run directory {run_dir} is not writable: {e.strerror}")


def lock_run_dir(run_dir: Path, writer: bool) -> None:
    """Makes this process the run directory's one writer (``writer``: the launcher's rank 0),
    or checks that no other live run writes it (the other ranks); refuses in one line."""
    path = run_dir / LOCK_NAME
    mine = me()
    for _ in range(10):  # each turn: the lock was released or found stale
        holder = read_holder(path)
        if holder is None:
            if not writer:
                return
            if _create(path, mine, run_dir):
                break
            continue
        same_job = bool(mine["job"]) and holder.get("job") == mine["job"]
        here = alive_here(holder)
        if holder.get("host") == mine["host"] and holder.get("pid") == os.getppid() and here:
            return  # started by the holder: a DDP process of its run
        if same_job and not writer:  # a rank of the holder's own job: its rank 0 writes
            return
        earlier_attempt = same_job and here is not True  # of this job: SLURM has ended it
        if not earlier_attempt and holder_alive(path, holder):
            raise _refuse(run_dir, holder)
        if not writer:
            return
        _take_over(path, holder, say=not same_job)
    else:
        raise ConfigError(f"run directory {run_dir}: its lock {path} keeps changing hands")
    HELD.append(RunLock(path, mine))
    _remove_leftovers(run_dir)


def _create(path: Path, content: dict, run_dir: Path) -> bool:
    """Creates the lock file whole and atomically: written aside, then linked into place."""
    tmp = path.parent / f".{LOCK_NAME}.{content['host']}.{content['pid']}.tmp"
    try:
        tmp.write_text(json.dumps(content))
        try:
            os.link(tmp, path)  # fails if the lock exists, on NFS too
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            # a file system without hard links: exclusive creation instead
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(content))
        return True
    except FileExistsError:
        return False
    except OSError as e:
        raise _not_writable(run_dir, e) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _take_over(path: Path, stale: dict, say: bool) -> None:
    """Moves a dead holder's lock aside (rename: of two processes that found it stale, one
    wins); a lock that turns out not to be the stale one is put back."""
    aside = path.parent / f".{LOCK_NAME}.stale.{os.getpid()}"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if read_holder(aside) != stale:
        with contextlib.suppress(OSError):
            os.link(aside, path)
    with contextlib.suppress(OSError):
        aside.unlink()
    if say:
        sys.stderr.write(f"run directory {path.parent}: took over the lock of a run that "
                         f"is gone ({describe(stale)})\n")  # fmt: skip


def _remove_leftovers(run_dir: Path) -> None:
    """Temporary files of a writer that was killed mid-write (atomic writes leave them on a
    SIGKILL): with the lock held, no one else is writing them."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
        for tmp in folder.glob(".*.tmp"):
            if not tmp.name.startswith(f".{LOCK_NAME}."):  # another newcomer's, being linked
                with contextlib.suppress(OSError):
                    tmp.unlink()
