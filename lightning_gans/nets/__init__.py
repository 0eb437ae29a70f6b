"""The networks: MLPs for 2-D data, DCGAN or ResNet convnets for images.

Which family a model gets is decided by the data's shape alone: ``(d,)`` gives MLPs,
``(C, H, W)`` with H = W in {32, 64} gives convnets (``arch``: dcgan or resnet).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from lightning_gans.errors import ConfigError
from lightning_gans.nets.blocks import NORMS, Squeeze, check_norm
from lightning_gans.nets.dcgan import DCGANCritic, DCGANGenerator
from lightning_gans.nets.mlp import mlp
from lightning_gans.nets.resnet import ResNetCritic, ResNetGenerator

ARCHS = ("dcgan", "resnet")

__all__ = ["ARCHS", "NORMS", "build_critic", "build_generator", "check_arch"]


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
            return ResNetCritic(c, h, width)  # already (B,)
        net = DCGANCritic(c, h, width, norm, d_out)
    return Squeeze(net) if d_out == 1 else net
