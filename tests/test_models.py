"""GAN, WGAN and WGAN-GP on the one adversarial base: step accounting, losses, a custom GAN."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_gans import GAN, WGAN, WGANGP
from lightning_gans.metrics.theory import gan_value, js, optimal_discriminator
from tests.helpers import CountSteps


@pytest.mark.parametrize(
    ("config", "n_critic"),
    [("toy/gan", 1), ("toy/wgan", 5), ("toy/wgan_gp", 5), ("gan", 1), ("wgan_gp", 2)],
)
def test_step_accounting(fit_run, config, n_critic):
    counter = CountSteps()
    cli = fit_run(config, "--model.n_critic", str(n_critic), steps=3, callbacks=[counter])
    assert cli.trainer.global_step == 3
    assert counter.calls == {"generator": 3, "critic": 3 * n_critic}


def test_saturating_and_non_saturating_generator_losses():
    f_fake = torch.tensor([-2.0, 0.0, 3.0])  # logits of D(G(z))
    d = torch.sigmoid(f_fake)
    ns = GAN(non_saturating=True).generator_loss(f_fake)
    sat = GAN(non_saturating=False).generator_loss(f_fake)
    assert ns.item() == pytest.approx(-torch.log(d).mean().item(), abs=1e-6)  # docs/theory.md §3
    assert sat.item() == pytest.approx(
        torch.log(1 - d).mean().item(), abs=1e-6
    )  # docs/theory.md §3


def test_discriminator_alone_approaches_d_star():
    """Item 7: with G fixed, D trained on its own approaches p_data / (p_data + p_g)."""
    torch.manual_seed(0)
    p_data = torch.distributions.Normal(0.0, 1.0)
    p_g = torch.distributions.Normal(1.5, 0.7)
    model = GAN(data_shape=(1,), d_width=64, critic_norm="none")
    opt = torch.optim.Adam(model.critic.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=600, gamma=0.2)
    for _ in range(1500):
        real, fake = p_data.sample((1024, 1)), p_g.sample((1024, 1))
        loss, _ = model.critic_loss(real, fake, torch.Generator())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    x = torch.linspace(-3, 4, 200)[:, None]
    pd, pg = p_data.log_prob(x).exp().squeeze(1), p_g.log_prob(x).exp().squeeze(1)
    where = (pd > 0.02) | (pg > 0.02)  # where either density is non-negligible
    with torch.no_grad():
        d = torch.sigmoid(model.critic(x))
    err = (d - optimal_discriminator(pd, pg))[where].abs().max().item()
    assert err < 0.05


def test_value_at_d_star_is_minus_log4_plus_2js():
    """Item 8 on two fixed discretised 1-D densities."""
    x = torch.linspace(-5, 6, 2001, dtype=torch.float64)  # D* = 1 - 1e-17 rounds to 1 beyond
    p = torch.distributions.Normal(0.0, 1.0).log_prob(x).exp()
    q = torch.distributions.Normal(1.5, 0.7).log_prob(x).exp()
    p, q = p / p.sum(), q / q.sum()
    v = gan_value(optimal_discriminator(p, q), p, q)
    assert v.item() == pytest.approx(-math.log(4) + 2 * js(p, q).item(), abs=1e-5)


@pytest.mark.parametrize("cls", [GAN, WGAN, WGANGP])
def test_sample_shapes(cls):
    assert cls(data_shape=(2,), latent_dim=2, g_width=16, d_width=16, critic_norm="none").sample(
        7
    ).shape == (7, 2)
    img = cls(data_shape=(3, 64, 64), latent_dim=8, g_width=8, d_width=8, critic_norm="none")
    assert img.sample(2).shape == (2, 3, 64, 64)
