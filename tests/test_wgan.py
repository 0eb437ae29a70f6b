"""WGAN-clip through the real entry point (docs/theory.md §5-§7)."""

from __future__ import annotations

import torch

from lightning_gans import WGAN
from tests.helpers import CountSteps


def test_toy8_fit_counts_steps_and_clips(fit_run, tmp_path):
    counter = CountSteps()
    cli = fit_run("toy/wgan", "--model.n_critic", "3", steps=7, callbacks=[counter])

    assert cli.trainer.global_step == 7  # global_step = generator updates
    assert counter.calls == {"generator": 7, "critic": 21}  # critic = n_critic x generator
    c = cli.model.hparams.clip
    weights = torch.cat([p.flatten() for p in cli.model.critic.parameters()])
    assert weights.abs().max() <= c + 1e-8  # every critic weight within [-c, c]
    assert (weights.abs() >= c - 1e-8).any()  # and clipping really happened
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert (run / "samples" / "step_000007.png").exists()
    assert (run / "config.yaml").exists()


def test_digits_fit_writes_grid_and_checkpoint(fit_run, tmp_path):
    from PIL import Image

    cli = fit_run(
        "wgan", "--samples.every_n_steps", "2", "--checkpoint.every_n_train_steps", "2", steps=4
    )
    assert cli.trainer.global_step == 4
    samples = sorted((tmp_path / "run" / "samples").glob("*.png"))
    assert [p.name for p in samples] == ["step_000002.png", "step_000004.png"]
    w, h = Image.open(samples[-1]).size
    assert w == h == 8 * 32 + 9 * 2  # 64 images of 32x32 in an 8x8 grid with padding 2
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt", "step000002.ckpt", "step000004.ckpt"]


def test_each_critic_update_sees_a_fresh_real_batch(fit_run, monkeypatch):
    seen: list[torch.Tensor] = []
    original = WGAN.critic_loss

    def recording(self, real, fake, noise):
        seen.append(real.detach().clone())
        return original(self, real, fake, noise)

    monkeypatch.setattr(WGAN, "critic_loss", recording)
    fit_run("toy/wgan", steps=3)
    assert len(seen) == 15
    rows = torch.cat(seen)
    assert len(torch.unique(rows, dim=0)) == len(rows)  # no sample seen twice: disjoint batches
    for a, b in zip(seen, seen[1:], strict=False):
        assert not torch.equal(a, b)


def test_sample_after_load_from_checkpoint(fit_run, tmp_path):
    fit_run("wgan", steps=2)
    model = WGAN.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    x = model.sample(5)
    assert x.shape == (5, 1, 32, 32)
    assert x.min() >= -1 and x.max() <= 1
    fixed = model.sample(z=model.fixed_z[:3])
    assert torch.equal(fixed, model.sample(z=model.fixed_z[:3]))  # eval mode: deterministic


def test_global_step_counts_generator_updates_in_logs(fit_run, tmp_path):
    import csv

    fit_run("toy/wgan", "--trainer.log_every_n_steps", "2", steps=6)
    with open(tmp_path / "run" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows if r.get("train/critic_emd")]
    # logged every 2 generator steps (not critic steps), labelled with the updates done
    assert steps == [2, 4, 6]
    assert all(
        r["train/critic_emd"] and r["train/g_loss"] and r["train/d_loss"]
        for r in rows
        if r.get("train/critic_emd")
    )
