"""What a resumed run may change: everything about how it runs, nothing about what it trains
(docs/design.md#a-resumed-run-keeps-its-model).

A resume (``--ckpt_path FILE``, ``--ckpt_path <run dir>``, ``make train RESUME=...``) keeps the
checkpoint's model class, every model option and every data setting that shapes the data or
its order. A setting given that differs is one line naming the option, both values and the way
out, before anything is written. Free to change: ``--trainer.max_steps`` (upwards), devices,
precision, logging, callbacks, ``--fid.*``/``--samples.*``/``--checkpoint.*``, data loading
(``num_workers``, ``pin_memory``, ``root``) and the speed options ``compile``/``channels_last``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from lightning_gans.errors import ConfigError

# model options that change how fast it runs, not what it computes
SPEED_OPTIONS = {"compile", "channels_last"}
# data settings that decide what the batches hold and in which order
DATA_SETTINGS = ("dataset", "batch_size", "image_size", "channels", "val_fraction", "toy_size")
DATA_SETTINGS += ("seed",)


def check_resume(config: Any, ckpt: Path, saved: dict, subcommand: str | None) -> None:
    """Raises a ConfigError if ``config`` (the parsed run) asks for another model or data than
    the checkpoint ``saved`` (read from ``ckpt``) holds, or a fit that would train nothing."""
    way_out = _way_out(ckpt)
    if not all(key in saved for key in ("optimizer_states", "loops")):
        raise ConfigError(
            f"cannot resume from {ckpt}: it holds weights only (no optimizer or loop state), "
            "so a run cannot continue from it; start a new run (make eval and make sample "
            "read it as it is)"
        )
    states, loops = saved["optimizer_states"], saved["loops"]
    kinds = {"lr_schedulers": list, "callbacks": dict}
    intact = isinstance(states, list) and states and all(isinstance(s, dict) for s in states)
    intact = intact and isinstance(loops, dict)
    if not intact or not all(isinstance(saved.get(k, t()), t) for k, t in kinds.items()):
        raise ConfigError(
            f"cannot resume from {ckpt}: its training state (optimizer_states, loops, "
            "lr_schedulers, callbacks) is damaged, so a run cannot continue from it; start a "
            "new run (make eval and make sample read its weights)"
        )
    hparams = dict(saved.get("hyper_parameters") or {})
    trained = hparams.pop("_class_path", None)
    if trained and not _same_class(trained, config.model.class_path):
        raise ConfigError(
            f"--config/--model: {ckpt} holds a {_name(trained)}, this run asks for a "
            f"{_name(config.model.class_path)}; a resumed run keeps its model: {way_out}"
        )
    data, given = saved.get("datamodule_hyper_parameters") or {}, config.data
    for key in DATA_SETTINGS:
        if key in data and key in given and _plain(given[key]) != _plain(data[key]):
            raise ConfigError(
                f"--data.{key}: {ckpt} was trained with {_shown(data[key])}, this run asks for "
                f"{_shown(given[key])}; a resumed run keeps its data: pass --data.{key} "
                f"{_shown(data[key])}, or {way_out}"
            )
    asked = config.model.init_args or {}
    for key in list(asked.keys()):  # an option the file does not record: its default
        if key not in hparams and not key.startswith("_"):
            hparams[key] = _default(config.model.class_path, key, asked[key])
    for key, value in hparams.items():
        if key.startswith("_") or key in SPEED_OPTIONS or key == "data_shape":
            continue
        if key not in asked:
            raise ConfigError(
                f"{ckpt} records --model.{key} {_shown(value)}, an option this "
                f"{_name(config.model.class_path)} does not have: it was trained by other code; "
                "start a new run"
            )
        if _plain(asked[key]) != _plain(value):
            raise ConfigError(
                f"--model.{key}: {ckpt} was trained with {_shown(value)}, this run asks for "
                f"{_shown(asked[key])}; a resumed run keeps its model: pass --model.{key} "
                f"{_shown(value)}, or {way_out}"
            )
    step, max_steps = saved.get("global_step"), config.trainer.max_steps
    planned = saved.get("max_steps")  # what a schedule over max_steps was built for
    tied = _schedule_over_max_steps(config.model.class_path, hparams)
    if subcommand == "fit" and tied and isinstance(planned, int) and planned != max_steps:
        raise ConfigError(
            f"--trainer.max_steps {max_steps}: {ckpt} trains under {tied}, whose rates run "
            f"to step {planned}; with another max_steps the rates would jump and the run would "
            f"not be the straight run of {max_steps} steps: resume with --trainer.max_steps "
            f"{planned}, or start a new run"
        )
    stopped = isinstance(step, int) and max_steps not in (None, -1) and max_steps <= step
    if subcommand == "fit" and stopped:
        raise ConfigError(
            f"--trainer.max_steps {max_steps}: {ckpt} is at generator step {step} already, "
            f"so nothing would train; pass a max_steps above {step}"
        )


def _schedule_over_max_steps(class_path: str, hparams: dict) -> str | None:
    ask = getattr(_resolve(class_path), "schedule_over_max_steps", None)
    return ask(hparams) if ask is not None else None


def _default(class_path: str, key: str, otherwise: Any) -> Any:
    """The default of a model option, from the first ``__init__`` in the class chain that
    names it (``otherwise`` where none does)."""
    import inspect

    resolved = _resolve(class_path)
    if resolved is None:
        return otherwise
    for cls in resolved.__mro__:
        own = "__init__" in vars(cls)
        found = inspect.signature(cls.__init__).parameters.get(key) if own else None
        if found is not None and found.default is not inspect.Parameter.empty:
            return found.default
    return otherwise


def _way_out(ckpt: Path) -> str:
    if ckpt.parent.name == "checkpoints":
        return (
            f"resume with the run's own settings (--config {ckpt.parent.parent / 'config.yaml'}), "
            "or start a new run without --ckpt_path/RESUME"
        )
    return "give the settings it was trained with, or start a new run without --ckpt_path"


def _plain(value: Any) -> Any:
    """Tuples as lists and ints as floats where a YAML value and a saved one could differ."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def _shown(value: Any) -> str:
    """A value as it is written on the command line (null, [0.5, 0.9], toy8)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _name(class_path: str) -> str:
    return class_path.rsplit(".", 1)[-1]


def _same_class(a: str, b: str) -> bool:
    found_a, found_b = _resolve(a), _resolve(b)
    if found_a is None or found_b is None:
        return _name(a) == _name(b)
    return found_a is found_b


def _resolve(class_path: str) -> type | None:
    """The class a class path names, or None where it cannot be imported here (code the
    checkpoint was trained with that this checkout lacks)."""
    try:
        module, name = class_path.rsplit(".", 1)
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
