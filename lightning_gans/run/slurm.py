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

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """#!/bin/bash
#SBATCH --job-name={job}
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={gpus}
#SBATCH --gres=gpu:{gpus}
#SBATCH --cpus-per-task={cpus}
#SBATCH --time={time}
{partition}#SBATCH --signal=SIGUSR1@90
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output={logs}/%x-%j.out
# One task per GPU (--ntasks-per-node = devices). srun starts python itself, with no wrapper
# that could swallow SIGUSR1; Lightning reads ranks from SLURM. On the signal the run finishes
# its step, writes runs/<model>-<dataset>-$SLURM_JOB_ID/checkpoints/last.ckpt and requeues the
# job, which then resumes from it in the same run directory and W&B run.
cd {repo}
srun {python} -m lightning_gans fit --config {config} \\
    --trainer.accelerator gpu --trainer.devices {gpus} --trainer.num_nodes {nodes} \\
    --trainer.strategy ddp --data.num_workers {workers}{args}
"""


def render(
    config: str,
    nodes: int,
    gpus: int,
    time_limit: str,
    partition: str | None,
    cpus: int,
    extra: list[str],
) -> str:
    job = "lgans-" + Path(config).stem
    return TEMPLATE.format(
        job=job,
        nodes=nodes,
        gpus=gpus,
        cpus=cpus,
        time=time_limit,
        partition=f"#SBATCH --partition={partition}\n" if partition else "",
        logs=ROOT / "runs" / "slurm",
        repo=ROOT,
        python=sys.executable,
        config=config,
        workers=max(1, cpus - 1),
        args="".join(f" {shlex.quote(a)}" for a in extra),
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--nodes", type=int, default=1)
    ap.add_argument("--gpus", type=int, default=1, help="GPUs per node (= tasks per node)")
    ap.add_argument("--time", default="24:00:00")
    ap.add_argument("--partition", default=None)
    ap.add_argument("--cpus", type=int, default=8, help="CPUs per task")
    ap.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="further CLI flags, after --")
    a = ap.parse_args(argv)
    extra = [x for x in a.args if x != "--"]
    for name, value in (("nodes", a.nodes), ("gpus", a.gpus), ("cpus", a.cpus)):
        if value < 1:
            sys.exit(f"error: {name} must be >= 1, got {value}")
    if not Path(a.config).is_file():
        sys.exit(f"error: config {a.config!r} not found")
    script = render(a.config, a.nodes, a.gpus, a.time, a.partition, a.cpus, extra)
    if a.dry_run:
        print(script, end="")
        return
    if shutil.which("sbatch") is None:
        sys.exit(
            "error: sbatch not found: run this on a SLURM login node, or add DRY_RUN=1 to "
            "print the script"
        )
    out = ROOT / "runs" / "slurm" / f"{Path(a.config).stem}-{time.strftime('%Y%m%d-%H%M%S')}.sbatch"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(script)
    print(f"wrote {out}")
    subprocess.run(["sbatch", str(out)], check=True)


if __name__ == "__main__":
    main()
