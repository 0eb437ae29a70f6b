"""VAE: Kingma & Welling (2014), trained on the ELBO (docs/theory.md §8).

q(z|x) = N(mu(x), diag sigma(x)^2);  z = mu + sigma * eps, eps ~ N(0, I)  (reparameterised)
loss = -E_q[log p(x|z)] + beta * KL(q(z|x) || N(0, I))     (beta = 1: the negative ELBO)
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_gans.metrics.theory import gaussian_kl
from lightning_gans.models import elbo
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.nets import build_critic, build_generator


class VAE(GenerativeModule):
    """Args: ``likelihood`` binarized, logistic (8-bit images), gaussian (fixed ``sigma``) or
    bernoulli (grey levels; not a density), each figure named for what it bounds (elbo.py),
    ``beta`` (the KL's weight in the loss), ``lr`` (Adam), ``width``, ``iw_samples`` (k)."""

    def __init__(
        self,
        *,
        likelihood: str = "binarized",
        sigma: float = 0.1,
        beta: float = 1.0,
        lr: float = 1e-3,
        width: int = 32,
        iw_samples: int = 64,
        latent_dim: int = 16,
        **kwargs,
    ) -> None:
        super().__init__(latent_dim=latent_dim, **kwargs)
        elbo.check_likelihood(likelihood, self.data_shape)
        self.encoder = build_critic(self.data_shape, width, "none", d_out=2 * latent_dim)
        out_shape = elbo.decoder_shape(self.data_shape, likelihood)
        self.decoder = build_generator(out_shape, latent_dim, width, tanh=False)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return tuple(self.encoder(x).chunk(2, dim=1))  # mu, logvar of q(z|x): (B, latent) each

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """The mean of p(x|z) in data space (the VAE keeps no averaged decoder)."""
        return elbo.mean_in_data_space(self.decoder(z), self.hparams.likelihood)

    def log_px_given_z(self, x: Tensor, z: Tensor) -> Tensor:  # (B,), summed over dimensions
        return elbo.log_likelihood(x, self.decoder(z), self.hparams.likelihood, self.hparams.sigma)

    def elbo_terms(self, x: Tensor, noise: torch.Generator | None = None) -> dict[str, Tensor]:
        mu, logvar = self.encode(x)
        recon = -self.log_px_given_z(x, elbo.reparameterize(mu, logvar, noise))  # (B,)
        kl = gaussian_kl(mu, logvar)  # (B,), closed form
        loss = (recon + self.hparams.beta * kl).mean()
        terms = {"loss": loss, "recon": recon.mean(), "kl": kl.mean()}
        return terms | elbo.named(-(recon + kl).mean(), self.hparams.likelihood, self.data_shape)

    @torch.no_grad()
    def iw_bound(self, x: Tensor, k: int, noise: torch.Generator | None = None) -> Tensor:
        mu, logvar = self.encode(x)
        return elbo.importance_weighted_bound(x, mu, logvar, self.log_px_given_z, k, noise)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        noise = self.step_noise()  # binarisation and eps of this step
        terms = self.elbo_terms(elbo.observe(batch, self.hparams.likelihood, noise), noise)
        self.check_finite(loss=terms["loss"])
        self.log_train(terms, batch_size=len(batch))
        return terms["loss"]

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        x = elbo.observe(batch, self.hparams.likelihood, noise := self.eval_noise(batch_idx))
        iw = self.iw_bound(x, self.hparams.iw_samples, noise).mean()
        iw = elbo.named(iw, self.hparams.likelihood, self.data_shape, iw=True)  # its figures
        self.log_eval(self.elbo_terms(x, noise) | iw, batch_size=len(x))

    test_step = validation_step
