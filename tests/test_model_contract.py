"""The template's contract, checked for every model it ships and for yours: it trains through
the real CLI, resumes bit-exactly, its checkpoint loads without a config, and a bad option is
one line.

Point it at your own model with one line, in ``CONTRACT`` below:

    Contract("my_project.models.MyGAN", "configs/my_gan.yaml"),

or without editing this file (several: separate them with commas):

    make test-contract CONTRACT=my_project.models.MyGAN=configs/my_gan.yaml
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest
import torch

from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_VAE, SignalAt, fit_cli


@dataclass(frozen=True)
class Contract:
    class_path: str  # what --model names
    config: str  # its config file, relative to the repository root
    small: tuple[str, ...] = field(default=())  # flags that make it quick (sizes, not maths)

    @property
    def id(self) -> str:
        return self.class_path.rsplit(".", 1)[-1]


TOY = ("--data.toy_size", "1024", "--data.batch_size", "32")
CONTRACT = [
    Contract("lightning_gans.GAN", "configs/toy/gan.yaml", TOY + tuple(TINY_GAN)),
    Contract("lightning_gans.WGAN", "configs/toy/wgan.yaml", TOY + tuple(TINY_GAN)),
    Contract("lightning_gans.WGANGP", "configs/toy/wgan_gp.yaml", TOY + tuple(TINY_GAN)),
    Contract("lightning_gans.VAE", "configs/toy/vae.yaml", TOY + tuple(TINY_VAE)),
    Contract("examples.lsgan.LSGAN", "examples/lsgan.yaml", TOY + tuple(TINY_GAN)),
]
for entry in filter(None, os.environ.get("CONTRACT", "").split(",")):  # make test-contract
    class_path, _, config = entry.partition("=")
    CONTRACT.append(Contract(class_path.strip(), config.strip()))

DETERMINISTIC = ("--trainer.deterministic", "true", "--trainer.val_check_interval", "3",
                 "--trainer.limit_val_batches", "1")  # fmt: skip


def args(contract: Contract, tmp_path, name: str, steps: int, *extra: str) -> list[str]:
    return [
        "--config", str(ROOT / contract.config), "--model", contract.class_path,
        *contract.small, *QUIET, *DETERMINISTIC, "--trainer.max_steps", str(steps),
        "--run.root", str(tmp_path), "--run.name", name, "--run.logger", "csv", *extra,
    ]  # fmt: skip


@pytest.fixture(autouse=True)
def _from_the_repository_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # a fork's package is imported from the root, as the CLI does


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("contract", CONTRACT, ids=lambda c: c.id)
def test_it_trains_through_the_cli(tmp_path, contract):
    from lightning_gans.launch.cli import build_cli

    cli = build_cli(args(contract, tmp_path, "run", 4), run=False)
    before = weights(cli.model)
    cli.trainer.fit(cli.model, cli.datamodule)
    assert cli.trainer.global_step == 4
    after = weights(cli.model)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    changed = [k for k in before if before[k].is_floating_point()
               and not torch.equal(before[k], after[k])]  # fmt: skip
    assert changed, "no weight changed in 4 steps"
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("contract", CONTRACT, ids=lambda c: c.id)
def test_it_resumes_bit_exactly(tmp_path, contract):
    """Stopped by a real SIGUSR1 after step 3 and resumed, it ends with the straight run's
    weights, having trained only the remaining steps."""
    straight = fit_cli(args(contract, tmp_path, "straight", 6))
    cut = fit_cli(args(contract, tmp_path, "cut", 6), callbacks=[SignalAt(2)])
    assert cut.trainer.global_step == 3
    last = tmp_path / "cut" / "checkpoints" / "last.ckpt"
    trained = []
    counter = SignalAt(-1)  # never fires; counts the steps this fit trains
    counter.on_train_batch_start = lambda trainer, *a: trained.append(trainer.global_step)
    resumed = fit_cli(args(contract, tmp_path, "resumed", 6), [counter], ckpt_path=last)
    assert trained == [3, 4, 5]
    a, b = weights(straight.model), weights(resumed.model)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


@pytest.mark.parametrize("contract", CONTRACT, ids=lambda c: c.id)
def test_its_checkpoint_loads_without_a_config(tmp_path, contract):
    cli = fit_cli(args(contract, tmp_path, "run", 2))
    cls = type(cli.model)
    loaded = cls.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt",
                                      weights_only=True)  # fmt: skip
    z = torch.randn(4, cli.model.latent_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.sample(z=z), cli.model.sample(z=z))


@pytest.mark.parametrize("contract", CONTRACT, ids=lambda c: c.id)
@pytest.mark.parametrize(("flag", "value"), [("no_such_option", "1"), ("latent_dim", "0")])
def test_a_bad_option_is_one_line(tmp_path, capsys, contract, flag, value):
    from lightning_gans.launch.main import main

    with pytest.raises(SystemExit) as done:
        main(["fit", *args(contract, tmp_path, "run", 2, f"--model.{flag}", value)])
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert done.value.code == 2 and len(lines) == 1, lines
    assert flag in lines[0] and "Traceback" not in lines[0]
    assert not (tmp_path / "run").exists()
