"""examples/: a new GAN in one short file, trained through the real CLI, and quoted by the
README as it is."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import QUIET, ROOT, fit_cli

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

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


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_forks_model_trains_through_make_and_the_console_script(tmp_path):
    """The console script imports from the working directory as ``python -m`` does, and
    ``make train CONFIG=...`` takes any config file."""
    tiny = f"--data.toy_size 1024 --model.g_width 8 --model.d_width 8 --trainer.max_steps 2 " \
        f"--run.root {tmp_path} --run.logger csv {' '.join(QUIET)}"  # fmt: skip
    script = Path(sys.executable).parent / "lightning-gans"
    runs = [
        [str(script), "fit", "--config", "examples/lsgan.yaml", *tiny.split(), "--run.name", "a"],
        ["make", "-s", "train", "CONFIG=examples/lsgan.yaml", f"ARGS={tiny} --run.name b"],
    ]
    for command in runs:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("a", "b"):
        saved = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        assert saved["hyper_parameters"]["_class_path"] == "examples.lsgan.LSGAN"
    proc = subprocess.run(["make", "-s", "train", "CONFIG=nosuch.yaml"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "CONFIG 'nosuch.yaml' not found" in proc.stderr
