"""GAN: Goodfellow et al. (2014), Algorithm 1, with the non-saturating generator loss.

    discriminator: maximise  E_x[log D(x)] + E_z[log(1 - D(G(z)))]        (docs/theory.md §3)
    generator:     maximise  E_z[log D(G(z))]      (non-saturating; the default)
               or  minimise  E_z[log(1 - D(G(z)))] (saturating: the minimax game as written)
D outputs logits and the losses use BCE with logits: the same objective, computed stably.
Adam lr 2e-4, betas (0.5, 0.999) (Radford et al.); k = 1 discriminator step per generator step.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.models.adversarial import AdversarialModule


class GAN(AdversarialModule):
    """The original GAN. Logged: ``d_real`` / ``d_fake``, the mean of D's probabilities on real
    and generated data; both are 1/2 at the optimum (docs/theory.md §3).

    Args:
        lr: Adam learning rate.
        betas: Adam betas.
        non_saturating: generator maximises log D(G(z)) instead of minimising log(1 - D(G(z))).
    """

    def __init__(
        self,
        *,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.5, 0.999),
        non_saturating: bool = True,
        n_critic: int = 1,
        critic_norm: str = "batch",
        **kwargs,
    ) -> None:
        super().__init__(n_critic=n_critic, critic_norm=critic_norm, **kwargs)

    def configure_optimizers(self):
        return self.optimizer_pair(torch.optim.Adam, lr=self.hparams.lr, betas=self.hparams.betas)

    def critic_loss(self, real: Tensor, fake: Tensor, noise: torch.Generator):
        f_real, f_fake = self.critic(real), self.critic(fake)
        # -[log D(x) + log(1 - D(G(z)))]: the value V with its sign flipped
        loss = F.binary_cross_entropy_with_logits(f_real, torch.ones_like(f_real))
        loss = loss + F.binary_cross_entropy_with_logits(f_fake, torch.zeros_like(f_fake))
        if not self.logging_step():  # D's probabilities cost ops: only on the steps logged
            return loss, {}
        return loss, self.critic_metrics(f_real.detach(), f_fake.detach())

    def critic_metrics(self, f_real: Tensor, f_fake: Tensor) -> dict[str, Tensor]:
        return {"d_real": torch.sigmoid(f_real).mean(), "d_fake": torch.sigmoid(f_fake).mean()}

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        if self.hparams.non_saturating:  # -log D(G(z))
            return F.binary_cross_entropy_with_logits(f_fake, torch.ones_like(f_fake))
        return -F.binary_cross_entropy_with_logits(f_fake, torch.zeros_like(f_fake))  # log(1-D)
