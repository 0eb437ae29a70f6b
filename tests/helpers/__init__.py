"""What the tests share: tiny CLI settings, the one way to start a fit, and test callbacks."""

from tests.helpers.callbacks import (
    BreakFID,
    CountCollectives,
    CountSteps,
    DumpParams,
    NaNOnRank1,
    RecordBatches,
    SameDraws,
    TrainedSteps,
)
from tests.helpers.cli import (
    QUIET,
    ROOT,
    TINY_DIGITS,
    TINY_GAN,
    TINY_GAN_DIGITS,
    TINY_TOY,
    TINY_VAE,
    cli_args,
    fit,
    fit_cli,
    own_lines,
    run_module,
)

__all__ = [
    "QUIET",
    "ROOT",
    "TINY_DIGITS",
    "TINY_GAN",
    "TINY_GAN_DIGITS",
    "TINY_TOY",
    "TINY_VAE",
    "CountCollectives",
    "CountSteps",
    "DumpParams",
    "BreakFID",
    "NaNOnRank1",
    "RecordBatches",
    "SameDraws",
    "TrainedSteps",
    "cli_args",
    "fit",
    "fit_cli",
    "own_lines",
    "run_module",
]
