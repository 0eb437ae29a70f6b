"""How well the critic's EMD estimate tracks the truth: over one toy8 run per model, the Pearson
correlation between ``val/critic_emd`` (the critic's estimate on held-out data) and
``val/exact_w1`` (exact optimal transport, POT) across the run's evaluation points.

    python benchmarks/emd_tracking.py [--steps 600] [--every 30]      (make bench-emd)

Writes benchmarks/emd_tracking.md and benchmarks/emd_tracking.png.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_gans.cli import build_cli  # noqa: E402


def run(model: str, steps: int, every: int, root: str, extra: list[str]) -> dict[str, np.ndarray]:
    cli = build_cli(
        [
            "--config",
            str(ROOT / "configs" / "toy" / f"{model}.yaml"),
            "--trainer.max_steps",
            str(steps),
            "--trainer.val_check_interval",
            str(every),
            "--trainer.limit_val_batches",
            "8",
            "--trainer.num_sanity_val_steps",
            "0",
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--run.logger",
            "csv",
            "--run.root",
            root,
            "--run.name",
            model,
            "--run.sample_every",
            "0",
            "--run.ckpt_every",
            str(steps),
            "--run.w1_points",
            "2000",
            *extra,  # after --config: the model's class must be known first
        ],
        run=False,
    )
    cli.trainer.fit(cli.model, cli.datamodule)
    with open(Path(root) / model / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/exact_w1")]
    return {
        k: np.array([float(r[k]) for r in rows])
        for k in ("step", "val/critic_emd", "val/exact_w1", "val/critic_emd_over_exact_w1")
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--every", type=int, default=30)
    ap.add_argument("--gp-lambda", type=float, default=None, help="override the toy config's 0.1")
    args = ap.parse_args()
    extra = {"wgan_gp": [], "wgan": []}
    suffix = ""
    if args.gp_lambda is not None:
        extra["wgan_gp"] = ["--model.gp_lambda", str(args.gp_lambda)]
        suffix = f"_lambda{args.gp_lambda:g}"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {}
    with tempfile.TemporaryDirectory() as root:
        for model in ("wgan_gp", "wgan"):
            results[model] = run(model, args.steps, args.every, root, extra[model])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    lines = [
        f"# Does the critic's EMD estimate track the true W1? ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python benchmarks/emd_tracking.py --steps {args.steps} --every "
        f"{args.every}{' --gp-lambda ' + format(args.gp_lambda, 'g') if suffix else ''}` "
        f"(`make bench-emd`); toy8 configs, torch {torch.__version__}, CPU.",
        "",
        "Pearson r between `val/critic_emd` (critic on 2,048 held-out points vs fresh "
        "samples) and `val/exact_w1` (POT, 2,000 samples vs 2,000 held-out points) across "
        "the evaluation points of one run.",
        "",
        "| model | evaluation points | Pearson r | median critic_emd / exact W1 |",
        "|---|---|---|---|",
    ]
    for ax, (model, r) in zip(axes, results.items(), strict=True):
        corr = float(np.corrcoef(r["val/critic_emd"], r["val/exact_w1"])[0, 1])
        ratio = float(np.median(r["val/critic_emd_over_exact_w1"]))
        lines.append(f"| {model} | {len(r['step'])} | **{corr:.3f}** | {ratio:.3f} |")
        ax.plot(r["step"], r["val/exact_w1"], "k-", label="exact W1 (POT)")
        twin = ax.twinx() if model == "wgan" else ax
        twin.plot(r["step"], r["val/critic_emd"], "C1--", label="critic EMD estimate")
        ax.set_title(f"{model}: Pearson r = {corr:.3f}")
        ax.set_xlabel("generator step")
        ax.legend(loc="upper right") if model == "wgan_gp" else twin.legend(loc="center right")
    lines += [
        "",
        f"![EMD estimate against exact W1](emd_tracking{suffix}.png)",
        "",
        "The WGAN-clip estimate is on its own axis: its critic is K-Lipschitz for an unknown "
        "K, so only its shape, not its scale, can track W1 (THEORY.md item 11).",
    ]
    fig.tight_layout()
    fig.savefig(ROOT / "benchmarks" / f"emd_tracking{suffix}.png")
    (ROOT / "benchmarks" / f"emd_tracking{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
