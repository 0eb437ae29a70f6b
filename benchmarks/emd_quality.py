"""Does the critic's EMD estimate track sample quality on real digits? (WGAN paper, Arjovsky et
al. 2017, Figures 3-4: the critic's estimate falls as samples improve; a GAN's discriminator
loss does not.) Each model trains at its config's paper settings on mnist5k, through the real
CLI; every ``--every`` generator steps the run logs the domain FID of 1,000 samples against the
1,000 held-out test digits (the shipped classifier's features) beside the critic's estimate on
held-out and on training images. Reported per model: Spearman and Pearson correlations with
FID of the held-out estimate (``val/critic_emd``), of the training estimate (the mean of
``train/critic_emd`` since the previous evaluation) and, for the GAN, of its discriminator loss;
and the critic's overfitting gap (``val/critic_emd_gap``, docs/theory.md §5).

    python benchmarks/emd_quality.py [--steps 2000] [--every 100]   (make bench-emd DATA=mnist5k)

Writes benchmarks/emd_tracking_mnist5k.md and .png (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("wgan_gp", "wgan", "gan")  # the GAN is the contrast: its loss is no distance
TRAINING = {"wgan_gp": "train/critic_emd", "wgan": "train/critic_emd", "gan": "train/d_loss"}


def train(
    model: str, steps: int, every: int, root: str, extra: list[str], keep: Path
) -> list[dict]:
    """One run of configs/<model>.yaml; the rows of its metrics.csv (a copy kept in ``keep``)."""
    args = ["--config", str(ROOT / "configs" / f"{model}.yaml"), "--trainer.max_steps",
            str(steps), "--trainer.val_check_interval", str(every), "--fid.every_n_steps",
            str(every), "--run.time_budget", "null", "--run.logger", "csv", "--run.root", root,
            "--run.name", model, "--samples.every_n_steps", "0",
            "--trainer.enable_progress_bar", "false", *extra]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "lightning_gans", "fit", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True)  # fmt: skip
    if proc.returncode:
        sys.exit(f"{model}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    table = Path(root) / model / "metrics.csv"
    keep.mkdir(parents=True, exist_ok=True)
    (keep / f"{model}.csv").write_bytes(table.read_bytes())  # for a re-analysis
    with open(table, newline="") as f:
        return list(csv.DictReader(f))


def series(rows: list[dict], training_key: str) -> dict[str, np.ndarray]:
    """Per evaluation step: FID, the held-out and training estimates (or the GAN's loss)."""
    merged: dict[float, dict] = {}  # the FID row and the validation row of a step are two rows
    for r in rows:
        merged.setdefault(float(r["step"]), {}).update({k: v for k, v in r.items() if v})
    evals = [r for _, r in sorted(merged.items()) if r.get("val/domain_fid")]
    steps = np.array([float(r["step"]) for r in evals])
    out = {"step": steps, "fid": np.array([float(r["val/domain_fid"]) for r in evals])}
    for key in ("val/critic_emd", "val/critic_emd_train", "val/critic_emd_gap"):
        if all(r.get(key) for r in evals):
            out[key] = np.array([float(r[key]) for r in evals])
    logged = [(float(r["step"]), float(r[training_key])) for r in rows if r.get(training_key)]
    windows, last = [], 0.0
    for step in steps:  # the training figure: its mean over the steps since the last evaluation
        inside = [v for s, v in logged if last < s <= step]
        windows.append(np.mean(inside) if inside else np.nan)
        last = step
    out[training_key] = np.array(windows)
    return out


def correlations(x: np.ndarray, fid: np.ndarray) -> tuple[float, float]:
    keep = np.isfinite(x) & np.isfinite(fid)
    if keep.sum() < 3:
        return float("nan"), float("nan")
    return stats.spearmanr(x[keep], fid[keep])[0], stats.pearsonr(x[keep], fid[keep])[0]


def report(results: dict, args, seconds: float) -> str:
    lines = [
        "# The critic's EMD estimate against sample quality on mnist5k",
        "",
        f"`python benchmarks/emd_quality.py --steps {args.steps} --every {args.every}` (`make "
        f"bench-emd DATA=mnist5k`), {time.strftime('%Y-%m-%d')}, {platform.node()}: "
        f"{os.cpu_count()} CPU cores, no GPU, {seconds / 60:.0f} min in all. Each model at its "
        "config's paper settings (configs/<model>.yaml); every "
        f"{args.every} generator steps the domain FID of 1,000 samples against the 1,000 "
        "held-out test digits (the shipped classifier's features). A figure that tracks quality "
        "correlates positively with FID (both fall as samples improve).",
        "",
        "| model | figure | Spearman with FID | Pearson with FID | first -> last value |",
        "|---|---|---|---|---|",
    ]
    for model, s in results.items():
        loss = "EMD estimate" if model != "gan" else "discriminator loss"
        names = [
            ("val/critic_emd", "held-out EMD estimate"),
            ("val/critic_emd_train", "EMD estimate on training images"),
            (TRAINING[model], f"training {loss} (window mean)"),
        ]
        for key, label in names:
            if key not in s:
                continue
            rho, r = correlations(s[key], s["fid"])
            lines.append(f"| {model} | {label} (`{key}`) | {rho:.3f} | {r:.3f} | "
                         f"{s[key][0]:.4g} -> {s[key][-1]:.4g} |")  # fmt: skip
        lines.append(f"| {model} | FID (`val/domain_fid`) | | | {s['fid'][0]:.1f} -> "
                     f"{s['fid'][-1]:.1f} (best {s['fid'].min():.1f}) |")  # fmt: skip
    lines += [
        "",
        "## The critic's overfitting (training minus held-out estimate)",
        "",
        "| model | gap at the first evaluation | at the last | largest |",
        "|---|---|---|---|",
    ]
    for model, s in results.items():
        if "val/critic_emd_gap" in s:
            gap = s["val/critic_emd_gap"]
            lines.append(f"| {model} | {gap[0]:.4g} | {gap[-1]:.4g} | {gap.max():.4g} |")
    return "\n".join(lines) + "\n"


def draw(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6))
    for ax, (model, s) in zip(np.atleast_1d(axes), results.items(), strict=True):
        key = "val/critic_emd" if "val/critic_emd" in s else TRAINING[model]
        ax.plot(s["step"], s[key], color="tab:blue", label=key)
        if "val/critic_emd_train" in s:
            ax.plot(s["step"], s["val/critic_emd_train"], color="tab:blue", ls=":",
                    label="val/critic_emd_train")  # fmt: skip
        ax.set_xlabel("generator steps")
        ax.set_ylabel(key if model != "gan" else "discriminator loss", color="tab:blue")
        twin = ax.twinx()
        twin.plot(s["step"], s["fid"], color="tab:red", label="domain FID")
        twin.set_ylabel("domain FID (held-out digits)", color="tab:red")
        ax.set_title(model)
        ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "emd_tracking_mnist5k")
    args, extra = ap.parse_known_args()  # the others go to every run's CLI (tests: tiny nets)
    start, results = time.time(), {}
    with tempfile.TemporaryDirectory() as root:
        for model in args.models:
            t = time.time()
            keep = args.out.with_name(args.out.name + "_runs")
            results[model] = series(train(model, args.steps, args.every, root, extra, keep),
                                    TRAINING[model])  # fmt: skip
            print(f"{model}: {len(results[model]['step'])} evaluations, {time.time() - t:.0f} s")
    text = report(results, args, time.time() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    draw(results, args.out.with_suffix(".png"))
    print(text)


if __name__ == "__main__":
    main()
