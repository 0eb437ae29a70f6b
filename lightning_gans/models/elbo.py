"""The pieces of the VAE's objective and its bounds (Kingma & Welling 2014; docs/theory.md §8).

Signs: log-likelihoods and bounds are in nats per example, higher is better; ``recon`` =
-E_q[log p(x|z)] and ``kl`` are positive.

What a bound bounds depends on the likelihood, and its figures are named for it
(docs/theory.md §8.4):
    binarized  log P(x) of dynamically binarised pixels (x ~ Bernoulli(grey level), redrawn each
               time an image is seen): a probability, so nats and bits/dim, as MNIST papers do
    logistic   log P(x) of the 8-bit image under a discretised logistic per pixel (mean and
               scale from the decoder; PixelCNN++'s edges): nats and bits/dim, comparable to
               8-bit bits/dim in the literature
    gaussian   log p(x) of a density in data units (points, or images in [-1, 1]): nats only;
               not comparable to any published bits/dim
    bernoulli  cross-entropy to grey levels, which is not a density: its figures are called
               ``objective``, never a bound or bits/dim
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gans.data.datasets import to_neg_one_to_one, to_zero_to_one
from lightning_gans.errors import ConfigError

LIKELIHOODS = ("binarized", "logistic", "gaussian", "bernoulli")
BERNOULLI = ("bernoulli", "binarized")  # logits of a Bernoulli per pixel, to grey or 0/1 targets
DISCRETE = ("binarized", "logistic")  # a probability of the data: bits/dim mean something
LEVELS = 256  # 8-bit images: levels 2k/255 - 1 in data space, bins 2/255 wide


def check_likelihood(likelihood: str, data_shape: tuple[int, ...]) -> None:
    """Points get a density (gaussian); images any of the four."""
    valid = ("gaussian",) if len(data_shape) == 1 else LIKELIHOODS
    if likelihood not in valid:
        raise ConfigError(f"likelihood {likelihood!r} for this data; valid: {', '.join(valid)}")


def decoder_shape(data_shape: tuple[int, ...], likelihood: str) -> tuple[int, ...]:
    """The logistic decoder returns a mean and a log-scale per pixel: twice the channels."""
    if likelihood != "logistic":
        return tuple(data_shape)
    return (2 * data_shape[0], *data_shape[1:])


def observe(x: Tensor, likelihood: str, noise: torch.Generator | None = None) -> Tensor:
    """The data the likelihood scores: binarized draws x ~ Bernoulli(grey level) (in data
    space, -1 or 1), a fresh draw per ``noise``; logistic rounds x to its 8-bit level (exact
    for 8-bit images, the 8-bit version of a resized one); the others take x as it is."""
    if likelihood == "logistic":
        return torch.round(to_zero_to_one(x) * (LEVELS - 1)) * (2 / (LEVELS - 1)) - 1
    if likelihood != "binarized":
        return x
    return to_neg_one_to_one(torch.bernoulli(to_zero_to_one(x), generator=noise))


def mean_in_data_space(out: Tensor, likelihood: str) -> Tensor:
    """The mean of p(x|z) from the decoder's output, in data space."""
    if likelihood in BERNOULLI:
        return to_neg_one_to_one(out.sigmoid())
    if likelihood == "logistic":
        return out.chunk(2, dim=1)[0].clamp(-1, 1)
    return out


def log_likelihood(x: Tensor, out: Tensor, likelihood: str, sigma: float) -> Tensor:
    """log p(x|z) per example (B,), summed over dimensions (docs/theory.md §8.4). x in data space;
    ``out`` is the decoder's output: logits, (mean, log-scale) or Gaussian means (fixed sigma)."""
    if likelihood in BERNOULLI:
        bce = F.binary_cross_entropy_with_logits(out, to_zero_to_one(x), reduction="none")
        return -bce.flatten(1).sum(1)
    if likelihood == "logistic":
        return discretized_logistic(x, *out.chunk(2, dim=1)).flatten(1).sum(1)
    sq = (x - out).pow(2).flatten(1).sum(1)
    return -sq / (2 * sigma * sigma) - x[0].numel() * math.log(sigma * math.sqrt(2 * math.pi))


def discretized_logistic(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """log P(x) per pixel of an 8-bit level x in [-1, 1]: the logistic's mass on x's bin
    [x - 1/255, x + 1/255], the lowest and highest bins reaching to -inf and +inf, so the 256
    probabilities sum to 1 (Salimans et al. 2017, eq. 2)."""
    log_scale = log_scale.clamp(min=-7.0)
    half = 1.0 / (LEVELS - 1)
    inv_s = torch.exp(-log_scale)
    upper, lower = inv_s * (x - mean + half), inv_s * (x - mean - half)
    log_cdf_upper = upper - F.softplus(upper)  # log sigmoid: the lowest bin
    log_sf_lower = -F.softplus(lower)  # log (1 - sigmoid): the highest bin
    mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    mid = inv_s * (x - mean)  # where the mass underflows: density times the bin's width
    log_density = mid - log_scale - 2 * F.softplus(mid) + math.log(2 * half)
    inner = torch.where(mass > 1e-5, mass.clamp(min=1e-12).log(), log_density)
    return torch.where(x < -1 + half, log_cdf_upper, torch.where(x > 1 - half, log_sf_lower, inner))


def named(
    nats: Tensor, likelihood: str, data_shape: tuple[int, ...], iw: bool = False
) -> dict[str, Tensor]:
    """A bound (nats per example) under the name of what it bounds, with bits/dim where the
    likelihood is a probability of the data: ``elbo`` / ``iw_bound`` (+ ``bpd`` / ``iw_bpd``),
    or ``objective`` / ``iw_objective`` for grey-level cross-entropy."""
    if likelihood == "bernoulli":
        return {"iw_objective" if iw else "objective": nats}
    figures = {"iw_bound" if iw else "elbo": nats}
    if likelihood in DISCRETE:
        figures["iw_bpd" if iw else "bpd"] = -nats / (math.prod(data_shape) * math.log(2))
    return figures


def reparameterize(mu: Tensor, logvar: Tensor, noise: torch.Generator | None = None) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): gradients reach mu and sigma (docs/theory.md §8.2)."""
    eps = torch.randn(mu.shape, generator=noise, device=mu.device, dtype=mu.dtype)
    return mu + (0.5 * logvar).exp() * eps


def importance_weighted_bound(
    x: Tensor,
    mu: Tensor,
    logvar: Tensor,
    log_px_given_z: Callable[[Tensor, Tensor], Tensor],
    k: int,
    noise: torch.Generator | None = None,
) -> Tensor:
    """log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) = N(mu, sigma^2), per example (B,).
    k = 1 is an unbiased one-sample ELBO; the bound tightens as k grows (Burda et al. 2016,
    Theorem 1)."""
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(0.0, 1.0)
    log_w = []
    for _ in range(k):
        z = reparameterize(mu, logvar, noise)  # z_i ~ q(z|x), drawn from ``noise``
        log_w.append(log_px_given_z(x, z) + prior.log_prob(z).sum(1) - q.log_prob(z).sum(1))
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)
