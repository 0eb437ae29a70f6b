"""Improved precision and recall (Kynkaanniemi et al. 2019), in a feature space.

Each set's manifold is estimated as the union of balls around its points, each ball reaching the
point's k-th nearest neighbour in the same set (k = 3 in the paper). Precision is the share of
generated points inside the real manifold (are the samples realistic?); recall the share of real
points inside the generated manifold (do the samples cover the data?).
"""

from __future__ import annotations

import torch
from torch import Tensor

BLOCK = 2048  # rows and columns of one block of distances: 32 MiB in float64, whatever N


def kth_neighbour_radius(x: Tensor, k: int, block: int = BLOCK) -> Tensor:
    """Distance from each row of x (N, D) to its k-th nearest other row, a block of distances
    at a time (the k + 1 smallest so far are kept per row; the smallest, 0, is the row
    itself). (N,)"""
    radii = []
    for rows in x.split(block):
        nearest = torch.empty(len(rows), 0, dtype=x.dtype)
        for cols in x.split(block):
            d = torch.cat([nearest, torch.cdist(rows, cols)], dim=1)
            nearest = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False).values
        radii.append(nearest[:, k])
    return torch.cat(radii)


def inside(points: Tensor, centres: Tensor, radii: Tensor, block: int = BLOCK) -> Tensor:
    """Whether each of ``points`` lies in some ball (centre, radius). (N,) bool"""
    found = []
    for rows in points.split(block):
        hit = torch.zeros(len(rows), dtype=torch.bool)
        for cols, r in zip(centres.split(block), radii.split(block), strict=True):
            hit |= (torch.cdist(rows, cols) <= r[None, :]).any(1)
        found.append(hit)
    return torch.cat(found)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3) -> tuple[float, float]:
    """(precision, recall) of ``fake`` against ``real``, both (N, D) features; distances in
    blocks, as the reference code computes them, so memory does not grow with N^2."""
    real, fake = real.double().cpu(), fake.double().cpu()
    precision = inside(fake, real, kth_neighbour_radius(real, k)).double().mean()
    recall = inside(real, fake, kth_neighbour_radius(fake, k)).double().mean()
    return float(precision), float(recall)
