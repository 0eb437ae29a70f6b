"""The WGAN reference code's critic schedule (``critic_schedule: wgan``): bursts of 100 critic
updates, each on a fresh real batch (docs/theory.md §7), with generator-step accounting and
exact resume intact."""

from __future__ import annotations

import torch

from lightning_gans import WGAN, WGANGP
from tests.helpers import CountSteps, fit

BURST = ["--model.critic_schedule", "wgan", "--trainer.limit_val_batches", "0"]


def test_schedule_is_the_reference_codes():
    """main.py of Arjovsky et al.: 100 on generator iterations 0-24 and every 500th."""
    steps = (0, 24, 25, 499, 500, 501, 1000)
    assert [WGAN(critic_schedule="wgan").critic_iterations(s) for s in steps] == [
        100, 100, 5, 5, 100, 5, 100,
    ]  # fmt: skip
    assert {WGAN().critic_iterations(s) for s in steps} == {5}


def test_burst_steps_update_the_critic_100_times_on_fresh_real_batches(tmp_path, monkeypatch):
    counter = CountSteps()
    seen: list[torch.Tensor] = []
    critic_loss = WGANGP.critic_loss

    def recording(self, real, fake, noise):
        seen.append(real.clone())
        return critic_loss(self, real, fake, noise)

    monkeypatch.setattr(WGANGP, "critic_loss", recording)
    cli = fit(tmp_path, "toy/wgan_gp", *BURST, steps=2, callbacks=[counter])

    assert cli.trainer.global_step == 2  # still one step per generator update
    assert counter.calls == {"generator": 2, "critic": 200}
    assert len(seen) == 200 and all(r.shape == (32, 2) for r in seen)
    assert len({r.sum().item() for r in seen}) == 200  # no batch is reused
    train = cli.datamodule.train_set.x
    extra = torch.cat(seen[5:100])  # beyond the loader's 5: drawn from the training split
    assert torch.isin(extra[:, 0], train[:, 0]).all()


def test_bursts_resume_exactly(tmp_path):
    extra = [*BURST, "--trainer.deterministic", "true"]
    full = fit(tmp_path, "toy/wgan", *extra, "--checkpoint.every_n_train_steps", "2", steps=4)
    ckpt = tmp_path / "run" / "checkpoints" / "step000002.ckpt"
    resumed = fit(tmp_path, "toy/wgan", *extra, name="r", steps=4, ckpt_path=ckpt)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
