"""Worked example A (docs/theory.md §4; WGAN paper, Example 1) as a picture: KL, JS, TV and W
between P0 = U({0} x [0, 1]) and P_theta = U({theta} x [0, 1]) as theta varies, computed with the
functions of ``lightning_gans.metrics.theory`` on a discretisation of the two lines.

    python -m lightning_gans.tools.theory_plot [OUT.png]       (or: make theory-plot)
"""

from __future__ import annotations

import math
import sys

import torch

from lightning_gans.metrics.theory import js, kl, tv, wasserstein1

N_POINTS = 50  # points per line


def parallel_lines(theta: float, n: int = N_POINTS):
    """P0 and P_theta as probability vectors on the union of their supports, and as points."""
    y = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    line0 = torch.stack([torch.zeros(n, dtype=torch.float64), y], 1)
    line1 = torch.stack([torch.full((n,), theta, dtype=torch.float64), y], 1)
    uniform = torch.full((n,), 1 / n, dtype=torch.float64)
    zeros = torch.zeros(n, dtype=torch.float64)
    if theta == 0:  # one shared support
        return uniform, uniform, line0, line1
    return torch.cat([uniform, zeros]), torch.cat([zeros, uniform]), line0, line1


def example_a(thetas: list[float]) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {"KL": [], "JS": [], "TV": [], "W": []}
    for theta in thetas:
        p, q, x0, x1 = parallel_lines(theta)
        rows["KL"].append(kl(p, q).item())
        rows["JS"].append(js(p, q).item())
        rows["TV"].append(tv(p, q).item())
        rows["W"].append(wasserstein1(x0, x1))
    return rows


def main(out: str = "docs/theory_example_a.png") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thetas = [round(-1 + i * 0.05, 2) for i in range(41)]
    rows = example_a(thetas)
    cap = 1.5  # where +inf is drawn
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    kl_drawn = [cap if math.isinf(v) else v for v in rows["KL"]]
    ax.plot(thetas, kl_drawn, "o", ms=3, label="KL(P0 || P_theta)  (+inf drawn at the top)")
    ax.plot(thetas, rows["JS"], "s", ms=3, label="JS  (log 2 = 0.693 off 0)")
    ax.plot(thetas, rows["TV"], "^", ms=3, label="TV  (1 off 0)")
    ax.plot(thetas, rows["W"], "-", lw=2, label="W = |theta|")
    ax.axhline(math.log(2), color="grey", lw=0.5, ls=":")
    ax.set_xlabel("theta")
    ax.set_ylim(-0.05, cap + 0.1)
    ax.set_title("Example A: parallel lines. Only W changes smoothly with theta")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
