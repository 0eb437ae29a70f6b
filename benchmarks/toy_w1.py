"""Quality benchmark on 8 Gaussians: exact W1 between 2,000 samples and 2,000 held-out points
after 2,000 generator iterations, for each adversarial model's toy config, median of 3 seeds.

    python benchmarks/toy_w1.py [--steps 2000] [--seeds 0 1 2] [--threads 1]   (make bench-toy)

Writes benchmarks/toy_w1.md. The floor of the measure (W1 between two independent 2,000-point
samples of the data) is reported beside the models. Not a test: it takes ~40 minutes on 1 core.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_gans.data.datasets import toy_points  # noqa: E402
from lightning_gans.launch.cli import build_cli  # noqa: E402
from lightning_gans.metrics.theory import wasserstein1  # noqa: E402

N = 2000


def run(model: str, seed: int, steps: int, root: str) -> tuple[float, float]:
    """Trains configs/toy/<model>.yaml; returns (exact W1 to held-out data, seconds/iteration)."""
    cli = build_cli(
        [
            "--config",
            str(ROOT / "configs" / "toy" / f"{model}.yaml"),
            "--seed_everything",
            str(seed),
            "--model.seed",
            str(seed),
            "--data.seed",
            str(seed),
            "--trainer.max_steps",
            str(steps),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
            "--trainer.limit_val_batches",
            "0",
            "--run.logger",
            "none",
            "--run.root",
            root,
            "--run.name",
            f"{model}-{seed}",
            "--samples.every_n_steps",
            "0",
            "--checkpoint.every_n_train_steps",
            str(steps),
        ],
        run=False,
    )
    start = time.perf_counter()
    cli.trainer.fit(cli.model, cli.datamodule)
    per_iter = (time.perf_counter() - start) / steps
    held_out = cli.datamodule.test_set.x[:N]  # never seen in training
    z = torch.randn(N, cli.model.latent_dim, generator=torch.Generator().manual_seed(seed))
    return wasserstein1(cli.model.sample(z=z), held_out), per_iter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="+", default=["wgan_gp", "wgan", "gan"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "toy_w1.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    floors = [
        wasserstein1(toy_points("toy8", N, 100 + s), toy_points("toy8", N, 200 + s))
        for s in args.seeds
    ]
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for model in args.models:
            results = [run(model, s, args.steps, root) for s in args.seeds]
            w1s, times = [r[0] for r in results], [r[1] for r in results]
            rows.append((model, w1s, statistics.median(times)))
            print(model, w1s, times, flush=True)
    lines = [
        f"# Exact W1 on 8 Gaussians after {args.steps} generator iterations",
        "",
        f"Command: `python benchmarks/toy_w1.py --steps {args.steps} --seeds "
        f"{' '.join(map(str, args.seeds))} --threads {args.threads}` (`make bench-toy`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {args.threads} CPU thread(s); "
        f"torch {torch.__version__}; {time.strftime('%Y-%m-%d')}.",
        "",
        f"W1 = exact optimal transport (POT `emd2`, Euclidean cost) between {N} samples and {N} "
        "held-out points (the test split, never trained on).",
        "",
        "| model (config) | W1 per seed | median W1 | ms / generator iteration |",
        "|---|---|---|---|",
    ]
    for model, w1s, t in rows:
        lines.append(
            f"| {model} (`configs/toy/{model}.yaml`) | "
            f"{', '.join(f'{w:.4f}' for w in w1s)} | **{statistics.median(w1s):.4f}** | "
            f"{1000 * t:.0f} |"
        )
    lines.append(
        f"| floor: two independent {N}-point data samples | "
        f"{', '.join(f'{w:.4f}' for w in floors)} | {statistics.median(floors):.4f} | |"
    )
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
