"""Pieces every network family shares: the normalisation choices, the image size to depth
mapping and the (B, 1) -> (B,) squeeze of a critic's score."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightning_gans.errors import ConfigError

NORMS = ("none", "layer", "batch")
IMAGE_SIZES = (32, 64)


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ConfigError(f"unknown critic norm {norm!r}; valid: {', '.join(NORMS)}")


def norm1d(norm: str, width: int) -> list[nn.Module]:
    return {"none": [], "layer": [nn.LayerNorm(width)], "batch": [nn.BatchNorm1d(width)]}[norm]


def norm2d(norm: str, ch: int) -> list[nn.Module]:
    # GroupNorm with one group normalises each sample over (C, H, W): the WGAN-GP paper's
    # layer normalisation, which, unlike batch norm, keeps the gradient penalty per sample.
    return {"none": [], "layer": [nn.GroupNorm(1, ch)], "batch": [nn.BatchNorm2d(ch)]}[norm]


def resolutions(size: int) -> int:
    """Stride-2 steps between 4x4 and size x size: 3 for 32 px, 4 for 64 px. The one place that
    maps an image size to a network's depth (DCGAN and ResNet both use it)."""
    if size not in IMAGE_SIZES:
        raise ConfigError(
            f"image size {size} not supported; valid: {', '.join(map(str, IMAGE_SIZES))}"
        )
    return int(math.log2(size)) - 2


class Squeeze(nn.Module):
    """(B, 1) -> (B,): critics return one score per sample."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
