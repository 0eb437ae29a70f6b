"""Writes (and submits) an sbatch script for a training run: one task per device launched by
srun (GPUs, or CPU tasks with GPUS=0), Lightning's SLURM environment for ranks, a SIGUSR1
warning SIGNAL_LEAD (90) s before the time limit, and requeue by the run itself
(docs/design.md#preemption-and-atomic-checkpoints). Every value is checked before anything is
written or submitted.

    python -m lightning_gans.launch.slurm --config configs/wgan_gp.yaml --nodes 2 --gpus 4
    python -m lightning_gans.launch.slurm ... --dry-run      # prints the script only
    make slurm MODEL=wgan_gp NODES=2 GPUS=4 [TIME=24:00:00] [PARTITION=gpu] [DRY_RUN=1]
    make slurm MODEL=wgan_gp GPUS=0 TASKS=2 CPUS=4        # a CPU job: 2 processes over gloo
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lightning_gans.errors import OneLineParser, fail

ROOT = Path(__file__).resolve().parents[2]  # the repository

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={job}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={tasks}
{gres}#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{options}#SBATCH --signal=USR1@{lead}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={logs}/%x-%j.out
# One task per device (--ntasks-per-node = devices), started by srun with no wrapper that could
# swallow a signal; if one task fails, srun ends the others. Lightning reads the ranks from SLURM.
# SIGUSR1, {lead} s before the time limit: the run finishes its step, writes checkpoints/last.ckpt
# in its directory ({runs}/<model>-<dataset>-$SLURM_JOB_ID) and requeues the job, which resumes
# there in the same W&B run. SIGTERM (scancel, preemption): the same checkpoint, no requeue.
cd {repo}
{env}srun --kill-on-bad-exit=1 {python} -m lightning_gans fit --config {config} \\
    --trainer.accelerator {accelerator} --trainer.devices {tasks} --trainer.num_nodes {nodes} \\
    --trainer.strategy ddp --data.num_workers {workers}{args}
"""


SWEEP_TEMPLATE = """#!/bin/bash
#SBATCH --job-name=lgans-sweep
#SBATCH --array=1-{agents}
#SBATCH --ntasks=1
{gres}#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{options}#SBATCH --signal=USR1@{lead}
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={logs}/%x-%A_%a.out
# One W&B sweep trial per array task, on a compute node rather than an agent on the login node:
# each task asks the sweep for one set of values, trains it through the sweep's command, ends.
# SIGUSR1 ({lead} s before the limit, or a preemption's): the trial checkpoints, tells W&B it
# was preempted and requeues the task, whose new agent is handed the same trial to resume in
# the same run directory and W&B run. The agent ignores SIGUSR1 (bash's trap, inherited by
# exec), which would otherwise end it, and with it the trial before its checkpoint.
cd {repo}
{env}srun bash -c 'trap "" USR1; exec "$0" "$@"' {wandb} agent --count 1 {sweep}
"""


def sbatch_lines(options: dict[str, str | None], sbatch_args: str) -> str:
    """``#SBATCH --name=value`` for each option given, then ``sbatch_args`` verbatim."""
    lines = [f"#SBATCH --{k}={v}\n" for k, v in options.items() if v]
    return "".join(lines + [f"#SBATCH {a}\n" for a in shlex.split(sbatch_args)])


def render_sweep(
    sweep: str, agents: int, time_limit: str, cpus: int, options: str, env: str,
    gpus: int = 1, lead: int = 90,
) -> str:  # fmt: skip
    """An array of ``agents`` tasks, each running one trial of the W&B sweep ``sweep`` on
    ``gpus`` GPUs (0: CPUs only)."""
    wandb = Path(sys.executable).parent / "wandb"
    return SWEEP_TEMPLATE.format(
        agents=agents, cpus=cpus, time=time_limit, options=options, env=env, lead=lead,
        gres=f"#SBATCH --gres=gpu:{gpus}\n" if gpus else "",
        logs=ROOT / "runs" / "slurm", repo=ROOT, wandb=wandb, sweep=shlex.quote(sweep),
    )  # fmt: skip


def render(
    config: str,
    nodes: int,
    gpus: int,
    time_limit: str,
    partition: str | None,
    cpus: int,
    extra: list[str],
    sbatch: dict[str, str] | None = None,
    sbatch_args: str = "",
    wandb: str | None = None,
    tasks: int | None = None,
    lead: int = 90,
) -> str:
    """The script. ``gpus``: per node, 0 for a CPU job of ``tasks`` processes per node (gloo);
    ``sbatch``: further ``--name=value`` options (account, qos, mem, ...), ``sbatch_args``: any
    others, verbatim; ``wandb``: the W&B mode; ``lead``: seconds of warning before the limit."""
    tasks = tasks or gpus or 1
    return TEMPLATE.format(
        job="lgans-" + Path(config).stem,
        nodes=nodes,
        tasks=tasks,
        gres=f"#SBATCH --gres=gpu:{gpus}\n" if gpus else "",
        cpus=cpus,
        time=time_limit,
        lead=lead,
        options=sbatch_lines({"partition": partition, **(sbatch or {})}, sbatch_args),
        env=f"export WANDB_MODE={wandb}\n" if wandb else "",
        logs=runs_root(extra) / "slurm",
        runs=runs_root(extra),
        repo=ROOT,
        python=sys.executable,
        config=config,
        accelerator="gpu" if gpus else "cpu",
        workers=max(1, cpus - 1),
        args="".join(f" {shlex.quote(a)}" for a in extra),
    )


def runs_root(extra: list[str]) -> Path:
    """Where the runs go: the last ``--run.root`` among the CLI flags, else ``runs/``; the job's
    log files go to its ``slurm/`` folder."""
    root = "runs"
    for flag, value in flag_values(extra):
        root = value if flag == "--run.root" else root
    return (ROOT / root).resolve()


def flag_values(extra: list[str]) -> list[tuple[str, str]]:
    """(flag, value) for each ``--flag value`` or ``--flag=value`` among the CLI flags."""
    found = []
    for i, arg in enumerate(extra):
        flag, eq, value = arg.partition("=")
        if eq:
            found.append((flag, value))
        elif arg.startswith("--") and i + 1 < len(extra):
            found.append((arg, extra[i + 1]))
    return found


# sbatch --time: minutes, minutes:seconds, hours:minutes:seconds, days-hours,
# days-hours:minutes, days-hours:minutes:seconds, or no limit
TIME_FORMS = re.compile(r"(\d+)(:\d\d?){0,2}|\d+-\d+(:\d\d?){0,2}|UNLIMITED|INFINITE")


def seconds(time_limit: str) -> float:
    """sbatch's --time in seconds (inf for no limit); a bad form is one line."""
    if not TIME_FORMS.fullmatch(time_limit):
        fail(
            f"TIME={time_limit!r} is not a SLURM time limit: use minutes, HH:MM:SS, "
            "D-HH, D-HH:MM or D-HH:MM:SS (e.g. TIME=24:00:00)"
        )
    if time_limit in ("UNLIMITED", "INFINITE"):
        return math.inf
    days, _, rest = time_limit.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    if days:  # D-HH[:MM[:SS]]
        parts += [0] * (3 - len(parts))
        h, m, sec = parts
        return ((int(days) * 24 + h) * 60 + m) * 60 + sec
    if len(parts) == 3:
        return (parts[0] * 60 + parts[1]) * 60 + parts[2]
    return parts[0] * 60 + (parts[1] if len(parts) == 2 else 0)  # MM[:SS]


def check(a: argparse.Namespace, extra: list[str]) -> None:
    """Every value before anything is written or submitted: one line naming it, exit 2."""
    for name, low in (("nodes", 1), ("gpus", 0), ("cpus", 1), ("agents", 1), ("signal_lead", 1)):
        value = getattr(a, name)
        if value < low:
            fail(f"--{name.replace('_', '-')} ({name.upper()}) must be >= {low}, got {value}")
    if a.tasks is not None and a.tasks < 1:
        fail(f"--tasks (TASKS) must be >= 1, got {a.tasks}")
    if a.gpus and a.tasks not in (None, a.gpus):
        fail(f"TASKS={a.tasks} with GPUS={a.gpus}: a GPU job runs one task per GPU (TASKS=GPUS)")
    if seconds(a.time) <= a.signal_lead:
        fail(f"TIME={a.time} is not longer than SIGNAL_LEAD={a.signal_lead} s: the warning "
             "would come at the start")  # fmt: skip
    tasks = a.tasks or a.gpus or 1
    wanted = {"--trainer.devices": str(tasks), "--trainer.num_nodes": str(a.nodes),
              "--trainer.accelerator": "gpu" if a.gpus else "cpu"}  # fmt: skip
    for flag, value in flag_values(extra):
        if (
            flag in wanted
            and value != wanted[flag]
            and not (flag == "--trainer.accelerator" and value in ("cuda", "gpu") and a.gpus)
        ):
            fail(
                f"ARGS {flag} {value} contradicts the job's {wanted[flag]} "
                f"(NODES={a.nodes} GPUS={a.gpus} TASKS={tasks}): set those instead"
            )


def submit(script_path: Path) -> None:
    """sbatch the script; its refusal is one line, exit 2."""
    if shutil.which("sbatch") is None:
        fail(
            "sbatch not found: run this on a SLURM login node, or add DRY_RUN=1 to print the script"
        )
    done = subprocess.run(["sbatch", str(script_path)], capture_output=True, text=True)
    if done.returncode:
        why = " ".join((done.stderr or done.stdout).split()) or f"exit {done.returncode}"
        fail(f"sbatch refused {script_path}: {why}")
    print(done.stdout.strip())


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description=__doc__.split("\n\n")[0],
                       hint=" (see: python -m lightning_gans.launch.slurm --help)")  # fmt: skip
    ap.add_argument("--config", default=None, help="the run's config (not with --sweep)")
    ap.add_argument("--sweep", default=None, help="a W&B sweep id: an array of agents instead")
    ap.add_argument("--agents", type=int, default=8, help="with --sweep: array tasks (trials)")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per node; 0: a CPU job")
    ap.add_argument("--tasks", type=int, default=None, help="tasks per node (default: GPUS, or 1)")
    ap.add_argument("--time", default="24:00:00")
    ap.add_argument("--signal-lead", type=int, default=90, help="seconds of SIGUSR1 warning")
    ap.add_argument("--partition", default=None)
    ap.add_argument("--cpus", type=int, default=8, help="CPUs per task")
    for name in ("account", "qos", "mem", "constraint"):
        ap.add_argument(f"--{name}", default=None, help=f"sbatch --{name}")
    ap.add_argument("--sbatch-args", default="", help='further sbatch options, e.g. "--exclusive"')
    ap.add_argument("--wandb", default=None, choices=["online", "offline", "disabled"])
    ap.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="further CLI flags, after --")
    a = ap.parse_args(argv)
    extra = [x for x in a.args if x != "--"]
    check(a, extra)
    sbatch = {k: getattr(a, k) for k in ("account", "qos", "mem", "constraint")}
    if a.sweep:
        options = sbatch_lines({"partition": a.partition, **sbatch}, a.sbatch_args)
        env = f"export WANDB_MODE={a.wandb}\n" if a.wandb else ""
        script = render_sweep(a.sweep, a.agents, a.time, a.cpus, options, env, a.gpus,
                              a.signal_lead)  # fmt: skip
    elif a.config is None or not Path(a.config).is_file():
        fail(f"--config {a.config!r} not found: pass a config file (or --sweep ID)")
    else:
        script = render(
            a.config, a.nodes, a.gpus, a.time, a.partition, a.cpus, extra,
            sbatch=sbatch, sbatch_args=a.sbatch_args, wandb=a.wandb, tasks=a.tasks,
            lead=a.signal_lead,
        )  # fmt: skip
    if a.dry_run:
        print(script, end="")
        return
    stem = "sweep" if a.sweep else Path(a.config).stem
    logs = runs_root(extra) / "slurm"
    out = logs / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.sbatch"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(script)
    except OSError as e:
        fail(f"cannot write the job script to {out.parent}: {e.strerror}")
    print(script, end="")
    print(f"wrote {out}; submitting it")
    submit(out)


if __name__ == "__main__":
    main()
