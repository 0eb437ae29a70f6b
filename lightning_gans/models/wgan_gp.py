"""WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville (2017), Algorithm 1.

    critic:    minimise  E_z[f(G(z))] - E_x[f(x)] + lambda * E_x_hat[(||grad f(x_hat)||_2 - 1)^2]
               x_hat = eps * x + (1 - eps) * G(z),  eps ~ U[0, 1] per sample
    generator: minimise  -E_z[f(G(z))]
lambda = 10, n_critic = 5, Adam lr 1e-4, betas (0.0, 0.9); no batch norm in the critic, since the
penalty is per sample (docs/theory.md §7). The toy experiments use lambda 0.1, betas (0.5, 0.9).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_gans.errors import ConfigError
from lightning_gans.models.adversarial import AdversarialModule
from lightning_gans.models.losses import critic_emd, gradient_penalty


class WGANGP(AdversarialModule):
    """WGAN with gradient penalty. ``train/critic_emd`` excludes the penalty; the penalty is
    logged on its own as ``train/gradient_penalty`` (before lambda).

    Args:
        lr: Adam learning rate.
        betas: Adam betas.
        gp_lambda: weight of the gradient penalty.
    """

    def __init__(
        self,
        *,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        gp_lambda: float = 10.0,
        **kwargs,
    ) -> None:
        if kwargs.get("critic_norm") == "batch":
            raise ConfigError(
                "WGAN-GP critic_norm 'batch' breaks the per-sample gradient penalty; "
                "valid: none, layer"
            )
        if kwargs.get("compile") and gp_lambda > 0:  # docs/design.md#speed-options
            raise ConfigError(
                "compile true with WGAN-GP: torch.compile cannot differentiate the gradient "
                "penalty twice (torch: 'aot_autograd does not currently support double "
                "backward'); valid here: false"
            )
        super().__init__(**kwargs)

    def configure_optimizers(self):
        return self.optimizer_pair(torch.optim.Adam, lr=self.hparams.lr, betas=self.hparams.betas)

    def critic_loss(self, real: Tensor, fake: Tensor, noise: torch.Generator):
        emd = critic_emd(self.critic(real), self.critic(fake))
        eps = self.rand(len(real), noise=noise)  # one interpolation weight per sample
        gp = gradient_penalty(self.critic, real, fake, eps)
        return self.hparams.gp_lambda * gp - emd, {"critic_emd": emd, "gradient_penalty": gp}

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        return -f_fake.mean()
