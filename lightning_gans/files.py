"""Files written whole or not at all: a temporary file in the same directory, flushed to disk,
then renamed over the target. A kill, a crash or a reader in between sees the old file or the
new one, never half of one. The file takes the umask, as any other file does."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import torch


class _KeepsWriteErrors:
    """A file written through: torch reports a failed write (a full disk, a quota) as
    "unexpected pos", without its cause; this keeps the OSError behind it."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name: str) -> Any:  # flush, tell, seek, ... as the file has them
        return getattr(self.f, name)


@contextlib.contextmanager
def replaced_whole(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write, renamed over ``path`` when the block ends: the
    file is whole or not there. On a failure the temporary file is removed, ``path`` is
    untouched, and an OSError (no space, over quota, read-only) is raised naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        yield tmp
        os.replace(tmp, path)  # atomic on POSIX within one file system
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, os.strerror(e.errno), str(path)) from e
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(f)`` into ``path`` whole or not at all (``replaced_whole``), flushed to disk."""
    with replaced_whole(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode & ~umask
        with os.fdopen(fd, "wb") as f:
            out = _KeepsWriteErrors(f)
            try:
                write(out)
            except BaseException as e:
                if out.error is not None:  # the cause behind torch's "unexpected pos"
                    raise OSError(out.error.errno, out.error.strerror) from e
                raise
            f.flush()
            os.fsync(f.fileno())


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save(obj)`` into ``path``, atomically (``atomic_write``)."""
    atomic_write(path, lambda f: torch.save(obj, f))


# what the machine, not the program, got wrong when a file could not be written
STORAGE_FAULTS = {
    errno.ENOSPC: "the file system is full: free space there",
    errno.EDQUOT: "the disk quota is used up: free space or ask for more",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "no permission to write there",
    errno.EIO: "the storage failed (I/O error)",
    errno.ESTALE: "the shared file system lost the file (stale NFS handle)",
    errno.ENOENT: "the directory vanished (deleted, or its file system unmounted)",
}


def storage_fault(e: BaseException) -> str | None:
    """One line for a write the storage refused (``e`` or what caused it), else None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_FAULTS and e.filename:
            where = Path(e.filename)
            run = next((d for d in where.parents[:2] if (d / "config.yaml").is_file()), None)
            then = f"resume with RESUME={run}" if run else "resume from the run directory"
            if run and not any(run.rglob("*.ckpt")):
                then = "no checkpoint was written yet: start the run again"
            return (
                f"cannot write {where.name} in {where.parent}: {e.strerror}; "
                f"{STORAGE_FAULTS[e.errno]}. Files written before are intact (checkpoints are "
                f"replaced whole or not at all): {then} once it is fixed"
            )
        e = e.__cause__ or e.__context__
    return None
