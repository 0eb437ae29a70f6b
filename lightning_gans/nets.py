"""Generators, critics, encoders and decoders: MLPs for 2-D data, DCGAN-style convnets for images.

Which family a model gets is decided by the data's shape alone (``build_generator`` /
``build_critic``): ``(d,)`` gives MLPs, ``(C, H, W)`` with H = W in {32, 64} gives convnets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from lightning_gans.errors import ConfigError

NORMS = ("none", "layer", "batch")
IMAGE_SIZES = (32, 64)


def check_norm(norm: str) -> None:
    if norm not in NORMS:
        raise ConfigError(f"unknown critic norm {norm!r}; valid: {', '.join(NORMS)}")


def _norm1d(norm: str, width: int) -> list[nn.Module]:
    return {"none": [], "layer": [nn.LayerNorm(width)], "batch": [nn.BatchNorm1d(width)]}[norm]


def _norm2d(norm: str, ch: int) -> list[nn.Module]:
    # GroupNorm with one group normalises each sample over (C, H, W): the WGAN-GP paper's
    # layer normalisation, which, unlike batch norm, keeps the gradient penalty per sample.
    return {"none": [], "layer": [nn.GroupNorm(1, ch)], "batch": [nn.BatchNorm2d(ch)]}[norm]


def _n_up(size: int) -> int:
    if size not in IMAGE_SIZES:
        raise ConfigError(
            f"image size {size} not supported; valid: {', '.join(map(str, IMAGE_SIZES))}"
        )
    return int(math.log2(size)) - 2  # 4x4 -> size in stride-2 steps: 3 for 32, 4 for 64


# --- 2-D data: 3 hidden layers of 512, ReLU (the WGAN-GP toy experiments) ---------------------


def mlp(
    d_in: int, d_out: int, hidden: int = 512, depth: int = 3, norm: str = "none"
) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(d_in if i == 0 else hidden, hidden), *_norm1d(norm, hidden), nn.ReLU()]
    # PyTorch's default initialisation. The TF toy code's He-uniform init (gan_toy.py, tflib) was
    # measured and left out: toy8 WGAN-GP W1 after 2,000 iterations rose from 0.105 / 0.084 to
    # 0.132 / 0.192 (seeds 0 / 1).
    return nn.Sequential(*layers, nn.Linear(hidden, d_out))


# --- images: DCGAN (Radford et al.) ----------------------------------------------------------


class DCGANGenerator(nn.Module):
    """z (B, latent) -> image (B, C, size, size) in [-1, 1]."""

    def __init__(
        self, latent_dim: int, channels: int, size: int, width: int = 64, tanh: bool = True
    ):
        super().__init__()
        n = _n_up(size)
        ch = width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),  # (B, ch, 4, 4)
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
            ]
            layers += [nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1)]  # (B, C, size, size)
        layers += [nn.Tanh()] if tanh else []  # without it: logits or means of a likelihood
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANCritic(nn.Module):
    """image (B, C, size, size) -> score (B, d_out); no sigmoid (GAN uses BCE with logits)."""

    def __init__(
        self, channels: int, size: int, width: int = 64, norm: str = "none", d_out: int = 1
    ):
        super().__init__()
        check_norm(norm)
        n = _n_up(size)
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), *_norm2d(norm, ch * 2)]
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, d_out, 4, 1, 0), nn.Flatten()]  # (B, ch, 4, 4) -> (B, d_out)
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Squeeze(nn.Module):
    """(B, 1) -> (B,): critics return one score per sample."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


ARCHS = ("dcgan", "resnet")


def check_arch(arch: str, norm: str = "none") -> None:
    if arch not in ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
    if arch == "resnet" and norm != "none":
        raise ConfigError(
            f"the ResNet critic has no normalisation: critic_norm {norm!r}; valid: none"
        )


def build_generator(
    data_shape: Sequence[int], latent_dim: int, width: int, tanh: bool = True, arch: str = "dcgan"
) -> nn.Module:
    """z (B, latent) -> (B, *data_shape); images end in tanh unless ``tanh=False``."""
    check_arch(arch)
    if len(data_shape) == 1:
        return mlp(latent_dim, data_shape[0], hidden=width)
    c, h, _ = data_shape
    if arch == "resnet":
        from lightning_gans.nets_resnet import ResNetGenerator

        return ResNetGenerator(latent_dim, c, h, width)
    return DCGANGenerator(latent_dim, c, h, width, tanh)


def build_critic(
    data_shape: Sequence[int], width: int, norm: str = "none", d_out: int = 1, arch: str = "dcgan"
) -> nn.Module:
    """A critic (WGAN) or discriminator (GAN) returning (B,) scores, or (B, d_out) if d_out > 1."""
    check_norm(norm)
    check_arch(arch, norm if len(data_shape) == 3 else "none")
    if len(data_shape) == 1:
        net = mlp(data_shape[0], d_out, hidden=width, norm=norm)
    else:
        c, h, _ = data_shape
        if arch == "resnet":
            from lightning_gans.nets_resnet import ResNetCritic

            return ResNetCritic(c, h, width)  # already (B,)
        net = DCGANCritic(c, h, width, norm, d_out)
    return Squeeze(net) if d_out == 1 else net
