"""The lean update path (docs/design.md#the-lean-update-path): where nobody listens to the
hooks around an update, the adversarial models step with ``loss.backward()`` and the
optimizer's own ``step()``. The weights are bit-for-bit those of Lightning's hooked path, and
a callback that listens switches the lean path off and hears every update."""

from __future__ import annotations

import lightning.pytorch.trainer.call as call
import pytest
import torch

from tests.helpers import CountSteps, fit

STEPS = 6


@pytest.fixture
def dispatched(monkeypatch) -> list[str]:
    """The names of the callback hooks Lightning dispatches, in order."""
    names: list[str] = []
    original = call._call_callback_hooks

    def counting(trainer, hook_name, *args, **kwargs):
        names.append(hook_name)
        return original(trainer, hook_name, *args, **kwargs)

    monkeypatch.setattr(call, "_call_callback_hooks", counting)
    return names


def same_state(a: torch.nn.Module | dict, b: torch.nn.Module | dict) -> bool:
    a, b = (x.state_dict() if hasattr(x, "state_dict") else x for x in (a, b))
    flat_a, flat_b = torch.utils._pytree.tree_leaves(a), torch.utils._pytree.tree_leaves(b)
    return len(flat_a) == len(flat_b) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(flat_a, flat_b, strict=True)
    )


@pytest.mark.parametrize("config", ["toy/wgan_gp", "toy/wgan", "toy/gan"])
def test_the_lean_path_trains_the_same_weights_as_the_hooked_one(tmp_path, config, dispatched):
    lean = fit(tmp_path, config, steps=STEPS, name="lean")
    lean_hooks = list(dispatched)
    listener = CountSteps()  # overrides on_before_optimizer_step
    hooked = fit(tmp_path, config, steps=STEPS, name="hooked", callbacks=[listener])
    assert lean.model.lean and not hooked.model.lean
    assert "on_before_backward" not in lean_hooks  # the lean run dispatched none of them
    assert lean.trainer.global_step == hooked.trainer.global_step == STEPS
    assert same_state(lean.model, hooked.model)
    for a, b in zip(lean.trainer.optimizers, hooked.trainer.optimizers, strict=True):
        assert same_state(a, b)  # Adam's moments and step counts too
    n_critic = lean.model.hparams.n_critic  # the listener heard every update
    assert listener.calls == {"generator": STEPS, "critic": STEPS * n_critic}
    assert dispatched.count("on_before_backward") == STEPS * (n_critic + 1)


def test_the_lean_path_is_taken_only_where_nobody_could_tell(tmp_path):
    assert fit(tmp_path, "toy/wgan_gp", "--trainer.precision", "bf16-mixed", name="a").model.lean
    profiled = fit(tmp_path, "toy/wgan_gp", "--trainer.profiler", "simple", name="b")
    assert not profiled.model.lean  # the profiler would miss the hooks' time

    class Overrides(CountSteps):
        pass  # a subclass of a listener listens too

    assert not fit(tmp_path, "toy/wgan", name="c", callbacks=[Overrides()]).model.lean


def test_a_model_that_overrides_a_skipped_hook_keeps_lightnings_path():
    import lightning as L

    from lightning_gans import WGANGP
    from lightning_gans.models.lean import lean_path_allowed

    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False)  # fmt: skip
    assert lean_path_allowed(trainer, WGANGP())

    class Fork(WGANGP):  # a fork's model that reads the gradients after each backward
        def on_after_backward(self) -> None:
            pass

    assert not lean_path_allowed(trainer, Fork())
