"""Models as a fork writes them: subclasses of the template's that log figures of their own."""

from __future__ import annotations

from lightning_gans import GAN


class EpochFiguresGAN(GAN):
    """A GAN that logs its own figures in each ``on_step``/``on_epoch`` combination Lightning
    documents, and keeps the value of every step so that a test can compute the means."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.values: list[tuple[int, int, float]] = []  # (epoch, step after it, value)

    def training_step(self, batch, batch_idx: int) -> None:
        value = float(self.global_step) + 0.25
        super().training_step(batch, batch_idx)
        self.values.append((self.current_epoch, self.global_step, value))
        self.log("fork/step_only", value, on_step=True, on_epoch=False, batch_size=1)
        self.log("fork/epoch_only", value, on_step=False, on_epoch=True, batch_size=1)
        self.log("fork/both", value, on_step=True, on_epoch=True, prog_bar=True, batch_size=1)
