"""Paper-scale presets, the ResNet nets, generator EMA and the linear learning-rate schedule."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from PIL import Image

from lightning_gans.data.datasets import native_channels
from lightning_gans.nets import build_critic, build_generator
from tests.helpers import QUIET, ROOT, cli_args, fit, fit_cli, run_module

PRESETS = sorted((ROOT / "configs" / "experiments").glob("*/*.yaml"))


def test_every_published_setting_has_a_preset():
    names = {f"{p.parent.name}/{p.stem}" for p in PRESETS}
    for ds in ("mnist", "fashion_mnist"):
        assert {f"{ds}/{m}" for m in ("gan", "wgan", "wgan_gp", "vae")} <= names
    assert {"cifar10/wgan_gp", "cifar10_resnet/wgan_gp", "cifar10/wgan"} <= names
    assert {"celeba/wgan_gp", "celeba/vae"} <= names


@pytest.fixture(scope="module")
def image_folders(tmp_path_factory):
    """Stand-in data: 64 random images per (size, channels), made here."""
    made = {}

    def folder(size: int, channels: int):
        if (size, channels) not in made:
            root = tmp_path_factory.mktemp(f"images{size}x{channels}")
            gen = torch.Generator().manual_seed(0)
            for i in range(64):
                x = torch.randint(0, 256, (size, size, channels), generator=gen, dtype=torch.uint8)
                Image.fromarray(x.squeeze(-1).numpy()).save(root / f"{i}.png")
            made[size, channels] = root
        return made[size, channels]

    return folder


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_preset_trains_three_steps_on_stand_in_data(preset, image_folders, tmp_path):
    text = preset.read_text()
    assert text.startswith("#") and "(20" in text.split("\nmodel:")[0]  # cites its source
    spec = yaml.safe_load(text)
    size, dataset = spec["data"]["image_size"], spec["data"]["dataset"]
    channels = native_channels(dataset, None)
    assert spec["fid"]["every_n_steps"] > 0 and spec["checkpoint"]["every_n_train_steps"] > 0
    assert spec["fid"]["every_n_steps"] <= spec["trainer"]["max_steps"]
    args = ["--config", str(ROOT / "configs" / f"{preset.stem}.yaml"), "--config", str(preset)]
    args += ["--data.dataset", "folder", "--data.root", str(image_folders(size, channels))]
    args += ["--data.channels", str(channels), "--data.batch_size", "4", *QUIET]
    args += ["--trainer.max_steps", "3", "--trainer.num_sanity_val_steps", "0"]
    args += ["--fid.every_n_steps", "0", "--run.root", str(tmp_path), "--run.logger", "none"]
    cli = fit_cli(args)
    assert cli.model.data_shape == (channels, size, size)
    assert cli.datamodule.hparams.batch_size == 4  # the preset's other values stand
    assert cli.trainer.global_step == 3
    assert cli.model.sample(2).shape == (2, channels, size, size)


@pytest.mark.parametrize(("size", "channels"), [(32, 3), (64, 3), (32, 1)])
def test_resnet_nets_shapes_and_no_norm_in_the_critic(size, channels):
    g = build_generator((channels, size, size), 128, 32, arch="resnet")
    d = build_critic((channels, size, size), 32, arch="resnet")
    x = g(torch.randn(3, 128))
    assert x.shape == (3, channels, size, size) and x.abs().max() <= 1
    assert d(x).shape == (3,)
    norms = (torch.nn.BatchNorm2d, torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.InstanceNorm2d)
    assert not any(isinstance(m, norms) for m in d.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    # residual: 3 (32 px) or 4 (64 px) up blocks, each doubling the side
    assert len(g.blocks) == int(math.log2(size)) - 2


def generator_gap(model) -> float:
    raw, ema = model.generator.state_dict(), model.generator_ema.module.state_dict()
    return max((raw[k].float() - ema[k].float()).abs().max().item() for k in raw)


def test_ema_differs_after_training_and_equals_the_weights_at_decay_0(fit_run):
    cli = fit_run("toy/wgan_gp", "--model.ema_decay", "0.9", steps=4)
    assert generator_gap(cli.model) > 1e-6
    z = torch.randn(8, 2)
    assert not torch.equal(cli.model.sample(z=z), cli.model.sample(z=z, ema=False))

    cli = fit_run("toy/wgan_gp", "--model.ema_decay", "0.0", "--run.name", "d0", steps=4)
    assert generator_gap(cli.model) == 0.0
    # before ema_start the average simply follows the weights
    cli = fit_run("toy/wgan_gp", "--model.ema_decay", "0.9", "--model.ema_start", "10",
                  "--run.name", "late", steps=4)  # fmt: skip
    assert generator_gap(cli.model) == 0.0


def test_linear_schedule_reaches_zero_at_the_last_generator_step(fit_run):
    cli = fit_run("toy/wgan_gp", "--model.lr_schedule", "linear", steps=4)
    lrs = [opt.param_groups[0]["lr"] for opt in cli.trainer.optimizers]
    assert lrs == [0.0, 0.0]
    scheds = cli.model.schedulers()
    assert len(scheds) == 2 and all(s.last_epoch == 4 for s in scheds)
    # step t of T: factor 1 - t/T, the same for generator and critic
    assert scheds[0].lr_lambdas[0](1) == pytest.approx(0.75)


def test_ema_and_schedule_survive_save_and_resume(tmp_path):
    extra = ["--model.ema_decay", "0.8", "--model.ema_start", "2", "--model.lr_schedule", "linear"]
    extra += ["--trainer.deterministic", "true", "--trainer.limit_val_batches", "0"]
    full = fit(tmp_path, "toy/wgan_gp", *extra, "--checkpoint.every_n_train_steps", "4", steps=8)
    ckpt = tmp_path / "run" / "checkpoints" / "step000004.ckpt"
    assert "generator_ema.n_averaged" in torch.load(ckpt, weights_only=False)["state_dict"]
    resumed = fit(tmp_path, "toy/wgan_gp", *extra, name="resumed", steps=8, ckpt_path=ckpt)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    assert generator_gap(resumed.model) > 0
    assert [o.param_groups[0]["lr"] for o in resumed.trainer.optimizers] == [0.0, 0.0]


def test_bad_ema_and_schedule_values_are_config_errors(tmp_path):
    for flag, value, needle in [
        ("--model.lr_schedule", "cosine", "valid: constant, linear"),
        ("--model.ema_decay", "1.5", "ema_decay must be in [0, 1)"),
        ("--model.arch", "vit", "valid: dcgan, resnet"),
        ("--model.critic_schedule", "bursty", "valid: constant, wgan"),
    ]:
        proc = run_module("fit", *cli_args(tmp_path, "toy/wgan_gp", flag, value), timeout=120)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr[-1000:]
