"""What each model option accepts: one table, checked once for the whole ``__init__`` chain
(``GenerativeModule`` calls ``check_options`` on everything ``save_hyperparameters`` collected),
so a subclass's option with a known name is checked too. A value outside its range would train
silently wrong (a negative lambda rewards steep critics, a negative clip empties the interval)
or fail deep inside torch; here it is one line naming the option, the value and what is
accepted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lightning_gans.errors import require


def _betas(b: Any) -> bool:
    return len(b) == 2 and all(0 <= float(x) < 1 for x in b)


# option name -> (what it accepts, the test); None is accepted where the type allows it
RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "latent_dim": (">= 1", lambda v: v >= 1),
    "lr": ("> 0", lambda v: v > 0),
    "betas": ("two values in [0, 1)", _betas),
    "n_critic": (">= 1", lambda v: v >= 1),
    "g_width": (">= 1", lambda v: v >= 1),
    "d_width": (">= 1", lambda v: v >= 1),
    "width": (">= 1", lambda v: v >= 1),
    "gp_lambda": (">= 0", lambda v: v >= 0),
    "clip": ("> 0", lambda v: v > 0),
    "ema_decay": ("in [0, 1) or null", lambda v: 0 <= v < 1),
    "ema_start": (">= 0", lambda v: v >= 0),
    "sigma": ("> 0", lambda v: v > 0),
    "beta": (">= 0", lambda v: v >= 0),
    "iw_samples": (">= 1", lambda v: v >= 1),
    "g_batch_factor": (">= 1", lambda v: v >= 1),
    "dequantize": (">= 0", lambda v: v >= 0),
    "seed": (">= 0", lambda v: v >= 0),
}


Rules = dict[str, tuple[str, Callable[[Any], bool]]]


def model_rules(cls: type) -> Rules:
    """``RULES`` plus the ``option_rules`` each class of a model's chain declares for its own
    options (a fork's model: ``option_rules = {"margin": ("> 0", lambda v: v > 0)}``)."""
    rules = dict(RULES)
    for klass in reversed(cls.__mro__):
        rules |= klass.__dict__.get("option_rules", {})
    return rules


def check_options(options: Mapping[str, Any], rules: Rules | None = None) -> None:
    """Raises ConfigError (``errors.require``) for the first option outside its range."""
    for name, value in options.items():
        rule = (RULES if rules is None else rules).get(name)
        if rule is None or value is None:
            continue
        accepted, ok = rule
        try:
            good = bool(ok(value))
        except (TypeError, ValueError):
            good = False
        require(good, name, value, accepted)
