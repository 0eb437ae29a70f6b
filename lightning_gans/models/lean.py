"""The lean update path: ``loss.backward()`` and the optimizer's own ``step()``, without
Lightning's hook dispatch, which calls every callback three times per update and costs more
host time than a small net's whole update (docs/design.md#the-lean-update-path).

Taken only where nobody could tell: no callback and not the module overrides a hook the path
skips, no profiler records them, the precision needs no gradient scaler and the strategy is a
single device (DDP's backward is the strategy's). Decided once, when training starts."""

from __future__ import annotations

import ctypes
import os

import lightning as L
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

# what manual_backward and the strategy's optimizer_step would call around each update
SKIPPED_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")


def lean_path_allowed(trainer: L.Trainer, module: L.LightningModule) -> bool:
    """Whether every update of this fit may skip Lightning's hooks with no listener missing one."""
    strategy = trainer.strategy
    precision = strategy.precision_plugin
    no_scaler = type(precision) is Precision or (
        type(precision) is MixedPrecision and precision.scaler is None  # bf16-mixed
    )
    listened = any(
        is_overridden(hook, callback, L.Callback)
        for callback in trainer.callbacks
        for hook in SKIPPED_HOOKS
    )
    overridden = any(
        is_overridden(hook, module, L.LightningModule) for hook in (*SKIPPED_HOOKS, "backward")
    )
    return (
        type(strategy) is SingleDeviceStrategy
        and no_scaler
        and isinstance(trainer.profiler, PassThroughProfiler)
        and not listened
        and not overridden
    )


def skip_a_missing_nvml() -> None:
    """Lightning's import sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, so ``torch.cuda.is_available``
    asks NVML first, which avoids initialising CUDA before a fork. Every Adam and RMSprop step
    calls it. On a machine without NVML (no NVIDIA driver) each call is a failed ``dlopen``,
    about 0.05 ms, six per WGAN-GP iteration, and then torch falls back to the CUDA runtime's
    count anyway. There, asking NVML protects nothing; the setting is dropped."""
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1":
        return
    try:
        ctypes.CDLL("libnvidia-ml.so.1")  # what torch loads for its NVML count
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"


skip_a_missing_nvml()  # once, when the models are imported (after Lightning)
