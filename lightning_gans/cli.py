"""The command line: LightningCLI plus a run directory, default loggers and callbacks.

    python -m lightning_gans fit --config configs/wgan.yaml --trainer.max_steps 200

The data's shape is linked into the model (``data.data_shape -> model.data_shape``), so no
config states it. Every run writes into one directory, printed at the end:
``<run.root>/<run.name>/`` with ``config.yaml``, ``checkpoints/``, ``samples/`` and the logs.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint, RichModelSummary, RichProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.callbacks import (
    PeriodicImageQuality,
    SamplePictures,
    TransportDistance,
    finish_wandb,
)
from lightning_gans.data import GANDataModule
from lightning_gans.errors import ConfigError
from lightning_gans.models.generative import GenerativeModule, NonFiniteLossError
from lightning_gans.preemption import AtomicCheckpointIO, LastCheckpoint
from lightning_gans.tracking import git_commit, make_loggers, make_run_dir


@dataclass
class RunOptions:
    """Where a run writes, how it logs, and how often it saves pictures and checkpoints.

    Args:
        name: run directory name (default ``<model>-<dataset>-<timestamp or SLURM job id>``).
        root: parent of all run directories.
        logger: wandb (offline unless logged in; CSV beside it), csv, tensorboard or none.
        project: W&B project.
        entity: W&B entity (user or team).
        group: W&B group.
        tags: W&B tags.
        sample_every: generator steps between sample pictures (0: only at the end).
        w1_points: points for ``val/exact_w1`` (2-D data) or ``val/sliced_w1_lower_bound``.
        ckpt_every: generator steps between kept checkpoints (``last.ckpt`` is kept as well).
        fid_every: generator steps between FID/KID evaluations (0: off; images only).
        fid_samples: samples (and held-out images) per FID/KID evaluation.
        fid_features: ``domain`` (offline; ``make classifier`` first) or ``inception``
            (``make fetch-weights`` first).
    """

    name: str | None = None
    root: str = "runs"
    logger: str = "wandb"
    project: str = "lightning-gans"
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    sample_every: int = 500
    w1_points: int = 2000
    ckpt_every: int = 1000
    fid_every: int = 0
    fid_samples: int = 1000
    fid_features: str = "domain"


def resolve_checkpoint(path: str | None) -> Path | None:
    """A checkpoint file, or a run directory meaning its ``checkpoints/last.ckpt``."""
    if not path or path in ("last", "best", "hpc", "registry"):  # Lightning's own keywords
        return None
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt" if (p / "checkpoints").is_dir() else p / "last.ckpt"
    if not p.is_file():
        raise ConfigError(
            f"checkpoint {path!r} not found: pass a .ckpt file or a run directory "
            "holding checkpoints/last.ckpt"
        )
    return p


class StepProgressBar(RichProgressBar):
    """Rich progress bar; the run is counted in generator steps, not epochs."""

    def _get_train_description(self, current_epoch: int) -> str:
        return f"epoch {current_epoch}"


class OneLineErrorParser(LightningArgumentParser):
    """A bad flag or value ends with one line naming it, not a page of usage."""

    NOISE = (
        "Given value",
        "Subtypes:",
        "Errors:",
        "- Expected a <class 'NoneType'>",
        "Does not validate against any of the Union subtypes",
    )

    def error(self, message: str, ex: Exception | None = None):
        lines = [ln.strip() for ln in str(message).strip().splitlines() if ln.strip()]
        kept = [ln.removeprefix("- ") for ln in lines if not ln.startswith(self.NOISE)]
        sys.stderr.write(f"error: {' '.join(kept)[:800]} (see --help for the valid options)\n")
        sys.exit(2)


class SaveRunConfig(SaveConfigCallback):
    """Writes the resolved config to the run directory and records it, with the git commit,
    in every logger."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        config = self.parser.dump(self.config, skip_none=False, format="yaml")
        import yaml

        values = {"config": yaml.safe_load(config), "git_commit": git_commit()}
        for logger in trainer.loggers:
            logger.log_hyperparams(values)


class GANCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(RunOptions, "run")
        parser.link_arguments(
            "data.data_shape", "model.init_args.data_shape", apply_on="instantiate"
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        resume = resolve_checkpoint(config.get("ckpt_path"))
        if resume:
            config.ckpt_path = str(resume)
        if resume and not config.run.name and resume.parent.name == "checkpoints":
            self.run_dir = resume.parent.parent  # continue in the run's own directory
        else:
            model = config.model.class_path.rsplit(".", 1)[-1].lower()
            self.run_dir = make_run_dir(
                config.run.root, config.run.name, model, config.data.dataset
            )
        config.trainer.default_root_dir = str(self.run_dir)

    def instantiate_trainer(self, **kwargs):
        config = self.config[self.subcommand] if self.subcommand else self.config
        run = config.run
        if config.trainer.logger in (None, True):  # not set by the user: our defaults
            kwargs["logger"] = make_loggers(
                run.logger, self.run_dir, run.project, run.entity, run.group, run.tags
            )
        self.samples = SamplePictures(str(self.run_dir / "samples"), run.sample_every)
        self.checkpoints = ModelCheckpoint(
            dirpath=str(self.run_dir / "checkpoints"),
            filename="step{step:06d}",
            auto_insert_metric_name=False,
            every_n_train_steps=run.ckpt_every,
            save_top_k=-1,
            save_last=True,
            enable_version_counter=False,  # LastCheckpoint writes last.ckpt too: no last-v1.ckpt
        )
        user = self._get(self.config_init, "trainer", default={}).get("callbacks") or []
        last = LastCheckpoint(str(self.run_dir / "checkpoints" / "last.ckpt"))
        transport = TransportDistance(run.w1_points)
        quality = PeriodicImageQuality(run.fid_every, run.fid_samples, run.fid_features)
        kwargs["callbacks"] = [*user, self.samples, self.checkpoints, last, transport, quality]
        if not config.trainer.plugins:
            kwargs["plugins"] = [AtomicCheckpointIO()]
        if config.trainer.enable_progress_bar is not False:
            kwargs["callbacks"].append(StepProgressBar())
        return super().instantiate_trainer(**kwargs)

    def after_validate(self) -> None:
        finish_wandb(self.trainer)

    after_test = after_validate

    def after_fit(self) -> None:
        finish_wandb(self.trainer)  # flushes the history into the run files (PITFALLS J)
        rank_zero_info(
            f"run directory: {self.run_dir}\n"
            f"  checkpoints: {self.run_dir / 'checkpoints'} (last.ckpt = newest)\n"
            f"  samples:     {self.run_dir / 'samples'}"
        )


TRAINER_DEFAULTS = {
    "accelerator": "auto",
    "devices": 1,
    "max_steps": 1000,
    "log_every_n_steps": 10,
    # validate every N generator steps, counted across epochs (the embedded sets' epochs are short)
    "check_val_every_n_epoch": None,
    "val_check_interval": 250,
    # validation takes input gradients of the critic (Lipschitz diagnostics): no inference mode
    "inference_mode": False,
}


def build_cli(args: list[str] | None = None, run: bool = True) -> GANCLI:
    """The CLI object; ``run=False`` only builds model, data and trainer (used by the tests)."""
    return GANCLI(
        GenerativeModule,
        GANDataModule,
        subclass_mode_model=True,
        parser_class=OneLineErrorParser,
        save_config_callback=SaveRunConfig,
        save_config_kwargs={"overwrite": True},
        # no --optimizer / --lr_scheduler: they would replace a model's configure_optimizers,
        # which the manual n_critic loop depends on (optimisers and schedules are model options)
        auto_configure_optimizers=False,
        seed_everything_default=0,
        trainer_defaults={**TRAINER_DEFAULTS, "callbacks": [RichModelSummary(max_depth=2)]},
        args=args,
        run=run,
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of ``python -m lightning_gans`` and ``lightning-gans``: a user's mistake ends
    with one line on stderr and exit status 2, never a traceback."""
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*no pre-optimization state was saved.*")
    try:
        build_cli(args)
    except Exception as e:
        cause = _user_error(e)
        if cause is None:
            raise
        lines = [ln for ln in str(cause).strip().splitlines() if ln.strip()]
        sys.stderr.write(f"error: {lines[-1] if lines else type(cause).__name__}\n")
        sys.exit(2 if isinstance(cause, ConfigError) else 1)


def _user_error(e: BaseException | None) -> BaseException | None:
    """The ConfigError or NonFiniteLossError behind e (jsonargparse and Lightning wrap them)."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, ConfigError | NonFiniteLossError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    main()
