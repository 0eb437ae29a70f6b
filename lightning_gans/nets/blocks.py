"""Pieces every network family shares: the normalisation choices, the image size to depth
mapping, the reference initialisations and the (B, 1) -> (B,) squeeze of a critic's score."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

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


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. (2016), section 4, as in the DCGAN and WGAN reference code: every conv
    weight from N(0, 0.02); batch-norm scale from N(1, 0.02), shift 0. For ``net.apply``."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def tflib_init(net: nn.Module, glorot: tuple[nn.Module, ...] = ()) -> None:
    """The initialisation of the WGAN-GP reference code (tflib, used by gan_cifar_resnet.py):
    uniform weights with std sqrt(4 / (fan_in + fan_out)) for convs ("he_init"), and
    sqrt(2 / (fan_in + fan_out)) (Glorot) for 1x1 shortcut convs, linear layers and the
    modules in ``glorot``; fans count the kernel's taps; biases 0."""
    for m in net.modules():
        if not isinstance(m, nn.Conv2d | nn.Linear):
            continue
        taps = m.weight[0, 0].numel()  # k * k for a conv, 1 for a linear layer
        fan_in, fan_out = m.weight.shape[1] * taps, m.weight.shape[0] * taps
        he = isinstance(m, nn.Conv2d) and taps > 1 and m not in glorot
        std = math.sqrt((4 if he else 2) / (fan_in + fan_out))
        nn.init.uniform_(m.weight, -std * math.sqrt(3), std * math.sqrt(3))
        if m.bias is not None:
            nn.init.zeros_(m.bias)


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


@contextlib.contextmanager
def batch_statistics(net: nn.Module) -> Iterator[None]:
    """``net``'s batch norm layers normalise by each batch's own statistics, as in training,
    and leave their running statistics as they were (momentum 0), whatever mode ``net`` is in
    (docs/theory.md §5: the critic's estimate is measured as the critic was trained)."""
    kinds = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    norms = [m for m in net.modules() if isinstance(m, kinds)]
    kept = [(m, m.training, m.momentum) for m in norms]
    for m in norms:
        m.train()
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        yield
    finally:
        for m, training, momentum in kept:
            m.train(training)
            m.momentum = momentum
