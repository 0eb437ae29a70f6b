"""FID and KID (torchmetrics) between real and generated images, with one feature network.

FID (Heusel et al. 2017): ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) over features.
KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel, mean (and std) over
random subsets. Improved precision and recall (k = 3; metrics/precision_recall.py) in the same
features. With Inception features also the Inception Score of the generated images (Salimans et
al. 2016): exp E_x KL(p(y|x) || p(y)) over 10 splits, from the same network's unbiased logits.
Images are embedded once and the statistics are torchmetrics' own; the keys say which network
was used: ``fid``/``kid``/``inception_score`` for Inception, ``domain_fid``/``domain_kid``
otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from lightning_gans.data.datasets import DataError, to_zero_to_one
from lightning_gans.errors import NonFiniteLossError
from lightning_gans.metrics.features import FEATURES, load_domain_features, load_inception
from lightning_gans.metrics.precision_recall import precision_recall


class Precomputed(nn.Module):
    """Hands torchmetrics features we computed ourselves, so each image is embedded once."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, feats: Tensor) -> Tensor:
        return feats


def inception_score(logits: Tensor, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """Mean and std over ``splits`` of exp E_x KL(p(y|x) || p(y)), p(y|x) = softmax(logits):
    torchmetrics' InceptionScore on logits we computed (it shuffles with the seeded generator)."""
    metric = InceptionScore(Precomputed(logits.shape[1]), splits=splits, sync_on_compute=False)
    metric.update(logits)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


class ImageQuality:
    """``quality(real, fake)`` -> {"domain_fid", "domain_kid", "domain_kid_std"} (or the
    Inception ``fid``, ``kid``, ``kid_std``) for image batches in [-1, 1]."""

    def __init__(
        self,
        features: str,
        dataset: str,
        image_size: int,
        channels: int,
        cache: str = "data",
        device: str | torch.device = "cpu",
    ):
        if features not in FEATURES:
            raise DataError(f"unknown features {features!r}; valid: {', '.join(FEATURES)}")
        self.inception = features == "inception"
        self.prefix = "" if self.inception else "domain_"
        self.device = torch.device(device)
        if self.inception:
            self.net = load_inception(cache, dataset)
            self.dim = 2048
        else:
            self.net = load_domain_features(dataset, image_size, channels, cache)
            self.dim = self.net.num_features
        self.net = self.net.to(self.device)
        self.real_feats: Tensor | None = None

    @torch.no_grad()
    def embed(self, images: Tensor | Iterable[Tensor], batch_size: int = 200) -> Tensor:
        """(N, C, H, W) in [-1, 1], whole or as batches -> (N, dim) float64 features on the CPU.
        Only the features are kept: memory does not grow with N beyond them. NaN/inf images or
        features are an error here, before torchmetrics' eigendecomposition meets them (MKL
        segfaults on a NaN matrix)."""
        chunks = images.split(batch_size) if isinstance(images, Tensor) else images
        out = []
        for chunk in chunks:
            if not torch.isfinite(chunk).all():
                raise NonFiniteLossError("non-finite images: FID/KID not computed")
            chunk = to_zero_to_one(chunk.float().to(self.device)).clamp(0, 1)
            if self.inception:  # uint8 RGB, as the TF graph was fed
                chunk = (chunk * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
            out.append(self.net(chunk).reshape(len(chunk), -1).double().cpu())
        feats = torch.cat(out)
        if not torch.isfinite(feats).all():
            raise NonFiniteLossError("non-finite features: FID/KID not computed")
        return feats

    def set_real(self, real: Tensor | Iterable[Tensor]) -> None:
        """Embeds the reference set once (the periodic callback reuses it)."""
        self.real_feats = self.embed(real)

    def __call__(
        self, real: Tensor | Iterable[Tensor] | None, fake: Tensor | Iterable[Tensor], seed: int = 0
    ) -> dict[str, float]:
        """Scores of ``fake`` against ``real`` (or the set of ``set_real``); either may be one
        tensor or an iterable of batches (``GenerativeModule.samples``, ``data.batches``)."""
        real_feats = self.embed(real) if real is not None else self.real_feats
        if real_feats is None:
            raise ValueError("no real images: pass them or call set_real first")
        fake_feats = self.embed(fake)
        # computed by one process on features it holds: no gathering across ranks
        fid = FrechetInceptionDistance(Precomputed(self.dim), sync_on_compute=False)
        fid.update(real_feats, real=True)
        fid.update(fake_feats, real=False)
        subset = min(1000, len(real_feats) // 2, len(fake_feats) // 2)  # subsets must differ
        kid = KernelInceptionDistance(
            Precomputed(self.dim), subsets=100, subset_size=subset, sync_on_compute=False
        )
        kid.update(real_feats, real=True)
        kid.update(fake_feats, real=False)
        with torch.random.fork_rng():  # KID draws its subsets from the global generator
            torch.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
        p = self.prefix
        precision, recall = precision_recall(real_feats, fake_feats, k=3)
        scores = {
            f"{p}fid": float(fid.compute()),
            f"{p}kid": float(kid_mean),
            f"{p}kid_std": float(kid_std),
            f"{p}precision": precision,
            f"{p}recall": recall,
        }
        if self.inception:  # the unbiased logits are the pool features times fc's weights
            logits = fake_feats @ self.net.fc.weight.detach().double().cpu().T
            scores["inception_score"], scores["inception_score_std"] = inception_score(logits)
        return scores
