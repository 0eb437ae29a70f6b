"""The 2-D networks: 3 hidden layers of 512 with ReLU (the WGAN-GP paper's toy experiments)."""

from __future__ import annotations

from torch import nn

from lightning_gans.nets.blocks import norm1d


def mlp(
    d_in: int, d_out: int, hidden: int = 512, depth: int = 3, norm: str = "none"
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), *norm1d(norm, hidden), nn.ReLU()]
    # PyTorch's default initialisation. The TF toy code's He-uniform init (gan_toy.py, tflib) was
    # measured and left out: toy8 WGAN-GP W1 after 2,000 iterations rose from 0.105 / 0.084 to
    # 0.132 / 0.192 (seeds 0 / 1).
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))
