"""The gradient penalty of WGAN-GP (docs/theory.md §7, docs/design.md#gradient-penalty-in-fp32)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_gans import WGANGP
from lightning_gans.models.losses import gradient_penalty, input_grad_norm


class Linear(nn.Module):
    """f(x) = w . x over all non-batch dimensions."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(1)


def batch(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    real, fake = torch.randn(16, *shape, generator=g), torch.randn(16, *shape, generator=g)
    return real, fake, torch.rand(16, generator=g)


@pytest.mark.parametrize("shape", [(2,), (3, 8, 8)])
def test_penalty_zero_for_unit_norm_linear_critic(shape):
    real, fake, eps = batch(shape)
    w = torch.randn(shape)
    critic = Linear(w / w.norm())  # exactly 1-Lipschitz: ||grad f|| = 1 everywhere
    assert gradient_penalty(critic, real, fake, eps).item() == pytest.approx(0.0, abs=1e-10)
    doubled = Linear(2 * w / w.norm())  # ||grad f|| = 2: penalty (2 - 1)^2 = 1
    assert gradient_penalty(doubled, real, fake, eps).item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("shape", [(2,), (3, 8, 8)])
def test_penalty_is_lambda_for_constant_critic(shape):
    real, fake, eps = batch(shape)

    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Parameter(torch.tensor(3.0))

        def forward(self, x):
            return self.c + 0 * x.flatten(1).sum(1)

    lam = 10.0
    assert lam * gradient_penalty(Constant(), real, fake, eps).item() == pytest.approx(lam)


def test_norm_is_over_all_non_batch_dims():
    x = torch.randn(4, 3, 5, 5)
    w = torch.randn(3, 5, 5)
    norms = input_grad_norm(Linear(w), x)
    assert norms.shape == (4,)
    assert torch.allclose(norms, torch.full((4,), w.norm().item()), atol=1e-5)


def test_penalty_gradient_reaches_critic_weights():  # double backward
    real, fake, eps = batch((2,))
    critic = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, eps)
    gp.backward()
    *hidden, out_bias = critic.parameters()  # f's output bias cannot change grad_x f
    for p in hidden:
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_penalty_under_bf16_autocast_matches_fp32():
    torch.manual_seed(0)
    model = WGANGP(data_shape=(1, 32, 32), latent_dim=8, g_width=8, d_width=8)
    real, fake, eps = batch((1, 32, 32))
    fp32 = gradient_penalty(model.critic, real, fake, eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = gradient_penalty(model.critic, real, fake, eps)
    assert bf16.dtype == torch.float32
    assert bf16.item() == pytest.approx(fp32.item(), rel=1e-6)


def test_wgan_gp_trains_under_bf16_mixed(fit_run):
    cli = fit_run("toy/wgan_gp", "--trainer.precision", "bf16-mixed", steps=3)
    assert cli.trainer.global_step == 3
    assert all(torch.isfinite(p).all() for p in cli.model.parameters())


def test_wgan_gp_refuses_batch_norm_critic():
    from lightning_gans.errors import ConfigError

    with pytest.raises(ConfigError, match="none, layer"):
        WGANGP(critic_norm="batch")


def test_the_penalty_under_cpu_autocast_is_computed_in_fp32():
    """Under bf16 autocast (``--trainer.precision bf16-mixed``) the penalty leaves autocast: the
    same value as in fp32, to fp32 rounding, not bf16's (about 3 significant digits)."""
    torch.manual_seed(0)
    model = WGANGP(data_shape=(3, 32, 32), g_width=8, d_width=8)
    real, fake, eps = batch((3, 32, 32))
    fp32 = gradient_penalty(model.critic, real, fake, eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = gradient_penalty(model.critic, real, fake, eps)
        in_bf16 = model.critic(real)  # what autocast does to the critic elsewhere
    assert in_bf16.dtype == torch.bfloat16 and amp.dtype == torch.float32
    torch.testing.assert_close(amp, fp32, rtol=1e-5, atol=1e-7)
