"""Callbacks that every run gets: sample pictures into the run directory (and W&B)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from lightning_gans.data import first_n
from lightning_gans.pictures import image_grid, scatter_2d
from lightning_gans.theory import wasserstein1

N_POINTS_2D = 1024


class SamplePictures(L.Callback):
    """Every ``every_n_steps`` generator steps and at the end of training, draws the model's fixed
    latent batch (the same z for the whole run, so progress is visible) and writes
    ``<run>/samples/step_XXXXXX.png``; 2-D sets get samples over data on the critic's contour.
    Runs on rank 0 only, under no_grad, outside the DDP wrapper (PITFALLS 7, 9)."""

    def __init__(self, dirpath: str, every_n_steps: int = 500):
        self.dirpath = Path(dirpath)
        self.every_n_steps = every_n_steps
        self.last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step % self.every_n_steps == 0:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self.draw(trainer, pl_module)

    @rank_zero_only
    def draw(self, trainer: L.Trainer, pl_module) -> None:
        step = trainer.global_step
        if step == self.last_step:
            return
        self.last_step = step
        pictures = {"samples": self.picture(trainer, pl_module), **self.extras(trainer, pl_module)}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        for name, picture in pictures.items():
            prefix = "" if name == "samples" else f"{name}_"
            path = self.dirpath / f"{prefix}step_{step:06d}.png"
            picture.save(path)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, picture in pictures.items():
                    logger.log_image(name, [picture], step=step)

    def extras(self, trainer: L.Trainer, pl_module) -> dict[str, Image.Image]:
        """Model-specific pictures of held-out images (the VAE's reconstructions)."""
        val_set = getattr(trainer.datamodule, "val_set", None)
        if not hasattr(pl_module, "extra_pictures") or val_set is None:
            return {}
        x = torch.stack([val_set[i] for i in range(min(8, len(val_set)))])
        if x.dim() != 4:
            return {}
        return {
            name: image_grid(imgs, nrow=8 if name == "interpolation" else 2)
            for name, imgs in pl_module.extra_pictures(x).items()
        }

    def picture(self, trainer: L.Trainer, pl_module) -> Image.Image:
        samples = pl_module.sample(z=pl_module.fixed_z)
        if samples.dim() == 4:
            return image_grid(samples)
        with torch.no_grad():  # more points than the fixed batch, from a fixed seed
            z = torch.randn(
                N_POINTS_2D,
                pl_module.latent_dim,
                generator=torch.Generator().manual_seed(pl_module.hparams.seed),
            )
            samples = pl_module.sample(z=z)
        data = trainer.datamodule.val_set.x[:N_POINTS_2D] if trainer.datamodule else samples[:0]
        critic = getattr(pl_module, "critic", None)
        score = None
        if critic is not None:

            def score(x: torch.Tensor) -> torch.Tensor:
                was = critic.training
                critic.eval()
                try:
                    return critic(x.to(pl_module.device))
                finally:
                    critic.train(was)

        title = f"{type(pl_module).__name__}, generator step {trainer.global_step}"
        return scatter_2d(data, samples, score, title)


def finish_wandb(trainer: L.Trainer) -> None:
    """Ends the W&B run so that its history is written; Lightning leaves it open."""
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger) and trainer.global_rank == 0:
            logger.experiment.finish()


class TransportDistance(L.Callback):
    """At the end of each validation, the truth the critic's estimate is checked against:
    ``val/exact_w1``, exact W1 (POT) between ``n_points`` samples and held-out data for 2-D sets;
    for images, where exact OT is too slow to repeat, ``val/sliced_w1_lower_bound`` (a lower
    bound on W1, not an estimate of it; PITFALLS I). For a Wasserstein critic also
    ``val/critic_emd_over_exact_w1`` on the same points: ~1 for a 1-Lipschitz critic, the unknown
    K for a clipped one (THEORY.md item 11). Every rank computes the same value: same keys."""

    def __init__(self, n_points: int = 2000, seed: int = 0):
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
    """Every ``every_n_steps`` generator steps, FID and KID of ``n_samples`` samples against the
    held-out split, logged as ``val/domain_fid``, ``val/domain_kid`` (or Inception's ``val/fid``,
    ``val/kid``). The reference features are computed once, at setup. Images only."""

    def __init__(self, every_n_steps: int, n_samples: int = 1000, features: str = "domain"):
        self.every = every_n_steps
        self.n = n_samples
        self.features = features
        self.quality = None

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        data = trainer.datamodule
        if stage != "fit" or self.every <= 0 or len(pl_module.data_shape) != 3:
            return
        from lightning_gans.fid import ImageQuality

        data.setup(stage)
        h = data.hparams
        self.quality = ImageQuality(
            self.features, h.dataset, h.image_size, pl_module.data_shape[0], device=pl_module.device
        )
        self.quality.set_real(first_n(data.val_set, self.n))

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        if self.quality is None or trainer.global_step % self.every:
            return
        z = torch.randn(self.n, pl_module.latent_dim, generator=torch.Generator().manual_seed(0))
        self.quality.device = pl_module.device
        self.quality.net.to(pl_module.device)
        scores = self.quality(None, pl_module.sample(z=z))
        # straight to the loggers: self.log from a train-batch hook would be dropped unless the
        # step happened to be a multiple of log_every_n_steps
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in scores.items()}, trainer.global_step)
