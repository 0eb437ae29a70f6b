"""The trainer options Lightning would fail on with a traceback, or that would silently
break this template, each refused as one line naming the option."""

from __future__ import annotations

from lightning_gans.errors import ConfigError, require


def check_trainer(trainer) -> None:
    """The trainer options Lightning would fail on with a traceback, as one line each."""
    import torch

    interval = trainer.val_check_interval  # steps, a fraction of an epoch, or a duration
    if isinstance(interval, int | float):
        require(interval > 0, "trainer.val_check_interval", interval, "> 0 or a duration")
    require(trainer.num_nodes >= 1, "trainer.num_nodes", trainer.num_nodes, ">= 1")
    precision = str(trainer.precision)  # "64" and "double" are Lightning's 64-true
    true = precision.endswith("-true") and precision != "32-true" or precision in ("64", "double")
    require(
        not true,
        "trainer.precision",
        precision,
        "32-true, bf16-mixed or 16-mixed (the nets keep fp32 weights; the penalty and the "
        "critic's input are fp32)",
    )
    overfit = trainer.overfit_batches
    require(
        not overfit,
        "trainer.overfit_batches",
        overfit,
        "0 (the DataModule's loaders are its own, restartable ones; for a tiny run use a small "
        "--data.toy_size or image folder)",
    )
    accelerator = trainer.accelerator
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator {accelerator!r}: this machine has no CUDA GPU; "
            "valid here: auto, cpu"
        )
