"""The theory as code: divergences, the optimal discriminator and the Gaussian KL.

Plain functions on torch tensors, natural log, batched over leading dimensions where natural.
Discrete distributions are probability vectors on one shared support (last dimension). Each
function cites the section of docs/theory.md it implements; that page lists them side by side.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def entropy(p: Tensor) -> Tensor:
    """H(p) = -sum p log p, with 0 log 0 = 0 (docs/theory.md §1)."""
    return torch.special.entr(p).sum(-1)


def cross_entropy(p: Tensor, q: Tensor) -> Tensor:
    """H(p, q) = -sum p log q (docs/theory.md §1); +inf where q = 0 < p."""
    return -torch.special.xlogy(p, q).sum(-1)


def kl(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) = sum p log(p / q) = H(p, q) - H(p) (docs/theory.md §1); +inf where q = 0 < p."""
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def js(p: Tensor, q: Tensor) -> Tensor:
    """JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2, m = (p + q) / 2; in [0, log 2]
    (docs/theory.md §2)."""
    m = (p + q) / 2
    return kl(p, m) / 2 + kl(q, m) / 2


def tv(p: Tensor, q: Tensor) -> Tensor:
    """TV(p, q) = sum |p - q| / 2 = sup_A |P(A) - Q(A)| for discrete p, q (docs/theory.md §2)."""
    return (p - q).abs().sum(-1) / 2


def wasserstein1(
    x: Tensor,
    y: Tensor,
    a: Tensor | None = None,
    b: Tensor | None = None,
    max_iter: int = 2_000_000,
) -> float:
    """Exact W1 between weighted point sets (docs/theory.md §4): the optimal transport cost
    with Euclidean ground cost, solved by POT's network simplex (``ot.emd2``). x (n, d),
    y (m, d); weights a (n,) and b (m,) default to uniform. ``max_iter`` must be large: POT's
    default stops early at a few thousand points and returns a wrong value."""
    import ot

    xs, ys = _points(x), _points(y)
    wa = np.full(len(xs), 1 / len(xs)) if a is None else a.detach().double().cpu().numpy()
    wb = np.full(len(ys), 1 / len(ys)) if b is None else b.detach().double().cpu().numpy()
    cost = ot.dist(xs, ys, metric="euclidean")
    return float(ot.emd2(wa / wa.sum(), wb / wb.sum(), cost, numItermax=max_iter))


def _points(x: Tensor) -> np.ndarray:
    """(n, ...) -> (n, d) float64 on the CPU, as POT takes them."""
    return x.detach().double().reshape(len(x), -1).cpu().numpy()


def sliced_wasserstein1(x: Tensor, y: Tensor, n_projections: int = 128, seed: int = 0) -> float:
    """Sliced W1 (POT, order p = 1): the mean over random directions of the 1-D W1 between the
    projected sets, a lower bound on W1 (docs/theory.md §5). POT's default p = 2 is sliced W2,
    which can exceed W1."""
    import ot

    xs = x.detach().double().reshape(len(x), -1).cpu().numpy()
    ys = y.detach().double().reshape(len(y), -1).cpu().numpy()
    return float(
        ot.sliced_wasserstein_distance(xs, ys, n_projections=n_projections, p=1, seed=seed)
    )


def wasserstein1_1d(
    u: Tensor, v: Tensor, u_weights: Tensor | None = None, v_weights: Tensor | None = None
) -> Tensor:
    """Closed-form W1 on the real line: the area between the two CDFs, int |F_u - F_v| dx."""
    uw = torch.full_like(u, 1 / len(u)) if u_weights is None else u_weights / u_weights.sum()
    vw = torch.full_like(v, 1 / len(v)) if v_weights is None else v_weights / v_weights.sum()
    points = torch.cat([u, v])
    order = points.argsort()
    mass = torch.cat([uw, -vw])[order]  # +u, -v: the running sum is F_u - F_v
    gaps = points[order].diff()
    return (mass.cumsum(0)[:-1].abs() * gaps).sum()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag sigma^2) || N(0, I)) = -1/2 sum (1 + log sigma^2 - mu^2 - sigma^2), summed
    over the last dimension (docs/theory.md §8.3). The VAE calls this; nothing re-derives it."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)


def optimal_discriminator(p_data: Tensor, p_g: Tensor) -> Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)) for a fixed G (docs/theory.md §3); 1/2 where
    both are 0."""
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny), 0.5)


def gan_value(d: Tensor, p_data: Tensor, p_g: Tensor) -> Tensor:
    """V(D, G) = E_{p_data}[log D] + E_{p_g}[log(1 - D)] on a discrete support (docs/theory.md §3).
    With d = optimal_discriminator(p_data, p_g) this is C(G) = -log 4 + 2 JS (docs/theory.md §3)."""
    return (torch.special.xlogy(p_data, d) + torch.special.xlogy(p_g, 1 - d)).sum(-1)
