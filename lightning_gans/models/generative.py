"""What every model shares: a fixed latent batch for pictures, ``sample(n)``, the data's shape,
the per-step random streams and the checks every training step makes."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss; the weights were not updated with it."""


class GenerativeModule(L.LightningModule):
    """Base of every model: ``sample(n)`` in data space, and a fixed latent batch (a buffer, so
    it is checkpointed) from which every sample picture of a run is drawn."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int, seed: int, n_fixed: int = 64):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        fixed = torch.randn(n_fixed, latent_dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", fixed)  # (n_fixed, latent_dim)

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """z -> data space; ``ema``: with averaged weights where the model keeps them."""
        raise NotImplementedError

    @property
    def eval_stage(self) -> str:
        """``val`` or ``test``: the prefix of the figures an evaluation step logs."""
        return "test" if self._trainer is not None and self.trainer.testing else "val"

    @torch.no_grad()
    def sample(self, n: int | None = None, z: Tensor | None = None, ema: bool = True) -> Tensor:
        """n samples (or one per row of z) in data space: images in [-1, 1], points as they are;
        from the averaged generator when the model keeps one, unless ``ema=False``."""
        if z is None:
            z = torch.randn(n, self.latent_dim, device=self.device)
        was_training = self.training
        self.eval()  # batch norm uses its running statistics, as at deployment
        try:
            return self.decode(z.to(self.device), ema=ema)
        finally:
            self.train(was_training)

    def step_seed(self) -> int:
        """The seed of one training step, a function of (seed, step, rank) only, so a resumed
        run draws exactly what the uninterrupted run drew (PITFALLS D) and ranks differ."""
        seed = (self.hparams.seed * 1_000_003 + self.global_step) * 1_009 + self.global_rank
        return seed % 2**63

    def step_noise(self) -> torch.Generator:
        """The random stream of one training step (``step_seed``), on the model's device."""
        return torch.Generator(self.device).manual_seed(self.step_seed())

    def randn(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.randn(*shape, generator=noise, device=self.device)

    def rand(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.rand(*shape, generator=noise, device=self.device)

    def logging_step(self) -> bool:
        """Whether Lightning writes this step's training metrics (every ``log_every_n_steps``).
        ``self.log`` on the other steps is thrown away, yet it builds Lightning's result objects
        every time (measured: 0.69 s of 5.1 s over 100 toy8 GAN iterations on a CPU), so the
        models log only on these steps."""
        connector = getattr(self._trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs

    def check_finite(self, **losses: Tensor) -> None:
        """Stop before a NaN/inf loss reaches the weights; checkpoints on disk stay good."""
        values = torch.stack([v.detach().float() for v in losses.values()])
        if not torch.isfinite(values).all():
            bad = ", ".join(f"{k} = {v.item()}" for k, v in losses.items() if not torch.isfinite(v))
            raise NonFiniteLossError(
                f"non-finite loss at generator step {self.global_step}: {bad}; "
                "training stopped, the last checkpoint is intact"
            )
