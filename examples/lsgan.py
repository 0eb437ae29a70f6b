"""A new GAN in one file: the least-squares GAN (Mao et al. 2017, eq. 2 with a-b-c = 0-1-1).

    python -m lightning_gans fit --config examples/lsgan.yaml

The base class owns the n_critic loop, fresh real batches, step counting, DDP, AMP, logging and
pictures; a GAN states its losses, its optimiser and its own options.
"""

import torch
import torch.nn.functional as F

from lightning_gans import AdversarialModule


class LSGAN(AdversarialModule):
    """D regresses real to 1 and fake to 0; G pushes D(G(z)) to 1.

    Args:
        lr: Adam learning rate.
    """

    def __init__(self, *, lr: float = 2e-4, n_critic: int = 1, **kwargs) -> None:
        super().__init__(n_critic=n_critic, **kwargs)

    def configure_optimizers(self):  # [generator, critic]
        return self.optimizer_pair(torch.optim.Adam, lr=self.hparams.lr, betas=(0.5, 0.999))

    def critic_loss(self, real, fake, noise):
        f_real, f_fake = self.critic(real), self.critic(fake)
        loss = 0.5 * (F.mse_loss(f_real, torch.ones_like(f_real)) + f_fake.pow(2).mean())
        return loss, self.critic_metrics(f_real.detach(), f_fake.detach())

    def critic_metrics(self, f_real, f_fake):  # what training and validation log
        return {"d_real": f_real.mean(), "d_fake": f_fake.mean()}

    def generator_loss(self, f_fake):
        return 0.5 * F.mse_loss(f_fake, torch.ones_like(f_fake))
