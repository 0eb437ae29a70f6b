"""Pictures of samples: an image grid, or for 2-D data samples over data with the critic's value
as a contour (the WGAN-GP paper's toy figures). One home for both."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision.utils import make_grid

from lightning_gans.data.datasets import to_zero_to_one


def image_grid(x: torch.Tensor, nrow: int | None = None) -> Image.Image:
    """(N, C, H, W) in [-1, 1] -> one PIL picture."""
    nrow = nrow or max(1, int(len(x) ** 0.5))
    grid = make_grid(to_zero_to_one(x.detach().float().cpu()).clamp(0, 1), nrow=nrow, padding=2)
    return Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))


def scatter_2d(
    data: torch.Tensor,
    samples: torch.Tensor,
    critic: Callable[[torch.Tensor], torch.Tensor] | None = None,
    title: str = "",
) -> Image.Image:
    """Samples (orange) over data (blue), on the critic's value as filled contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, samples = data.detach().float().cpu(), samples.detach().float().cpu()
    both = torch.cat([data, samples])
    lo, hi = both.quantile(0.005, 0).tolist(), both.quantile(0.995, 0).tolist()
    pad = [0.25 * (h - lo_) + 0.1 for lo_, h in zip(lo, hi, strict=True)]
    xs = torch.linspace(lo[0] - pad[0], hi[0] + pad[0], 96)
    ys = torch.linspace(lo[1] - pad[1], hi[1] + pad[1], 96)
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
    if critic is not None:
        gx, gy = torch.meshgrid(xs, ys, indexing="xy")
        with torch.no_grad():
            f = critic(torch.stack([gx.flatten(), gy.flatten()], 1)).float().cpu().view(96, 96)
        # numpy arrays: matplotlib before 3.9 cannot read torch tensors here
        cs = ax.contourf(gx.numpy(), gy.numpy(), f.numpy(), levels=20, cmap="viridis", alpha=0.6)
        fig.colorbar(cs, ax=ax, fraction=0.046, pad=0.04, label="critic f(x)")
    data, samples = data.numpy(), samples.numpy()
    ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:blue", alpha=0.5, label="data")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:orange", alpha=0.7, label="samples")
    ax.set_xlim(float(xs[0]), float(xs[-1]))
    ax.set_ylim(float(ys[0]), float(ys[-1]))
    ax.legend(loc="upper right", markerscale=4)
    ax.set_title(title)
    fig.tight_layout()
    fig.canvas.draw()
    picture = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    plt.close(fig)
    return picture
