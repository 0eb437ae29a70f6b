"""The DCGAN generator and critic (Radford et al. 2016) for 32 and 64 px images, initialised as
the paper says: conv weights N(0, 0.02), batch-norm scale N(1, 0.02) (``blocks.dcgan_init``)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_gans.nets.blocks import check_norm, dcgan_init, norm2d, resolutions


class DCGANGenerator(nn.Module):
    """z (B, latent) -> image (B, C, size, size) in [-1, 1]."""

    def __init__(
        self, latent_dim: int, channels: int, size: int, width: int = 64, tanh: bool = True
    ):
        super().__init__()
        n = resolutions(size)
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
        self.apply(dcgan_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANCritic(nn.Module):
    """image (B, C, size, size) -> score (B, d_out); no sigmoid (GAN uses BCE with logits)."""

    def __init__(
        self, channels: int, size: int, width: int = 64, norm: str = "none", d_out: int = 1
    ):
        super().__init__()
        check_norm(norm)
        n = resolutions(size)
        ch = width
        layers: list[nn.Module] = [nn.Conv2d(channels, ch, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"), *norm2d(norm, ch * 2)]
            layers += [nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, d_out, 4, 1, 0), nn.Flatten()]  # (B, ch, 4, 4) -> (B, d_out)
        self.net = nn.Sequential(*layers)
        self.apply(dcgan_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
