"""WGAN with weight clipping: Arjovsky, Chintala, Bottou (2017), Algorithm 1.

    critic:    maximise  E_x[f_w(x)] - E_z[f_w(G(z))]   then clip every w to [-c, c]
    generator: minimise  -E_z[f_w(G(z))]
RMSProp, lr 5e-5, c = 0.01, n_critic = 5 (docs/theory.md §5, §6).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_gans.errors import require
from lightning_gans.models.adversarial import AdversarialModule
from lightning_gans.models.losses import critic_emd


class WGAN(AdversarialModule):
    """WGAN-clip. Its critic is K-Lipschitz for an unknown K, so the logged ``critic_emd`` is
    the Earth Mover's distance up to that factor (docs/theory.md §6).

    Args:
        lr: RMSProp learning rate.
        clip: every critic weight is clipped to [-clip, clip] after each critic update.
    """

    def __init__(self, *, lr: float = 5e-5, clip: float = 0.01, **kwargs) -> None:
        super().__init__(**kwargs)
        # clipped to [-c, c], batch norm's scale makes every layer of an MLP critic a near-zero
        # map: measured on toy8, critic_emd ~1e-10 after 200 steps, nothing learnt
        require(len(self.data_shape) == 3 or self.hparams.critic_norm != "batch",
                "critic_norm", "batch", "none or layer for 2-D data with weight clipping "
                "(clipping pins batch norm's scale at c in every layer of the MLP critic; "
                "configs/toy/wgan.yaml uses none)")  # fmt: skip

    def configure_optimizers(self):
        return self.optimizer_pair(torch.optim.RMSprop, lr=self.hparams.lr)

    def critic_loss(self, real: Tensor, fake: Tensor, noise: torch.Generator):
        emd = critic_emd(self.critic(real), self.critic(fake))
        return -emd, {"critic_emd": emd}

    @torch.no_grad()
    def after_critic_step(self) -> dict[str, Tensor]:
        c = self.hparams.clip
        for p in self.critic.parameters():  # weight clipping, not gradient clipping
            p.clamp_(-c, c)
        if not self.logging_step():  # counting costs as much as clipping: only when logged
            return {}
        at_bound = sum((p.abs() >= c).sum() for p in self.critic.parameters())
        total = sum(p.numel() for p in self.critic.parameters())
        return {"clip_fraction": at_bound / total}  # share of critic weights at the bound

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        return -f_fake.mean()
