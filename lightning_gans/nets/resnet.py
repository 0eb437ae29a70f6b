"""The ResNet generator and critic of the WGAN-GP paper's CIFAR-10 experiments
(Gulrajani et al. 2017, appendix; gan_cifar_resnet.py), for 32 px (3 up / 3 down blocks) and
64 px (4 each).

Generator: z -> Linear -> 4x4xW -> [BN, ReLU, up+conv3, BN, ReLU, conv3] + (up+conv1) per block
-> BN, ReLU, conv3, tanh. Critic: an optimised first block, one down block per further halving,
two plain blocks, ReLU, global mean, Linear -> one score. No normalisation in the critic: the
gradient penalty is per sample. Upsampling is nearest-neighbour (the original's depth-to-space of
a 4x tiled input is the same operation); downsampling is 2x2 mean pooling. Initialised as the
reference's tflib layers (``blocks.tflib_init``): He-style uniform convs, Glorot-style uniform 1x1
shortcuts, output conv and linear layers, zero biases.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_gans.nets.blocks import resolutions, tflib_init


class ResBlock(nn.Module):
    """x + F(x) with an optional resample ("up" or "down") in both paths."""

    def __init__(self, c_in: int, c_out: int, resample: str | None, norm: bool):
        super().__init__()

        def bn(c: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(c)] if norm else []

        up = [nn.Upsample(scale_factor=2, mode="nearest")] if resample == "up" else []
        down = [nn.AvgPool2d(2)] if resample == "down" else []
        self.main = nn.Sequential(
            *bn(c_in), nn.ReLU(), *up, nn.Conv2d(c_in, c_out, 3, 1, 1),
            *bn(c_out), nn.ReLU(), nn.Conv2d(c_out, c_out, 3, 1, 1), *down,
        )  # fmt: skip
        if resample is None and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        else:  # up: upsample then 1x1 conv; down: 1x1 conv then mean-pool (as the original)
            self.shortcut = nn.Sequential(*up, nn.Conv2d(c_in, c_out, 1), *down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.main(x)


class ResNetGenerator(nn.Module):
    """z (B, latent) -> image (B, C, size, size) in [-1, 1]."""

    def __init__(self, latent_dim: int, channels: int, size: int, width: int = 128):
        super().__init__()
        n_up = resolutions(size)  # 3 for 32 px, 4 for 64 px; other sizes are a ConfigError
        self.width = width
        self.fc = nn.Linear(latent_dim, 4 * 4 * width)
        self.blocks = nn.Sequential(*[ResBlock(width, width, "up", norm=True) for _ in range(n_up)])
        self.out = nn.Sequential(
            nn.BatchNorm2d(width), nn.ReLU(), nn.Conv2d(width, channels, 3, 1, 1), nn.Tanh()
        )
        tflib_init(self, glorot=(self.out[2],))  # the output conv is he_init=False there

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.fc(z).view(len(z), self.width, 4, 4)))


class ResNetCritic(nn.Module):
    """image (B, C, size, size) -> score (B,); no normalisation layers."""

    def __init__(self, channels: int, size: int, width: int = 128):
        super().__init__()
        n_down = resolutions(size) - 1  # after the first block's own halving, down to 8x8
        first = nn.Sequential(  # the "optimised" first block: no ReLU before the first conv
            nn.Conv2d(channels, width, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1), nn.AvgPool2d(2),
        )  # fmt: skip
        self.first, self.first_shortcut = (
            first,
            nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(channels, width, 1)),
        )
        blocks = [ResBlock(width, width, "down", norm=False) for _ in range(n_down - 1)]
        blocks += [ResBlock(width, width, None, norm=False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width, 1)
        tflib_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.first(x) + self.first_shortcut(x))
        return self.fc(torch.relu(h).mean(dim=(2, 3))).squeeze(1)
