"""What the template costs: each model trained through Lightning (the real CLI) and by a plain
PyTorch loop (plain_loops.py) with the same networks, batch size, n_critic and optimisers,
interleaved round by round in alternating order. Reports the median ms per generator iteration
(steady state, after ``--warmup`` iterations), the median and the range of the per-round ratios
(each round pairs the two implementations on the same seed), and the quality both reach at the
same iteration count: exact W1 on toy8, domain FID on mnist5k.

    python benchmarks/bench.py [--iters 30] [--rounds 6] [--threads 2]      (make bench)

Writes benchmarks/results.md. Lightning runs with its progress bar, validation and pictures off
and the CSV logger on; the timed window is only training steps.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from lightning_runs import lightning_cli, lightning_run  # noqa: E402
from plain_loops import PLAIN  # noqa: E402

from lightning_gans.data import first_n  # noqa: E402
from lightning_gans.metrics.theory import wasserstein1  # noqa: E402

CASES = [  # (dataset, model): toy8 uses configs/toy/, mnist5k the default configs/
    ("toy8", "wgan_gp"),
    ("mnist5k", "wgan_gp"),
    ("toy8", "wgan"),
    ("toy8", "gan"),
    ("mnist5k", "wgan"),
    ("mnist5k", "gan"),
    ("mnist5k", "vae"),
]


def ms_per_iter(times: list[float], warmup: int) -> float:
    return 1000 * (times[-1] - times[warmup - 1]) / (len(times) - warmup)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30, help="generator iterations per run")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cases", nargs="+", default=None, help="dataset:model, e.g. toy8:wgan_gp")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    ap.add_argument("--null-rounds", type=int, default=5, help="null workload (0: skip)")
    args = ap.parse_args()
    sys.argv = sys.argv[:1]  # LightningCLI is given its arguments explicitly
    torch.set_num_threads(args.threads)
    cases = [tuple(c.split(":")) for c in args.cases] if args.cases else CASES
    scorer = None
    if any(d == "mnist5k" for d, _ in cases):
        scorer = mnist5k_scorer()
    rows, start = [], time.time()
    with tempfile.TemporaryDirectory() as root:
        for dataset, model in cases:
            lt, pt, lq, pq = [], [], [], []
            for r in range(args.rounds):
                cli, hp = lightning_cli(dataset, model, args.iters, r, root)
                dm = cli.datamodule
                # interleaved, in alternating order: a drift in machine speed or a warm cache
                # favours neither implementation
                for impl in ("lightning", "plain") if r % 2 == 0 else ("plain", "lightning"):
                    if impl == "lightning":
                        sample, times = lightning_run(cli)
                        lt.append(ms_per_iter(times, args.warmup))
                        lq.append(score(sample, hp, dm, dataset, r, scorer))
                    else:
                        sample, times = PLAIN[model](hp, dm.train_set.x, args.iters, r, model)
                        pt.append(ms_per_iter(times, args.warmup))
                        pq.append(score(sample, hp, dm, dataset, r, scorer))
            ratios = [a / b for a, b in zip(lt, pt, strict=True)]  # paired by round
            row = (dataset, model, statistics.median(lt), statistics.median(pt), ratios, lq, pq)
            print(row, flush=True)
            rows.append(row)
        null = []
        from null_workload import null_workload, summary

        if args.null_rounds:  # Lightning's fixed cost per iteration (null_workload.py)
            torch.set_num_threads(1)
            null = summary(null_workload(1000, 100, args.null_rounds, f"{root}/null"))
    write(args, rows, time.time() - start, null)


def score(sample, hp: dict, dm, dataset: str, seed: int, scorer) -> float:
    n = 2000 if dataset == "toy8" else 1000
    real = first_n(dm.test_set, n)
    z = torch.randn(n, hp["latent_dim"], generator=torch.Generator().manual_seed(1000 + seed))
    fake = sample(z).float().cpu()
    return wasserstein1(fake, real) if dataset == "toy8" else scorer(real, fake)["domain_fid"]


def mnist5k_scorer():
    from lightning_gans.metrics.image_quality import ImageQuality
    from lightning_gans.tools.evaluate import ensure_classifier

    ensure_classifier("mnist5k", 32, "data")
    return ImageQuality("domain", "mnist5k", 32, 1)


def write(args, rows, seconds: float, null: list[str]) -> None:
    import lightning
    import torch as t

    lines = [
        f"# Lightning vs a plain PyTorch loop ({time.strftime('%Y-%m-%d')})",
        "",
        f"Command: `python benchmarks/bench.py --iters {args.iters} --rounds {args.rounds} "
        f"--threads {args.threads}` (`make bench`); took {seconds / 60:.1f} min.",
        "",
        f"Machine: {platform.machine()} {platform.processor() or ''}, {args.threads} CPU "
        f"threads, no GPU; Python {platform.python_version()}, torch {t.__version__}, "
        f"Lightning {lightning.__version__}.",
        "",
        f"Each round trains {args.iters} generator iterations from scratch with each "
        "implementation (same seed, networks, batch, n_critic, optimiser); ms/iteration is "
        f"the steady state after {args.warmup} iterations, median over {args.rounds} rounds. "
        "The ratio is Lightning / plain ms per iteration of each round (same seed, run back to "
        "back); the table gives their median and their range over the rounds. "
        "Quality after the same iterations: exact W1 (POT, 2,000 samples vs 2,000 held-out "
        "points) on toy8, domain FID (mnist5k classifier features, 1,000 samples vs the 1,000 "
        "held-out digits) on mnist5k; lower is better; one value per round.",
        "",
        "| data | model | Lightning ms/it | plain ms/it | ratio (median) | ratio range | "
        "Lightning quality | plain quality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for dataset, model, lt, pt, ratios, lq, pq in rows:
        metric = "W1" if dataset == "toy8" else "domain FID"
        lines.append(
            f"| {dataset} | {model} | {lt:.1f} | {pt:.1f} | **{statistics.median(ratios):.3f}** "
            f"| {min(ratios):.3f}-{max(ratios):.3f} | "
            f"{metric} {', '.join(f'{q:.3g}' for q in lq)} | "
            f"{metric} {', '.join(f'{q:.3g}' for q in pq)} |"
        )
    if null:
        lines += ["", "Null workload (`benchmarks/null_workload.py`: toy WGAN-GP, 8-unit MLPs, "
                  "batch 8, n_critic 5, 1 thread, 1,000 iterations after 100; one plain-loop "
                  "iteration after each Lightning iteration, each timed apart; Lightning minus "
                  "the plain loop, per round):", "", *[f"- {line}" for line in null]]  # fmt: skip
    lines += [
        "",
        'Where the time goes: benchmarks/README.md, "What the template costs". GPU figures: '
        "benchmarks/gpu.md (`make bench DEVICE=cuda`).",
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
