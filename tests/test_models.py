"""GAN, WGAN and WGAN-GP on the one adversarial base: step accounting, losses, a custom GAN."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_gans import GAN, WGAN, WGANGP
from lightning_gans.models.base import AdversarialModule
from lightning_gans.theory import gan_value, js, optimal_discriminator
from tests.test_wgan import CountSteps


@pytest.mark.parametrize(
    ("config", "n_critic"),
    [("toy/gan", 1), ("toy/wgan", 5), ("toy/wgan_gp", 5), ("gan", 1), ("wgan_gp", 2)],
)
def test_step_accounting(tmp_path, config, n_critic):
    from lightning_gans.cli import build_cli
    from tests.conftest import cli_args

    extra = ["--model.n_critic", str(n_critic)]
    cli = build_cli(cli_args(tmp_path, config, *extra, steps=3), run=False)
    counter = CountSteps()
    cli.trainer.callbacks.append(counter)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 3
    assert counter.calls == {"generator": 3, "critic": 3 * n_critic}


def test_saturating_and_non_saturating_generator_losses():
    f_fake = torch.tensor([-2.0, 0.0, 3.0])  # logits of D(G(z))
    d = torch.sigmoid(f_fake)
    ns = GAN(non_saturating=True).generator_loss(f_fake)
    sat = GAN(non_saturating=False).generator_loss(f_fake)
    assert ns.item() == pytest.approx(-torch.log(d).mean().item(), abs=1e-6)  # item 9
    assert sat.item() == pytest.approx(torch.log(1 - d).mean().item(), abs=1e-6)  # item 6


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


# --- "Add your own GAN": a least-squares GAN (Mao et al. 2017) in under 40 lines ----------


class LSGAN(AdversarialModule):
    """Least-squares GAN: D regresses real to 1 and fake to 0; G pushes D(G(z)) to 1."""

    def __init__(
        self,
        data_shape=(2,),
        latent_dim=2,
        n_critic=1,
        lr=2e-4,
        g_width=32,
        d_width=32,
        critic_norm="none",
        seed=0,
    ):
        super().__init__(data_shape, latent_dim, n_critic, g_width, d_width, critic_norm, seed)
        self.save_hyperparameters()

    def configure_optimizers(self):
        return self.optimizer_pair(torch.optim.Adam, lr=self.hparams.lr, betas=(0.5, 0.999))

    def critic_loss(self, real, fake, noise):
        f_real, f_fake = self.critic(real), self.critic(fake)
        loss = 0.5 * (F.mse_loss(f_real, torch.ones_like(f_real)) + f_fake.pow(2).mean())
        return loss, {"d_real": f_real.mean(), "d_fake": f_fake.mean()}

    def critic_metrics(self, f_real, f_fake):
        return {"d_real": f_real.mean(), "d_fake": f_fake.mean()}

    def generator_loss(self, f_fake):
        return 0.5 * F.mse_loss(f_fake, torch.ones_like(f_fake))


def test_custom_lsgan_trains_through_the_cli(tmp_path):
    from lightning_gans.cli import build_cli
    from tests.conftest import QUIET

    args = [
        "--model",
        "tests.test_models.LSGAN",
        "--data.dataset",
        "toy8",
        "--data.batch_size",
        "64",
        "--data.toy_size",
        "2048",
        "--trainer.max_steps",
        "20",
        "--run.root",
        str(tmp_path),
        "--run.logger",
        "csv",
        *QUIET,
    ]
    cli = build_cli(args, run=False)
    before = [p.clone() for p in cli.model.generator.parameters()]
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 20
    assert any(
        not torch.equal(a, b) for a, b in zip(before, cli.model.generator.parameters(), strict=True)
    )
    assert cli.model.sample(8).shape == (8, 2)


@pytest.mark.parametrize("cls", [GAN, WGAN, WGANGP])
def test_sample_shapes(cls):
    assert cls(data_shape=(2,), latent_dim=2, g_width=16, d_width=16, critic_norm="none").sample(
        7
    ).shape == (7, 2)
    img = cls(data_shape=(3, 64, 64), latent_dim=8, g_width=8, d_width=8, critic_norm="none")
    assert img.sample(2).shape == (2, 3, 64, 64)
