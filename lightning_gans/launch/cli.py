"""The command line: LightningCLI plus a run directory, default loggers and callbacks.

    python -m lightning_gans fit --config configs/wgan.yaml --trainer.max_steps 200

The data's shape is linked into the model (``data.data_shape -> model.data_shape``), so no
config states it. Every run writes into one directory, printed at the end:
``<run.root>/<run.name>/`` with ``config.yaml``, ``checkpoints/``, ``samples/`` and the logs.
The callbacks every run gets are option groups of their own, shown by ``--print_config``:
``--samples.*``, ``--checkpoint.*`` (Lightning's ModelCheckpoint), ``--transport.*``, ``--fid.*``.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lightning.fabric.plugins import CheckpointIO
from lightning.fabric.plugins.environments import ClusterEnvironment, SLURMEnvironment
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.callbacks.checkpoints import (
    AtomicCheckpointIO,
    LastCheckpoint,
    PeriodicCheckpoint,
    requeue_if_preempted,
)
from lightning_gans.callbacks.measurements import PeriodicImageQuality, TransportDistance
from lightning_gans.callbacks.progress import StepProgressBar
from lightning_gans.callbacks.sample_pictures import SamplePictures
from lightning_gans.callbacks.summary import ParameterSummary
from lightning_gans.callbacks.timer import AgreedTimer
from lightning_gans.data import GANDataModule
from lightning_gans.errors import ConfigError
from lightning_gans.launch.budget import apply_time_budget
from lightning_gans.launch.loggers import finish_wandb, make_loggers
from lightning_gans.launch.parsing import OneLineErrorParser, SaveRunConfig
from lightning_gans.launch.report import run_report
from lightning_gans.launch.resume_rule import check_resume
from lightning_gans.launch.run_dir import (
    another_run,
    checkpoint_step,
    default_name,
    launcher_rank,
    new_run_dir,
    newest_checkpoint,
    read_checkpoint,
    requeued,
    resolve_checkpoint,
    trust,
    trusted,
)
from lightning_gans.launch.trainer_checks import check_run_options, check_trainer, trainer_error
from lightning_gans.lightning_internals import CheckpointHparamsHook
from lightning_gans.models import GenerativeModule
from lightning_gans.run_lock import lock_run_dir, release_run_locks


@dataclass
class RunOptions:
    """Where a run writes and how it logs.

    Args:
        name: run directory name (default ``<model>-<dataset>-<timestamp or SLURM job id>``).
        root: parent of all run directories.
        logger: wandb (offline unless logged in; CSV beside it), csv, tensorboard or none.
        project: W&B project (default: $WANDB_PROJECT, else lightning-gans).
        entity: W&B entity, user or team (default: $WANDB_ENTITY).
        group: W&B group.
        tags: W&B tags.
        job_type: W&B job type.
        log_model: upload checkpoints to W&B as artifacts (true: at the end, all: each one);
            online runs only.
        time_budget: the first run's cap on training time (DD:HH:MM:SS): a fresh run of one
            process outside SLURM and torchrun stops after it; cluster jobs, multi-process and
            resumed runs are not capped (launch/budget.py). ``--trainer.max_time`` caps every run.
        wandb_timeout: the longest, in seconds, a failing W&B server may hold up the start
            (the run then logs offline) or the end of a run (the rest stays on disk for
            ``wandb sync``).
    """

    name: str | None = None
    root: str = "runs"
    logger: str = "wandb"
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    tags: list[str] = field(default_factory=list)
    job_type: str | None = None
    log_model: bool | Literal["all"] = False
    time_budget: str | None = None
    wandb_timeout: float = 60.0


# Lightning's ModelCheckpoint, set up to keep a checkpoint every N generator steps
CHECKPOINT_DEFAULTS = {
    "checkpoint.filename": "step{step:06d}",
    "checkpoint.auto_insert_metric_name": False,
    "checkpoint.every_n_train_steps": 1000,
    "checkpoint.save_top_k": -1,
    "checkpoint.save_last": True,
    "checkpoint.enable_version_counter": False,  # LastCheckpoint writes last.ckpt too
}


class GANCLI(CheckpointHparamsHook):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test. No ``predict``: samples are ``make sample`` (tools/sample.py),
        which needs no predict loader, writer callback or config."""
        commands = LightningCLI.subcommands()
        commands.pop("predict")
        return commands

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_class_arguments(RunOptions, "run")
        parser.link_arguments(
            "data.data_shape", "model.init_args.data_shape", apply_on="instantiate"
        )
        parser.add_lightning_class_args(SamplePictures, "samples")
        parser.add_lightning_class_args(PeriodicCheckpoint, "checkpoint")
        parser.set_defaults(CHECKPOINT_DEFAULTS)
        parser.add_lightning_class_args(TransportDistance, "transport")
        parser.add_lightning_class_args(PeriodicImageQuality, "fid")

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        check_run_options(self.config[subcommand] if subcommand else self.config)  # pre-seed

    def before_checkpoint_hparams(self) -> bool:
        """Lightning reads the model's options from ``--ckpt_path`` before any hook of ours: a
        corrupt file must be one line naming it first (docs/design.md#private-lightning-apis).
        A fit takes none of them: it must ask for the checkpoint's model, or is refused
        (``launch/resume_rule.py``), whether it names a file or a run directory; ``validate`` and
        ``test`` evaluate the checkpoint's model, as Lightning has them."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return False
        given = self.config[subcommand]
        if given.get("weights_only") is False and given.get("ckpt_path"):  # the user's opt-in
            trust(resolve_checkpoint(given.ckpt_path, check=False))
        path = self.checkpoint(given.get("ckpt_path"))
        return subcommand != "fit" and not (path and trusted(path))  # Lightning reads as data

    def checkpoint(self, ckpt_path: str | None) -> Path | None:
        """``--ckpt_path`` as a file, resolved and read once per run (both hooks ask)."""
        if getattr(self, "resolved_checkpoint", (object(),))[0] != ckpt_path:
            self.resolved_checkpoint = (ckpt_path, resolve_checkpoint(ckpt_path))
        return self.resolved_checkpoint[1]

    @property
    def active_config(self):
        return self.config[self.subcommand] if self.subcommand else self.config

    def before_instantiate_classes(self) -> None:
        config = self.active_config
        check_trainer(config.trainer)
        model = config.model.class_path.rsplit(".", 1)[-1].lower()
        run, dataset = config.run, config.data.dataset
        resume = self.checkpoint(config.get("ckpt_path"))
        own_dir = resume is not None and resume.parent.name == "checkpoints"
        if own_dir and run.name in (None, resume.parent.parent.name):
            self.run_dir = resume.parent.parent  # continue in the run's own directory
        else:
            self.run_dir = Path(run.root) / (run.name or default_name(model, dataset)[0])
        if self.subcommand == "fit" and requeued():  # continues from its own newest checkpoint
            resume = newest_checkpoint(self.run_dir / "checkpoints") or resume
        saved = None
        if resume:
            config.ckpt_path = str(resume)
            if self.subcommand in ("fit", None):  # before anything is written
                saved = read_checkpoint(resume, mmap=True)
                check_resume(config, resume, saved, "fit")
        if resume is not None and resume.parent == self.run_dir / "checkpoints":
            # fit: the history after the checkpoint's step is logged again; else keep it all
            fit = self.subcommand == "fit"
            self.keep_through = checkpoint_step(resume, saved) if fit else math.inf
        else:
            self.run_dir = new_run_dir(run.root, run.name, model, dataset)
            self.keep_through = None
        # one writer per run directory, before anything is written into it
        lock_run_dir(self.run_dir, writer=launcher_rank() == 0)
        if self.subcommand in ("fit", None):  # None: built by the tests, then fitted
            apply_time_budget(config, resuming=resume is not None)
        config.trainer.default_root_dir = str(self.run_dir)
        dirpath = config.checkpoint.dirpath
        if dirpath is None or another_run(Path(dirpath).parent, self.run_dir):
            # a run's saved config.yaml names its own checkpoints/: a rerun from it is a new
            # run, which never writes into the old one's directory
            config.checkpoint.dirpath = str(self.run_dir / "checkpoints")

    def instantiate_trainer(self, **kwargs):
        config = self.active_config
        run = config.run
        if config.trainer.logger in (None, True):  # not set by the user: our defaults
            kwargs["logger"] = make_loggers(run, self.run_dir, self.keep_through)
        init = self.config_init[self.subcommand] if self.subcommand else self.config_init
        callbacks = [*(init.trainer.callbacks or []), LastCheckpoint()]
        if config.trainer.max_time is not None:  # in place of Lightning's, which syncs per step
            callbacks.append(AgreedTimer(config.trainer.max_time))
        if config.trainer.enable_progress_bar is not False:
            callbacks.append(StepProgressBar())
        kwargs["callbacks"] = callbacks
        # the user's plugins, plus ours where they bring none of that kind
        plugins = init.trainer.plugins or []
        plugins = list(plugins) if isinstance(plugins, list | tuple) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            plugins.append(AtomicCheckpointIO())
        slurm = SLURMEnvironment.detect()  # preemption is LastCheckpoint's, at a step boundary
        if slurm and not any(isinstance(p, ClusterEnvironment) for p in plugins):
            plugins.append(slurm_environment())
        kwargs["plugins"] = plugins
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except (TypeError, ValueError, ImportError) as e:  # Lightning's word on a bad value
            raise trainer_error(e) from e
        # Lightning calls every hook of every callback at every step, which costs host time:
        # an option group switched off is left out of the loop (its options stay as given)
        summary = config.trainer.enable_model_summary is not False  # ours, like Lightning's
        trainer.callbacks = [c for c in trainer.callbacks if not getattr(c, "switched_off", False)
                             and (summary or not isinstance(c, ParameterSummary))]  # fmt: skip
        return trainer

    def after_validate(self) -> None:
        finish_wandb(self.trainer)

    after_test = after_validate

    def after_fit(self) -> None:
        finish_wandb(self.trainer)  # flushes the history into the run files
        rank_zero_info(run_report(self.trainer, self.run_dir))
        requeue_if_preempted(self.trainer)  # last: the requeue's SIGTERM follows at once


def slurm_environment() -> SLURMEnvironment:
    """Lightning's SLURM environment without its requeue handler; its refusal of a job's
    settings (``srun --ntasks`` without ``--ntasks-per-node``) as one line."""
    try:
        return SLURMEnvironment(auto_requeue=False)
    except RuntimeError as e:
        raise ConfigError(f"SLURM: {' '.join(str(e).split())}") from None


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


# One run at a time in a process: a parse changes the working directory for a moment and the
# random state is the process's, so two runs in threads would disturb each other
ONE_RUN = threading.Lock()


def build_cli(args: list[str] | None = None, run: bool = True) -> GANCLI:
    """The CLI object; ``run=False`` only builds model, data and trainer (used by the tests).
    A second run started in another thread while one runs is refused in one line: concurrent
    trials need processes."""
    if not ONE_RUN.acquire(blocking=False):
        raise ConfigError(
            "another run is in progress in this process: runs in concurrent threads would "
            "share the random state and the working directory; start each trial in its own "
            "process (python -m lightning_gans fit ..., or a process pool)"
        )
    try:
        return _build_cli(args, run)
    finally:
        release_run_locks()  # the run directory is free for the next writer
        ONE_RUN.release()


def _build_cli(args: list[str] | None, run: bool) -> GANCLI:
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
        trainer_defaults={**TRAINER_DEFAULTS, "callbacks": [ParameterSummary(max_depth=1)]},
        args=args,
        run=run,
    )
