"""The parser's two additions to LightningCLI's: a bad flag is one line, and the resolved
config is written to the run directory (without ``ckpt_path``) and recorded in every logger."""

from __future__ import annotations

import sys

from lightning.pytorch.cli import LightningArgumentParser, SaveConfigCallback

from lightning_gans.files import replaced_whole
from lightning_gans.launch.run_dir import git_commit


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

    def save(self, cfg, path, *args, **kwargs) -> None:
        """The parser's own save, whole or not at all: a resume rewrites the run's
        ``config.yaml``, and a full disk must leave the previous one, not half of one."""
        with replaced_whole(path) as tmp:
            super().save(cfg, str(tmp), *args, **{**kwargs, "overwrite": True})


class SaveRunConfig(SaveConfigCallback):
    """Writes the resolved config to the run directory and records it, with the git commit,
    in every logger. Without ``ckpt_path``: the file states what the run trains, and a rerun
    or resume from it (``make train RESUME=<run> ARGS="--config <run>/config.yaml"``) never
    has its checkpoint cancelled by the file's."""

    def __init__(self, parser, config, *args, **kwargs) -> None:
        config = config.clone()
        if "ckpt_path" in config:
            del config["ckpt_path"]
        super().__init__(parser, config, *args, **kwargs)

    def save_config(self, trainer, pl_module, stage: str) -> None:
        import yaml

        config = self.parser.dump(self.config, skip_none=False, format="yaml")
        values = {"config": yaml.safe_load(config), "git_commit": git_commit()}
        for logger in trainer.loggers:
            logger.log_hyperparams(values)
