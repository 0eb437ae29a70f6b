"""Where a run writes: one directory per run, found again on resume and by DDP children."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from lightning_gans.errors import ConfigError
from lightning_gans.run_lock import lock_run_dir

RUN_DIR_ENV = "LIGHTNING_GANS_RUN_DIR"  # "<pid>:<dir>": rank 0's run directory for its children


def launcher_rank() -> int:
    """This process's global rank as its launcher (torchrun, srun) set it; 0 when alone."""
    return int(os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or 0)


def default_name(model: str, dataset: str) -> tuple[str, bool]:
    """``<model>-<dataset>-<tag>`` and whether every rank computes it alike (then it must not
    change: a launcher's ranks cannot tell each other a new name). The tag: the SLURM job
    (``<job>_<task>`` for an array task, ``.<step>`` for a second srun step of one
    allocation), the torchrun rendezvous id, or the time."""
    env = os.environ
    if env.get("SLURM_JOB_ID"):
        array = env.get("SLURM_ARRAY_TASK_ID")
        tag = f"{env['SLURM_ARRAY_JOB_ID']}_{array}" if array else env["SLURM_JOB_ID"]
        step = env.get("SLURM_STEP_ID", "")
        tag += f".{step}" if step.isdigit() and step != "0" else ""
        return f"{model}-{dataset}-{tag}", int(env.get("SLURM_NTASKS", "1")) > 1
    if "TORCHELASTIC_RUN_ID" in env:  # torchrun; its default id "none" names no run
        run_id = env["TORCHELASTIC_RUN_ID"]
        tag = run_id if run_id != "none" else f"torchrun{os.getppid()}-{env.get('MASTER_PORT', '')}"
        return f"{model}-{dataset}-{tag}", True
    return f"{model}-{dataset}-{time.strftime('%Y%m%d-%H%M%S')}", False


def new_run_dir(root: str, name: str | None, model: str, dataset: str) -> Path:
    """A directory no earlier run wrote into: ``<root>/<name>``, by default ``default_name``
    (with ``-2``, ``-3``, ... when two runs start in the same second). An existing ``name``
    is refused: only resuming, or a requeued SLURM job, reuses a run's directory
    (docs/design.md#one-run-one-directory). DDP processes started by this run's rank 0 join
    its directory."""
    parent, _, inherited = os.environ.get(RUN_DIR_ENV, "").partition(":")
    child = os.environ.get("LOCAL_RANK", "0") != "0" and parent == str(os.getppid())
    if inherited and child:  # a DDP process started by rank 0 of this very run
        return Path(inherited)
    fixed = name is not None
    if name is None:
        name, fixed = default_name(model, dataset)
    path = Path(root) / name
    if launcher_rank() == 0:
        for n in range(2, 10_000):
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                if requeued():  # made by this job's first attempt, stopped before a checkpoint
                    break
                if fixed:
                    lock_run_dir(path, writer=False)  # a run that trains there is named
                    raise ConfigError(
                        f"run directory {path} exists: resume it with --ckpt_path {path} "
                        "(make train RESUME=...), or choose another --run.name"
                    ) from None
                path = Path(root) / f"{name}-{n}"
            except OSError as e:  # read-only, missing mount, not a directory
                raise ConfigError(
                    f"run.root {root!r}: cannot create {path}: {e.strerror}"
                ) from None
    os.environ[RUN_DIR_ENV] = f"{os.getpid()}:{path}"
    MADE.append(path)
    return path


def another_run(directory: Path, run_dir: Path) -> bool:
    """Whether ``directory`` is an existing run's directory other than ``run_dir``."""
    return directory.resolve() != run_dir.resolve() and (directory / "config.yaml").is_file()


MADE: list[Path] = []  # the run directories this process set up, in order


def release_failed_run_dir() -> None:
    """Removes the directory this process created for a run that stopped on a user's mistake
    before it saved a checkpoint (an empty image folder, a data set that needs a download): its
    config, its W&B offline run (which ``wandb sync`` would upload) and its id describe a run
    that never was. A directory with a checkpoint in it is kept."""
    import shutil

    owner, _, path = os.environ.get(RUN_DIR_ENV, "").partition(":")
    run = Path(path)
    if launcher_rank() != 0:  # rank 0 made it, and the other ranks may still be starting
        return
    if owner == str(os.getpid()) and path and run.is_dir() and not any(run.rglob("*.ckpt")):
        wandb = sys.modules.get("wandb")
        if wandb is not None and wandb.run is not None:  # else it writes its files again
            wandb.run.finish(exit_code=1)
        shutil.rmtree(run, ignore_errors=True)


def requeued() -> bool:
    """Whether this is a SLURM job after a requeue (``SLURM_RESTART_COUNT`` > 0): it continues
    in the directory its first attempt made, from that directory's ``last.ckpt`` if any."""
    return int(os.environ.get("SLURM_RESTART_COUNT") or 0) > 0


TRUSTED: set[Path] = set()  # files the user vouched for: read as full pickles
TRUST_HOW = (
    "if you trust the file and whoever made it: --weights_only false (fit, validate, test), "
    "--trust-checkpoint (the eval and sample tools), or TRUST=1 with make"
)


def trust(path: Path) -> None:
    """The user's explicit opt-in for one file: it may hold any object, and unpickling it may
    run code (``--weights_only false``, ``--trust-checkpoint``, ``TRUST=1``)."""
    TRUSTED.add(Path(path).resolve())


def trusted(path: Path) -> bool:
    return Path(path).resolve() in TRUSTED


def read_checkpoint(path: Path, mmap: bool = False) -> dict:
    """A checkpoint's contents, read as data only (``weights_only=True``): a checkpoint is a
    pickle, and one from elsewhere could run code as it is unpickled. This project's own hold
    tensors and plain values only. A file that needs anything else, or is no checkpoint, is one
    line naming it (docs/design.md#a-checkpoint-is-untrusted-input)."""
    import pickle
    import re
    import zipfile

    import torch

    if not zipfile.is_zipfile(path):  # every torch.save since 1.6 writes a zip archive
        raise ConfigError(f"cannot read checkpoint {path}: not a PyTorch checkpoint (truncated?)")
    try:
        return torch.load(path, map_location="cpu", weights_only=not trusted(path), mmap=mmap)
    except pickle.UnpicklingError as e:
        found = re.search(r"(?:unsupported|Unsupported global:) GLOBAL ([\w.]+)", str(e))
        what = found.group(1) if found else "an object that is not a tensor or plain data"
        raise ConfigError(
            f"refusing checkpoint {path}: it holds {what}, which loading would run as code; "
            f"lightning-gans checkpoints hold tensors and plain data only; {TRUST_HOW}"
        ) from None
    except Exception as e:  # a truncated, foreign or corrupt file
        why = (str(e).strip().splitlines() or [""])[0][:160]
        raise ConfigError(f"cannot read checkpoint {path}: {type(e).__name__} {why}") from e


def checkpoint_step(path: Path, saved: dict | None = None) -> int:
    """The generator step a checkpoint was written at (``saved``: its contents, if already
    read); a one-line error for a bad file."""
    import torch

    saved = read_checkpoint(path, mmap=True) if saved is None else saved
    step = saved.get("global_step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ConfigError(f"cannot read checkpoint {path}: it has no generator step (global_step)")
    weights = saved.get("state_dict")
    if not isinstance(weights, dict) or not all(
        isinstance(v, torch.Tensor) for v in weights.values()
    ):
        raise ConfigError(f"cannot read checkpoint {path}: it holds no weights (state_dict)")
    hparams = saved.get("hyper_parameters")
    if not isinstance(hparams, dict) or not isinstance(hparams.get("_class_path"), str):
        raise ConfigError(
            f"cannot read checkpoint {path}: it does not say which model it holds "
            "(hyper_parameters)"
        )
    if not isinstance(saved.get("pytorch-lightning_version"), str):
        raise ConfigError(
            f"cannot read checkpoint {path}: Lightning did not write it "
            "(no pytorch-lightning_version)"
        )
    if not isinstance(saved.get("datamodule_hyper_parameters", {}), dict):
        raise ConfigError(
            f"cannot read checkpoint {path}: its data settings (datamodule_hyper_parameters) "
            "are not a mapping"
        )
    return step


def resolve_checkpoint(path: str | None, check: bool = True) -> Path | None:
    """A checkpoint file, or a run directory meaning its ``checkpoints/last.ckpt``; read once
    here (``check``), so a truncated or foreign file is one line naming it, never a traceback
    later."""
    if not path or path in ("last", "best", "hpc", "registry"):  # Lightning's own keywords
        return None
    p = Path(path)
    if p.is_dir():
        run = p
        folder = p / "checkpoints" if (p / "checkpoints").is_dir() else p
        p = newest_checkpoint(folder, say=check) or p
        if p == run:  # none yet: a run that trains has not written one, and is named
            lock_run_dir(run, writer=False)
    if not p.is_file():
        raise ConfigError(
            f"checkpoint {path!r} not found: pass a .ckpt file or a run directory "
            "holding checkpoints/last.ckpt"
        )
    if check:
        checkpoint_step(p)
    return p


def newest_checkpoint(folder: Path, say: bool = True) -> Path | None:
    """``last.ckpt`` in ``folder``; where it is missing (deleted, or lost with a file system
    that was restored), the readable checkpoint of the highest generator step, said in one
    line (``say``); None when there is none."""
    last = folder / "last.ckpt"
    if last.is_file():
        return last
    steps = []
    for p in folder.glob("*.ckpt"):
        try:
            steps.append((checkpoint_step(p), p.stat().st_mtime, p))
        except (ConfigError, OSError):  # a foreign or damaged file is no candidate
            continue
    if not steps:
        return None
    step, _, newest = max(steps)
    if say and launcher_rank() == 0:
        sys.stderr.write(f"no {last}: using {newest.name} (generator step {step}), the "
                         "newest checkpoint there\n")  # fmt: skip
    return newest


def git_commit() -> str:
    """The commit the code ran at, recorded with every run ("unknown" outside a checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
