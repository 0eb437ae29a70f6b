"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville (2017), Algorithm 1.

    critic:    minimise  E_z[f(G(z))] - E_x[f(x)] + lambda * E_x_hat[(||grad f(x_hat)||_2 - 1)^2]
               x_hat = eps * x + (1 - eps) * G(z),  eps ~ U[0, 1] per sample
    generator: minimise  -E_z[f(G(z))]
lambda = 10, n_critic = 5, Adam lr 1e-4, betas (0.0, 0.9); no batch norm in the critic, since the
penalty is per sample (THEORY.md item 12). The toy experiments use lambda = 0.1, betas (0.5, 0.9).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_gans.errors import ConfigError
from lightning_gans.losses import critic_emd, gradient_penalty
from lightning_gans.models.base import AdversarialModule


class WGANGP(AdversarialModule):
    """WGAN with gradient penalty. ``train/critic_emd`` excludes the penalty (PITFALLS 15);
    the penalty is logged on its own as ``train/gradient_penalty`` (before lambda)."""

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 128,
        n_critic: int = 5,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        gp_lambda: float = 10.0,
        g_width: int = 64,
        d_width: int = 64,
        critic_norm: str = "none",
        seed: int = 0,
        arch: str = "dcgan",
        ema_decay: float | None = None,
        ema_start: int = 0,
        lr_schedule: str = "constant",
        critic_schedule: str = "constant",
    ):
        if critic_norm == "batch":
            raise ConfigError(
                "WGAN-GP critic_norm 'batch' breaks the per-sample gradient "
                "penalty; valid: none, layer"
            )
        super().__init__(
            data_shape, latent_dim, n_critic, g_width, d_width, critic_norm, seed,
            arch, ema_decay, ema_start, lr_schedule, critic_schedule,
        )  # fmt: skip
        self.save_hyperparameters()

    def configure_optimizers(self):
        return self.optimizer_pair(torch.optim.Adam, lr=self.hparams.lr, betas=self.hparams.betas)

    def critic_loss(self, real: Tensor, fake: Tensor, noise: torch.Generator):
        emd = critic_emd(self.critic(real), self.critic(fake))
        eps = self.rand(len(real), noise=noise)  # one interpolation weight per sample
        gp = gradient_penalty(self.critic, real, fake, eps)
        return -emd + self.hparams.gp_lambda * gp, {"critic_emd": emd, "gradient_penalty": gp}

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        return -f_fake.mean()
