"""What Lightning prints that says nothing about this run, kept off the console of every entry
point: training, ``make eval`` and the classifier it trains (docs/design.md#the-console)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

# Lightning's info lines
UNSAID = (
    "litlogger",
    "Trainer already configured with model summary",
    "Ignoring `Trainer(max_time=...)`",  # run/budget.py's AgreedTimer stands in for it
    "Seed set to",  # config.yaml records the seed; said before a bad flag, it is a second line
    "Restoring states from the checkpoint",  # the run report names the run; a 2nd error line
)
# warnings, by message
UNWARNED = (
    ".*LeafSpec.*",
    ".*_pytree.*deprecated.*",
    ".*does not have many workers.*",
    ".*smaller than the logging interval.*",
    ".*no pre-optimization state was saved.*",
    # on a login node: Lightning's hint that srun exists is not about this run (make slurm is)
    ".*The `srun` command is available.*",
    # a resumed run writes into its own checkpoints/ again, by design
    ".*Checkpoint directory .* exists and is not empty.*",
)


class Unsaid(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in UNSAID)


def quiet_lightning() -> None:
    """Filters ``UNSAID`` and ``UNWARNED`` (idempotent)."""
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, Unsaid) for f in logger.filters):
            logger.addFilter(Unsaid())
    for message in UNWARNED:
        warnings.filterwarnings("ignore", message=message)


@contextlib.contextmanager
def lightning_silent():
    """No Lightning info lines at all ("GPU available", "fit stopped") from a helper Trainer
    the user did not start: the domain classifier, an evaluation's test pass."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
