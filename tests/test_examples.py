"""examples/: a new GAN in one short file, trained through the real CLI, and quoted by the
README as it is."""

from __future__ import annotations

import torch

from tests.helpers import QUIET, ROOT, fit_cli

EXAMPLE = ROOT / "examples" / "lsgan.py"


def test_lsgan_is_short_and_the_readme_quotes_it():
    source = EXAMPLE.read_text()
    assert len(source.splitlines()) <= 40
    body = source[source.index("class LSGAN") :].strip()
    assert body in (ROOT / "README.md").read_text()


def test_lsgan_trains_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples.lsgan is imported from the repository root, as a user does
    args = ["--config", str(ROOT / "examples" / "lsgan.yaml"), "--data.toy_size", "2048"]
    args += ["--data.batch_size", "64", "--model.g_width", "32", "--model.d_width", "32", *QUIET]
    args += ["--trainer.max_steps", "20", "--run.root", str(tmp_path), "--run.logger", "csv"]
    cli = fit_cli(args)
    assert cli.trainer.global_step == 20
    assert cli.model.hparams.n_critic == 1 and cli.model.hparams.lr == 1e-4
    assert cli.model.sample(8).shape == (8, 2)
    reloaded = type(cli.model).load_from_checkpoint(cli.run_dir / "checkpoints" / "last.ckpt")
    z = torch.randn(4, 2)
    assert torch.equal(reloaded.sample(z=z, ema=False), cli.model.sample(z=z, ema=False))
