"""Sample pictures into the run directory (and W&B) while a model trains."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from lightning_gans.callbacks.pictures import image_grid, scatter_2d
from lightning_gans.errors import require
from lightning_gans.files import atomic_write

N_POINTS_2D = 1024


class SamplePictures(L.Callback):
    """Every ``every_n_steps`` generator steps and at the end of training, draws the model's
    fixed latent batch (the same z for the whole run, so progress is visible) and writes
    ``<run>/samples/step_XXXXXX.png``; 2-D sets get samples over data on the critic's contour,
    models with an encoder also reconstructions. Runs on rank 0 only, under no_grad and in eval
    mode, outside the DDP wrapper (docs/design.md#pictures-never-change-the-model).

    Args:
        every_n_steps: generator steps between pictures (0: only at the end).
    """

    def __init__(self, every_n_steps: int = 500):
        require(
            every_n_steps >= 0, "samples.every_n_steps", every_n_steps, ">= 0 (0: at the end only)"
        )
        self.every_n_steps = every_n_steps
        self.last_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        step = trainer.global_step
        if self.every_n_steps > 0 and step % self.every_n_steps == 0:
            self.draw(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        self.draw(trainer, pl_module)

    @rank_zero_only
    @torch.no_grad()
    def draw(self, trainer: L.Trainer, pl_module) -> None:
        step = trainer.global_step
        if step == self.last_step:
            return
        self.last_step = step
        was_training = pl_module.training
        pl_module.eval()  # batch norm must not learn from (or normalise by) 8 pictures
        try:
            pictures = {"samples": self.picture(trainer, pl_module)}
            pictures |= self.reconstructions(trainer, pl_module)
        finally:
            pl_module.train(was_training)
        dirpath = Path(trainer.default_root_dir) / "samples"
        dirpath.mkdir(parents=True, exist_ok=True)
        for name, picture in pictures.items():
            prefix = "" if name == "samples" else f"{name}_"
            # whole or not at all: a full disk leaves no half picture
            atomic_write(
                dirpath / f"{prefix}step_{step:06d}.png", partial(picture.save, format="PNG")
            )
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                for name, picture in pictures.items():
                    logger.log_image(name, [picture], step=step)

    def reconstructions(self, trainer: L.Trainer, pl_module) -> dict[str, Image.Image]:
        """For models with ``encode`` (the VAE): held-out images beside their reconstructions,
        and the decoded straight path in latent space between the first two."""
        val_set = getattr(trainer.datamodule, "val_set", None)
        if not hasattr(pl_module, "encode") or val_set is None or len(pl_module.data_shape) != 3:
            return {}
        x = torch.stack([val_set[i] for i in range(min(8, len(val_set)))]).to(pl_module.device)
        mu, _ = pl_module.encode(x)
        pairs = torch.stack([x, pl_module.decode(mu)], 1).flatten(0, 1)  # input, recon, ...
        t = torch.linspace(0, 1, 8, device=pl_module.device)[:, None]
        path = pl_module.decode((1 - t) * mu[0] + t * mu[1])
        return {"reconstructions": image_grid(pairs, nrow=2), "interpolation": image_grid(path, 8)}

    def picture(self, trainer: L.Trainer, pl_module) -> Image.Image:
        samples = pl_module.sample(z=pl_module.fixed_z)
        if samples.dim() == 4:
            return image_grid(samples)
        # 2-D: more points than the fixed batch, from a fixed seed
        noise = torch.Generator().manual_seed(pl_module.hparams.seed)
        samples = pl_module.sample(
            z=torch.randn(N_POINTS_2D, pl_module.latent_dim, generator=noise)
        )
        data = trainer.datamodule.val_set.x[:N_POINTS_2D] if trainer.datamodule else samples[:0]
        critic = getattr(pl_module, "critic", None)
        score = None if critic is None else lambda x: critic(x.to(pl_module.device))
        title = f"{type(pl_module).__name__}, generator step {trainer.global_step}"
        return scatter_2d(data, samples, score, title)
