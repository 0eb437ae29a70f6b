"""What Lightning prints that says nothing about this run, kept off the console of every entry
point: training, ``make eval`` and the classifier it trains (docs/design.md#the-console)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

from lightning_gans.lightning_internals import LIGHTNING_INFO_UNSAID, LIGHTNING_WARNINGS_UNSAID

# torch's warnings that say nothing about this run; Lightning's are with its internals
TORCH_UNWARNED = (".*LeafSpec.*", ".*_pytree.*deprecated.*")


class Unsaid(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in LIGHTNING_INFO_UNSAID)


def quiet_lightning() -> None:
    """Filters Lightning's messages (lightning_internals) and torch's (idempotent)."""
    os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, Unsaid) for f in logger.filters):
            logger.addFilter(Unsaid())
    for message in (*LIGHTNING_WARNINGS_UNSAID, *TORCH_UNWARNED):
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
