"""Paper-scale presets, the ResNet nets, generator EMA and the linear learning-rate schedule."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import yaml
from PIL import Image

from lightning_gans.data.datasets import native_channels
from lightning_gans.nets import build_critic, build_generator
from tests.helpers import QUIET, ROOT, fit, fit_cli

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)

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


class StandInInception(torch.nn.Module):
    """2048 pool features and an ``fc`` to 1008 logits, as the real network has, untrained:
    the weights file needs the internet (``make fetch-weights``)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten())
        self.pool = torch.nn.Linear(48, 2048)
        self.fc = torch.nn.Linear(2048, 1008)

    def forward(self, x):
        return self.pool(self.body(x.float() / 255))


@pytest.fixture
def stand_in_features(monkeypatch):
    """Untrained feature networks of the real shapes in place of files a fresh clone lacks."""
    import lightning_gans.metrics.image_quality as iq
    from lightning_gans.metrics.features import DomainClassifier, DomainFeatures

    monkeypatch.setattr(iq, "load_inception", lambda cache, dataset=None: StandInInception())
    domain = lambda dataset, size, channels, cache: DomainFeatures(DomainClassifier(channels, 10))  # noqa: E731
    monkeypatch.setattr(iq, "load_domain_features", domain)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_preset_trains_three_steps_on_stand_in_data(
    preset, image_folders, stand_in_features, tmp_path, caplog
):
    """Every preset exactly as written, its evaluation settings too, on 64 stand-in images:
    only the data set, the batch size and the number of steps are the test's."""
    text = preset.read_text()
    header = text.split("\nmodel:")[0]  # its source, what is as there, and every departure
    assert text.startswith("#") and "(20" in header
    assert all(f"\n# {k}:" in header for k in ("Source", "As there", "Departures"))
    spec = yaml.safe_load(text)
    size, dataset = spec["data"]["image_size"], spec["data"]["dataset"]
    channels = native_channels(dataset, None)
    assert spec["fid"]["every_n_steps"] > 0 and spec["checkpoint"]["every_n_train_steps"] > 0
    assert spec["fid"]["every_n_steps"] <= spec["trainer"]["max_steps"]
    args = ["--config", str(ROOT / "configs" / f"{preset.stem}.yaml"), "--config", str(preset)]
    args += ["--data.dataset", "folder", "--data.root", str(image_folders(size, channels))]
    args += ["--data.channels", str(channels), "--data.batch_size", "4", *QUIET]
    args += ["--trainer.max_steps", "3", "--run.root", str(tmp_path), "--run.logger", "none"]
    with caplog.at_level("INFO"):
        cli = fit_cli(args)
    fid = {"reference": "val"} | spec["fid"]  # the callback's default reference
    if fid["reference"] == "full_train":  # CIFAR-10: all 50k training images, as published
        assert fid["n_samples"] == fid["n_real"] == 50000
    said = [r.getMessage() for r in caplog.records if "so FID uses all" in r.getMessage()]
    held = len(getattr(cli.datamodule, f"{fid['reference']}_set"))
    assert said == [  # the stand-in set cannot meet the published count: one line says so
        f"fid.n_real {fid.get('n_real') or fid['n_samples']}: the {fid['reference']} set holds "
        f"{held} images, so FID uses all {held}; figures are comparable only with others at "
        "the same counts"
    ]
    callback = next(c for c in cli.trainer.callbacks if hasattr(c, "quality"))
    callback.embed_reference()  # what its first evaluation does (at every_n_steps)
    assert callback.quality is not None and len(callback.quality.real_feats) == held
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


class Spy(L.Callback):
    """Records the batches each critic update receives and what its loss sees, and the
    generator's batch sizes."""

    def on_fit_start(self, trainer, pl_module) -> None:
        self.given, self.seen, self.g_sizes = [], [], []
        update, loss = pl_module.critic_update, pl_module.critic_loss

        def critic_update(real, noise):
            self.given.append(real.clone())
            return update(real, noise)

        def critic_loss(real, fake, noise):
            self.seen.append(real.clone())
            return loss(real, fake, noise)

        pl_module.critic_update, pl_module.critic_loss = critic_update, critic_loss

        def record(module, inputs, out):  # training steps only, not pictures or validation
            if module.training:
                self.g_sizes.append(len(out))

        pl_module.generator.register_forward_hook(record)


def test_resnet_presets_generator_batch_and_dequantisation(tmp_path):
    """gan_cifar_resnet.py: the generator's batch is twice the critic's, and the critic sees
    real + U(0, 1/128)."""
    spy = Spy()
    fit(tmp_path, "wgan_gp", "--model.g_batch_factor", "2", "--model.dequantize", "0.25",
        "--model.n_critic", "2", "--trainer.limit_val_batches", "0",
        "--samples.every_n_steps", "0", steps=1, callbacks=[spy])  # fmt: skip
    b = len(spy.given[0])
    assert spy.g_sizes == [b, b, 2 * b]  # two critic updates' fakes, then the generator's
    noise = torch.cat([s - g for s, g in zip(spy.seen, spy.given, strict=True)])
    assert float(noise.min()) >= 0 and float(noise.max()) < 0.25
    assert float(noise.mean()) == pytest.approx(0.125, abs=0.02)


def test_ema_update_is_averaged_models_arithmetic_without_its_sync():
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from lightning_gans.models.schedules import make_ema, update_ema

    torch.manual_seed(0)
    net = build_generator((1, 32, 32), 8, 8)  # batch norm: its statistics are averaged too
    ema_fn = get_ema_multi_avg_fn(0.9)  # torch's own EMA, the arithmetic to match
    reference = AveragedModel(net, multi_avg_fn=ema_fn, use_buffers=True)
    ours = make_ema(net, 0.9)
    for step in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.1 * torch.randn_like(p))
            net.train()(torch.randn(4, 8))  # moves the running statistics
        reference.update_parameters(net)  # copies when n_averaged is 0, then averages
        update_ema(ours, net, 0.9, copy=step == 0)
    pairs = zip(reference.state_dict().items(), ours.state_dict().values(), strict=True)
    for (name, a), b in pairs:
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-6), name
        elif name.endswith("num_batches_tracked"):  # a count: copied, where torch averages it
            assert int(b) == int(dict(net.named_buffers())[name.removeprefix("module.")])
