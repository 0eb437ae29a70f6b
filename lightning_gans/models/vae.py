"""VAE: Kingma & Welling (2014), trained on the ELBO (THEORY.md items 14-17).

    encoder:  x -> (mu, log sigma^2)                      q(z|x) = N(mu, diag sigma^2)
    sample:   z = mu + sigma * eps, eps ~ N(0, I)         (item 15: gradients reach mu, sigma)
    decoder:  z -> parameters of p(x|z)                   Bernoulli logits or Gaussian means
    ELBO:     E_q[log p(x|z)] - KL(q(z|x) || N(0, I))     (item 14; KL in closed form, item 16)
    loss:     reconstruction + beta * KL                  (beta = 1 is the ELBO itself)

Signs, as logged: ``elbo`` is a lower bound on log p(x) in nats per example (higher is better);
``recon`` = -E_q[log p(x|z)] and ``kl`` are positive; ``bpd`` = -elbo / (D ln 2) bits per
dimension. Validation also logs ``iw_bound``, the importance-weighted bound with k samples
(Burda et al. 2016), which lies between the ELBO and log p(x) and grows with k.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.datasets import to_neg_one_to_one, to_zero_to_one
from lightning_gans.errors import ConfigError
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.nets import build_critic, build_generator
from lightning_gans.theory import gaussian_kl

LIKELIHOODS = ("bernoulli", "gaussian")


class VAE(GenerativeModule):
    """Args: likelihood ``bernoulli`` (data mapped to [0, 1], binary cross-entropy) or
    ``gaussian`` (fixed standard deviation ``sigma`` in data space, scaled squared error);
    ``beta`` weights the KL in the training objective only; ``iw_samples`` is k of the
    validation importance-weighted bound."""

    def __init__(
        self,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 16,
        likelihood: str = "bernoulli",
        sigma: float = 0.1,
        beta: float = 1.0,
        lr: float = 1e-3,
        width: int = 32,
        iw_samples: int = 64,
        seed: int = 0,
    ):
        if likelihood not in LIKELIHOODS:
            raise ConfigError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
        if likelihood == "bernoulli" and len(data_shape) == 1:
            raise ConfigError(
                "likelihood 'bernoulli' needs images in [0, 1]; use 'gaussian' for 2-D data"
            )
        super().__init__(data_shape, latent_dim, seed)
        self.save_hyperparameters()
        self.encoder = build_critic(self.data_shape, width, "none", d_out=2 * latent_dim)
        self.decoder = build_generator(self.data_shape, latent_dim, width, tanh=False)
        self.n_dims = math.prod(self.data_shape)

    # --- the model ---------------------------------------------------------------------------

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, latent) each
        return mu, logvar

    def reparameterize(
        self, mu: Tensor, logvar: Tensor, noise: torch.Generator | None = None
    ) -> Tensor:
        """z = mu + sigma * eps (item 15)."""
        eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
        return mu + (0.5 * logvar).exp() * eps

    def log_likelihood(self, x: Tensor, out: Tensor) -> Tensor:
        """log p(x|z) per example (item 17), summed over dimensions. x in data space."""
        if self.hparams.likelihood == "bernoulli":
            target = to_zero_to_one(x)
            bce = F.binary_cross_entropy_with_logits(out, target, reduction="none")
            return -bce.flatten(1).sum(1)
        s = self.hparams.sigma
        sq = (x - out).pow(2).flatten(1).sum(1)
        return -sq / (2 * s * s) - self.n_dims * math.log(s * math.sqrt(2 * math.pi))

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """The mean of p(x|z) in data space (the VAE keeps no averaged decoder)."""
        out = self.decoder(z)
        if self.hparams.likelihood == "bernoulli":
            return to_neg_one_to_one(torch.sigmoid(out))
        return out

    def elbo_terms(self, x: Tensor, noise: torch.Generator | None = None) -> dict[str, Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, noise)
        recon = -self.log_likelihood(x, self.decoder(z))  # (B,)
        kl = gaussian_kl(mu, logvar)  # (B,)
        elbo = -(recon + kl)
        return {
            "loss": (recon + self.hparams.beta * kl).mean(),
            "elbo": elbo.mean(),
            "recon": recon.mean(),
            "kl": kl.mean(),
            "bpd": -elbo.mean() / (self.n_dims * math.log(2)),
        }

    @torch.no_grad()
    def iw_bound(self, x: Tensor, k: int) -> Tensor:
        """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x): per example (B,); k = 1 is an
        unbiased single-sample ELBO, and the bound tightens as k grows (Burda et al., Thm 1)."""
        mu, logvar = self.encode(x)
        std = (0.5 * logvar).exp()
        log_w = []
        for _ in range(k):
            z = mu + std * torch.randn_like(mu)
            log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(1)
            log_prior = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
            log_w.append(self.log_likelihood(x, self.decoder(z)) + log_prior - log_q)
        return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)

    # --- Lightning -----------------------------------------------------------------------------

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor:
        terms = self.elbo_terms(batch, self.step_noise())
        self.check_finite(loss=terms["loss"])
        if self.logging_step():
            self.log_dict(
                {f"train/{k}": v.detach() for k, v in terms.items()},
                prog_bar=True,
                sync_dist=True,
                batch_size=len(batch),
            )
        return terms["loss"]

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        terms = self.elbo_terms(batch)
        iw = self.iw_bound(batch, self.hparams.iw_samples).mean()
        terms |= {"iw_bound": iw, "iw_bpd": -iw / (self.n_dims * math.log(2))}
        self.log_dict(
            {f"{self.eval_stage}/{k}": v for k, v in terms.items()},
            sync_dist=True,
            batch_size=len(batch),
        )

    test_step = validation_step

    # --- pictures: reconstructions beside inputs, and a latent interpolation ---------------------

    @torch.no_grad()
    def extra_pictures(self, x: Tensor) -> dict[str, Tensor]:
        """Image batches for the picture callback, from a few held-out inputs x (N, ...)."""
        x = x[:8].to(self.device)
        mu, _ = self.encode(x)
        recon = self.decode(mu)
        side_by_side = torch.stack([x, recon], 1).flatten(0, 1)  # input, reconstruction, ...
        t = torch.linspace(0, 1, 8, device=self.device)[:, None]
        path = self.decode((1 - t) * mu[0] + t * mu[1])  # from x[0] to x[1] in latent space
        return {"reconstructions": side_by_side, "interpolation": path}
