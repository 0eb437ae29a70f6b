"""Writes (and submits) an sbatch script for a training run: one task per GPU launched by srun,
Lightning's SLURM environment for ranks, a SIGUSR1 warning 90 s before the time limit, and
requeue by the run itself (docs/design.md#preemption-and-atomic-checkpoints).

    python -m lightning_gans.run.slurm --config configs/wgan_gp.yaml --nodes 2 --gpus 4 [--dry-run]
    make slurm MODEL=wgan_gp NODES=2 GPUS=4 [TIME=24:00:00] [PARTITION=gpu] [DRY_RUN=1]
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={job}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={gpus}
#SBATCH --gres=gpu:{gpus}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{options}#SBATCH --signal=SIGUSR1@90
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={logs}/%x-%j.out
# One task per GPU (--ntasks-per-node = devices). srun starts python itself, with no wrapper
# that could swallow SIGUSR1; Lightning reads ranks from SLURM. On the signal the run finishes
# its step, writes runs/<model>-<dataset>-$SLURM_JOB_ID/checkpoints/last.ckpt and requeues the
# job, which then resumes from it in the same run directory and W&B run.
cd {repo}
{env}srun {python} -m lightning_gans fit --config {config} \\
    --trainer.accelerator gpu --trainer.devices {gpus} --trainer.num_nodes {nodes} \\
    --trainer.strategy ddp --data.num_workers {workers}{args}
"""


SWEEP_TEMPLATE = """#!/bin/bash
#SBATCH --job-name=lgans-sweep
#SBATCH --array=1-{agents}
#SBATCH --ntasks=1
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{options}#SBATCH --output={logs}/%x-%A_%a.out
# One W&B sweep trial per array task, on a compute node rather than an agent on the login node:
# each task asks the sweep for one set of values, trains it through the sweep's command, ends.
cd {repo}
{env}srun {wandb} agent --count 1 {sweep}
"""


def sbatch_lines(options: dict[str, str | None], sbatch_args: str) -> str:
    """``#SBATCH --name=value`` for each option given, then ``sbatch_args`` verbatim."""
    lines = [f"#SBATCH --{k}={v}\n" for k, v in options.items() if v]
    return "".join(lines + [f"#SBATCH {a}\n" for a in shlex.split(sbatch_args)])


def render_sweep(
    sweep: str, agents: int, time_limit: str, cpus: int, options: str, env: str
) -> str:
    """An array of ``agents`` tasks, each running one trial of the W&B sweep ``sweep``."""
    wandb = Path(sys.executable).parent / "wandb"
    return SWEEP_TEMPLATE.format(
        agents=agents, cpus=cpus, time=time_limit, options=options, env=env,
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
) -> str:
    """The script; ``sbatch``: further ``--name=value`` options (account, qos, mem, ...),
    ``sbatch_args``: any others, verbatim; ``wandb``: the W&B mode of the run."""
    job = "lgans-" + Path(config).stem
    return TEMPLATE.format(
        job=job,
        nodes=nodes,
        gpus=gpus,
        cpus=cpus,
        time=time_limit,
        options=sbatch_lines({"partition": partition, **(sbatch or {})}, sbatch_args),
        env=f"export WANDB_MODE={wandb}\n" if wandb else "",
        logs=ROOT / "runs" / "slurm",
        repo=ROOT,
        python=sys.executable,
        config=config,
        workers=max(1, cpus - 1),
        args="".join(f" {shlex.quote(a)}" for a in extra),
    )


def fail(message: str) -> None:
    """A user's mistake: one line, exit status 2."""
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=None, help="the run's config (not with --sweep)")
    ap.add_argument("--sweep", default=None, help="a W&B sweep id: an array of agents instead")
    ap.add_argument("--agents", type=int, default=8, help="with --sweep: array tasks (trials)")
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per node (= tasks per node)")
    ap.add_argument("--time", default="24:00:00")
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
    for name in ("nodes", "gpus", "cpus", "agents"):
        if getattr(a, name) < 1:
            fail(f"--{name} must be >= 1, got {getattr(a, name)}")
    sbatch = {k: getattr(a, k) for k in ("account", "qos", "mem", "constraint")}
    if a.sweep:
        options = sbatch_lines({"partition": a.partition, **sbatch}, a.sbatch_args)
        env = f"export WANDB_MODE={a.wandb}\n" if a.wandb else ""
        script = render_sweep(a.sweep, a.agents, a.time, a.cpus, options, env)
    elif a.config is None or not Path(a.config).is_file():
        fail(f"--config {a.config!r} not found: pass a config file (or --sweep ID)")
    else:
        script = render(
            a.config, a.nodes, a.gpus, a.time, a.partition, a.cpus, extra,
            sbatch=sbatch, sbatch_args=a.sbatch_args, wandb=a.wandb,
        )  # fmt: skip
    if a.dry_run:
        print(script, end="")
        return
    if shutil.which("sbatch") is None:
        sys.exit(
            "error: sbatch not found: run this on a SLURM login node, or add DRY_RUN=1 to "
            "print the script"
        )
    stem = "sweep" if a.sweep else Path(a.config).stem
    out = ROOT / "runs" / "slurm" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.sbatch"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(script)
    print(script, end="")
    print(f"wrote {out}; submitting it")
    subprocess.run(["sbatch", str(out)], check=True)


if __name__ == "__main__":
    main()
