"""The networks start where their papers start: DCGAN weights from N(0, 0.02) with batch-norm
scale from N(1, 0.02) (Radford et al. 2016, section 4); the ResNet nets as the WGAN-GP reference
code's tflib layers (uniform, std sqrt(4 / (fan_in + fan_out)) for convs, sqrt(2 / ...) for 1x1
shortcuts, the output conv and linear layers, zero biases)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_gans.nets import build_critic, build_generator


def weights(net: nn.Module, kind) -> torch.Tensor:
    return torch.cat([m.weight.detach().flatten() for m in net.modules() if isinstance(m, kind)])


@pytest.mark.parametrize("size", [32, 64])
def test_dcgan_init_statistics(size):
    torch.manual_seed(0)
    g = build_generator((3, size, size), 100, 64)
    d = build_critic((3, size, size), 64, "batch")
    for net in (g, d):
        conv = weights(net, nn.Conv2d | nn.ConvTranspose2d)
        assert abs(conv.mean()) < 1e-3 and conv.std() == pytest.approx(0.02, rel=0.02)
        bn = weights(net, nn.BatchNorm2d)
        assert bn.mean() == pytest.approx(1.0, abs=0.01) and bn.std() == pytest.approx(
            0.02, rel=0.15
        )
        assert all(
            float(m.bias.abs().max()) == 0 for m in net.modules() if isinstance(m, nn.BatchNorm2d)
        )
    # PyTorch's default (kaiming uniform, a = sqrt(5)) would give std 1/sqrt(3 fan_in) instead
    first = next(m for m in d.modules() if isinstance(m, nn.Conv2d))
    assert float(first.weight.std()) < 0.5 / math.sqrt(3 * first.weight[0].numel())


def test_resnet_init_is_the_references():
    torch.manual_seed(0)
    g = build_generator((3, 32, 32), 128, 128, arch="resnet")
    d = build_critic((3, 32, 32), 128, arch="resnet")
    out_conv = g.out[2]
    for net in (g, d):
        for m in net.modules():
            if not isinstance(m, nn.Conv2d | nn.Linear) or m.weight.numel() < 2000:
                continue
            taps = m.weight[0, 0].numel()
            fans = (m.weight.shape[0] + m.weight.shape[1]) * taps
            he = isinstance(m, nn.Conv2d) and taps > 1 and m is not out_conv
            want = math.sqrt((4 if he else 2) / fans)
            assert float(m.weight.std()) == pytest.approx(want, rel=0.05), m
            bound = want * math.sqrt(3)  # uniform on [-b, b] has std b / sqrt(3)
            assert float(m.weight.abs().max()) <= bound + 1e-6
            assert m.bias is None or float(m.bias.abs().max()) == 0
