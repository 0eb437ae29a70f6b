"""The trainer options Lightning would fail on with a traceback, or that would silently
break this template, each refused as one line naming the option."""

from __future__ import annotations

from lightning_gans.errors import ConfigError, plain_name, require


def trainer_error(e: BaseException) -> ConfigError:
    """Lightning's refusal of a ``--trainer.*`` value, as the one line ``trainer: <its
    words>``."""
    return ConfigError(f"trainer: {' '.join(str(e).split())}")


def check_run_options(config) -> None:
    """The top-level seed and ``--run.name``, which Lightning and the run directory would take
    as they are."""
    seed = config.get("seed_everything")
    if not isinstance(seed, bool) and seed is not None:  # true: a random seed, recorded
        require(0 <= seed < 2**32, "seed_everything", seed, "in [0, 2**32) or true/false")
    root = str(config.run.root)
    require("://" not in root, "run.root", repr(root),
            "a local or shared directory (a run's files are written in place; copy the run "
            "to remote storage afterwards)")  # fmt: skip
    name = config.run.name
    if name is not None:
        require(plain_name(name), "run.name", repr(name),
                "a plain directory name (it goes under run.root)")  # fmt: skip


def check_trainer(trainer) -> None:
    """The trainer options Lightning would fail on with a traceback, as one line each."""
    import torch

    interval = trainer.val_check_interval  # steps, a fraction of an epoch, or a duration
    if isinstance(interval, int | float):
        require(interval > 0, "trainer.val_check_interval", interval, "> 0 or a duration")
    require(trainer.num_nodes >= 1, "trainer.num_nodes", trainer.num_nodes, ">= 1")
    every = trainer.check_val_every_n_epoch
    require(every is None or every >= 1, "trainer.check_val_every_n_epoch", every, ">= 1 or null")
    log_every = trainer.log_every_n_steps
    require(log_every is None or log_every >= 0, "trainer.log_every_n_steps", log_every, ">= 0")
    sanity = trainer.num_sanity_val_steps
    require(sanity is None or sanity >= -1, "trainer.num_sanity_val_steps", sanity, ">= -1 (all)")
    require(
        not trainer.barebones,
        "trainer.barebones",
        trainer.barebones,
        "false (it turns off the loggers and checkpoints a run is made of; for speed, "
        "--run.logger none and --trainer.enable_progress_bar false)",
    )
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
