"""Improved precision and recall (Kynkaanniemi et al. 2019), in a feature space.

Each set's manifold is estimated as the union of balls around its points, each ball reaching the
point's k-th nearest neighbour in the same set (k = 3 in the paper). Precision is the share of
generated points inside the real manifold (are the samples realistic?); recall the share of real
points inside the generated manifold (do the samples cover the data?).
"""

from __future__ import annotations

import torch
from torch import Tensor


def kth_neighbour_radius(x: Tensor, k: int) -> Tensor:
    """Distance from each row of x (N, D) to its k-th nearest other row. (N,)"""
    d = torch.cdist(x, x)  # (N, N); the diagonal 0 is each point itself
    return d.topk(k + 1, dim=1, largest=False).values[:, k]


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real``, both (N, D) features."""
    real, fake = real.double(), fake.double()
    d = torch.cdist(fake, real)  # (F, R)
    precision = (d <= kth_neighbour_radius(real, k)[None, :]).any(1).double().mean()
    recall = (kth_neighbour_radius(fake, k)[None, :] >= d.T).any(1).double().mean()
    return float(precision), float(recall)
