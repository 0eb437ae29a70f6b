"""The pieces of the VAE's objective and its bounds (Kingma & Welling 2014; docs/theory.md §8).

Signs: log-likelihoods and bounds are in nats per example, higher is better; ``recon`` =
-E_q[log p(x|z)] and ``kl`` are positive.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.data.datasets import to_neg_one_to_one, to_zero_to_one
from lightning_gans.errors import ConfigError

LIKELIHOODS = ("bernoulli", "gaussian")


def check_likelihood(likelihood: str, data_shape: tuple[int, ...]) -> None:
    """Bernoulli needs pixels in [0, 1]: images only."""
    valid = ("gaussian",) if len(data_shape) == 1 else LIKELIHOODS
    if likelihood not in valid:
        raise ConfigError(f"likelihood {likelihood!r} for this data; valid: {', '.join(valid)}")


def mean_in_data_space(out: Tensor, likelihood: str) -> Tensor:
    """The mean of p(x|z) from the decoder's output: sigmoid of Bernoulli logits, mapped to
    [-1, 1]; Gaussian means as they are."""
    return to_neg_one_to_one(out.sigmoid()) if likelihood == "bernoulli" else out


def reparameterize(mu: Tensor, logvar: Tensor, noise: torch.Generator | None = None) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): gradients reach mu and sigma (docs/theory.md §8.2)."""
    eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def log_likelihood(x: Tensor, out: Tensor, likelihood: str, sigma: float) -> Tensor:
    """log p(x|z) per example (B,), summed over dimensions (docs/theory.md §8.4). x in data space;
    ``out`` is the decoder's output: Bernoulli logits, or Gaussian means with fixed ``sigma``."""
    if likelihood == "bernoulli":
        bce = F.binary_cross_entropy_with_logits(out, to_zero_to_one(x), reduction="none")
        return -bce.flatten(1).sum(1)
    sq = (x - out).pow(2).flatten(1).sum(1)
    return -sq / (2 * sigma * sigma) - x[0].numel() * math.log(sigma * math.sqrt(2 * math.pi))


def importance_weighted_bound(
    mu: Tensor, logvar: Tensor, log_px_given_z: Callable[[Tensor], Tensor], k: int
) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) = N(mu, sigma^2), per example (B,).
    k = 1 is an unbiased one-sample ELBO; the bound tightens as k grows (Burda et al. 2016,
    Theorem 1)."""
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(0.0, 1.0)
    log_w = []
    for _ in range(k):
        z = q.sample()
        log_w.append(log_px_given_z(z) + prior.log_prob(z).sum(1) - q.log_prob(z).sum(1))
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)
