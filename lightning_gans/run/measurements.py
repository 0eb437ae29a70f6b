"""What is measured while a model trains: the transport distance its critic estimates, and
FID/KID of its samples."""

from __future__ import annotations

import lightning as L
import torch

from lightning_gans.data import SPLITS, first_n
from lightning_gans.errors import ConfigError, require
from lightning_gans.metrics.features import FEATURES
from lightning_gans.metrics.image_quality import ImageQuality
from lightning_gans.metrics.theory import wasserstein1


class TransportDistance(L.Callback):
    """At the end of each validation, the truth the critic's estimate is checked against:
    ``val/exact_w1``, exact W1 (POT) between ``n_points`` samples and held-out data for 2-D sets;
    for images, where exact OT is too slow to repeat, ``val/sliced_w1_lower_bound`` (a lower
    bound on W1, not an estimate of it; docs/theory.md §5). For a Wasserstein critic also
    ``val/critic_emd_over_exact_w1`` on the same points: ~1 for a 1-Lipschitz critic at its
    optimum, the unknown K for a clipped one (docs/theory.md §6). Every rank computes the same
    value, so every rank logs the same keys.

    Args:
        n_points: samples and held-out points per measurement (0: off).
        seed: seed of the samples' latent vectors.
    """

    def __init__(self, n_points: int = 2000, seed: int = 0):
        require(n_points >= 0, "transport.n_points", n_points, ">= 0 (0: off)")
        self.n_points = n_points
        self.seed = seed

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.measure(trainer, pl_module, "val_set", "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.measure(trainer, pl_module, "test_set", "test")

    def measure(self, trainer: L.Trainer, pl_module, split: str, stage: str) -> None:
        val_set = getattr(trainer.datamodule, split, None)
        if trainer.sanity_checking or val_set is None or self.n_points <= 0:
            return
        real = first_n(val_set, self.n_points)
        n = len(real)
        noise = torch.Generator().manual_seed(self.seed)
        z = torch.randn(n, pl_module.latent_dim, generator=noise)
        fake = pl_module.sample(z=z).float().cpu()
        if real.dim() == 2:
            w1 = wasserstein1(fake, real)
            pl_module.log(f"{stage}/exact_w1", w1)
            critic = getattr(pl_module, "critic", None)
            if critic is not None:
                with torch.no_grad():
                    dev = pl_module.device
                    m = pl_module.critic_metrics(critic(real.to(dev)), critic(fake.to(dev)))
                if "critic_emd" in m:
                    pl_module.log(f"{stage}/critic_emd_over_exact_w1", m["critic_emd"].item() / w1)
        else:
            import ot

            sliced = ot.sliced_wasserstein_distance(
                real.flatten(1).double().numpy(),
                fake.flatten(1).double().numpy(),
                n_projections=128,
                seed=self.seed,
            )
            pl_module.log(f"{stage}/sliced_w1_lower_bound", float(sliced))


class PeriodicImageQuality(L.Callback):
    """Every ``every_n_steps`` generator steps, FID and KID of ``n_samples`` samples against
    ``n_real`` images of the ``reference`` split, logged as ``val/domain_fid``, ``val/domain_kid``
    (or Inception's ``val/fid``, ``val/kid``, ``val/inception_score``) beside ``val/fid_n_fake``
    and ``val/fid_n_real``: FID is biased in N, so a figure is read with its counts. Published
    CIFAR-10 FIDs compare 50k samples with the 50k training images (``reference: train``).
    The reference features are computed once, at setup. Images only. Under DDP rank 0 alone
    samples, embeds and computes: one figure per evaluation, from the same samples as a single
    process would draw (docs/design.md#fid-under-ddp).

    Args:
        every_n_steps: generator steps between evaluations (0: off).
        n_samples: samples per evaluation.
        features: domain (offline; ``make classifier`` first) or inception
            (``make fetch-weights`` first).
        reference: the real images compared with: train, val or test split.
        n_real: how many of them (default: n_samples); more than the split holds is an error.
    """

    def __init__(
        self,
        every_n_steps: int = 0,
        n_samples: int = 1000,
        features: str = "domain",
        reference: str = "val",
        n_real: int | None = None,
    ):
        require(every_n_steps >= 0, "fid.every_n_steps", every_n_steps, ">= 0 (0: off)")
        require(n_samples >= 2, "fid.n_samples", n_samples, ">= 2")
        require(features in FEATURES, "fid.features", repr(features), " or ".join(FEATURES))
        require(reference in SPLITS, "fid.reference", repr(reference), " or ".join(SPLITS))
        require(n_real is None or n_real >= 2, "fid.n_real", n_real, ">= 2 or null")
        self.every = every_n_steps
        self.n = n_samples
        self.features = features
        self.reference = reference
        self.n_real = n_real or n_samples
        self.quality = None

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        data = trainer.datamodule
        if stage != "fit" or self.every <= 0 or len(pl_module.data_shape) != 3:
            return
        data.setup(stage)
        split = getattr(data, f"{self.reference}_set")
        if len(split) < self.n_real:
            raise ConfigError(
                f"fid.n_real {self.n_real}: the {self.reference} split holds {len(split)} "
                "images; lower --fid.n_real or choose another --fid.reference (train, val, test)"
            )
        h = data.hparams
        self.quality = ImageQuality(
            self.features, h.dataset, h.image_size, pl_module.data_shape[0], device=pl_module.device
        )
        if trainer.is_global_zero:  # every rank checks the settings, rank 0 alone measures
            self.quality.set_real(first_n(split, self.n_real))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        if self.quality is None or not trainer.is_global_zero or trainer.global_step % self.every:
            return  # the other ranks go on and wait for rank 0 at their next collective
        z = torch.randn(self.n, pl_module.latent_dim, generator=torch.Generator().manual_seed(0))
        self.quality.device = pl_module.device
        self.quality.net.to(pl_module.device)
        scores = self.quality(None, pl_module.sample(z=z))
        scores |= {"fid_n_fake": self.n, "fid_n_real": self.n_real}
        # straight to the loggers: self.log from a train-batch hook would be dropped unless the
        # step happened to be a multiple of log_every_n_steps
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in scores.items()}, trainer.global_step)
