"""The judge of the first run: improved precision and recall (Kynkaanniemi et al. 2019, k = 3)
and domain FID of 1,000 samples against the 1,000 held-out real MNIST digits of mnist5k, in the
features of the mnist5k domain classifier, beside the real-vs-real ceiling (1,000 training
digits against the same held-out ones). Any run can be judged, whatever data it trained on.

    python benchmarks/first_run.py runs/<run> [runs/<other run> ...] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightning_gans.data import datasets as ds  # noqa: E402
from lightning_gans.metrics.image_quality import ImageQuality  # noqa: E402
from lightning_gans.tools.evaluate import ensure_classifier, load_run  # noqa: E402

N = 1000
KEYS = ("domain_precision", "domain_recall", "domain_fid")


def judge(runs: list[str], cache: str = "data") -> list[tuple[str, dict[str, float]]]:
    ensure_classifier("mnist5k", 32, cache)
    quality = ImageQuality("domain", "mnist5k", 32, 1, cache)
    (train, _), (test, _) = ds.mnist5k(32)
    rows = [("real vs real (ceiling)", quality(test[:N], train[:N]))]
    for run in runs:
        model, data, path, step = load_run(run)
        z = torch.randn(N, model.latent_dim, generator=torch.Generator().manual_seed(0))
        fake = model.sample(z=z).float()
        run_name = path.parent.parent.name
        name = f"{type(model).__name__} on {data.hparams.dataset}, {step} steps ({run_name})"
        rows.append((name, quality(test[:N], fake)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories or .ckpt files")
    ap.add_argument("--out", default=None, help="also write a markdown table here")
    args = ap.parse_args()
    rows = judge(args.runs)
    table = ["| samples | precision | recall | domain FID |", "|---|---|---|---|"]
    table += [f"| {n} | {m[KEYS[0]]:.3f} | {m[KEYS[1]]:.3f} | {m[KEYS[2]]:.2f} |" for n, m in rows]
    print("\n".join(table))
    if args.out:
        intro = __doc__.split("\n\n")[0]
        head = f"# First-run judge ({time.strftime('%Y-%m-%d')})\n\n{intro}\n\n"
        Path(args.out).write_text(head + "\n".join(table) + "\n")


if __name__ == "__main__":
    main()
