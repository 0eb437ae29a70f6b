"""The DataModule and its data sets: shape, range, determinism, bad input (walking skeleton)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_gans import signals
from lightning_gans.data import GANDataModule, datamodule
from lightning_gans.data.datasets import DATASETS, DataError, toy_points
from tests.helpers import ROOT


@pytest.mark.parametrize(
    ("name", "shape"),
    [("toy8", (2,)), ("toy25", (2,)), ("swissroll", (2,)), ("digits", (1, 32, 32))],
)
def test_embedded_shape_range_and_determinism(name, shape):
    a, b = GANDataModule(name, toy_size=2048), GANDataModule(name, toy_size=2048)
    assert a.data_shape == shape
    a.setup(), b.setup()
    assert a.train_set.x.shape[1:] == shape
    assert torch.equal(a.train_set.x, b.train_set.x)  # same seed, same data
    assert torch.equal(a.val_set.x, b.val_set.x)  # and the same split
    c = GANDataModule(name, toy_size=2048, seed=1)
    c.setup()
    assert not torch.equal(a.train_set.x, c.train_set.x)
    x = a.train_set.x
    if len(shape) == 3:
        assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.99 and x.max() > 0.99
    else:
        assert x.abs().max() < 2.5
    assert torch.isfinite(x).all()


def test_digits_resizes_to_64():
    dm = GANDataModule("digits", image_size=64)
    dm.setup()
    assert dm.train_set.x.shape[1:] == (1, 64, 64) == dm.data_shape
    assert len(dm.train_set) + len(dm.val_set) == 1797


def test_toy_sets_follow_the_wgan_gp_paper():
    x = toy_points("toy8", 8000, 0)  # 8 modes on a circle of radius 2 / 1.414
    assert abs(x.norm(dim=1).mean().item() - 2 / 1.414) < 0.01
    angles = torch.atan2(x[:, 1], x[:, 0]) / (2 * math.pi / 8)
    assert (angles - angles.round()).abs().max() < 0.1  # at multiples of 45 degrees
    y = toy_points("toy25", 8000, 0) * 2.828  # 5x5 grid, spacing 2, sigma 0.05
    assert set(y.round().unique().tolist()) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    assert (y - y.round()).std().item() == pytest.approx(0.05, rel=0.1)
    s = toy_points("swissroll", 4000, 0)
    assert s.shape == (4000, 2) and s.abs().max() < 2.5


def test_train_loader_stacks_n_critic_batches_and_shuffles_by_epoch():
    dm = GANDataModule("toy8", batch_size=8, toy_size=256)
    dm.setup()
    loader = dm.train_dataloader()
    first = next(iter(loader))
    assert first.shape == (8, 2)
    loader.sampler.set_epoch(1)
    assert not torch.equal(first, next(iter(loader)))
    loader.sampler.set_epoch(0)
    assert torch.equal(first, next(iter(loader)))  # the order depends on (seed, epoch) only


def test_loader_resumes_mid_epoch():
    dm = GANDataModule("toy8", batch_size=8, toy_size=256)
    dm.setup()
    loader = dm.train_dataloader()
    it = iter(loader)
    _ = [next(it) for _ in range(3)]
    state = loader.state_dict()
    rest = list(it)
    resumed = dm.train_dataloader()
    resumed.load_state_dict(state)
    again = list(resumed)
    assert len(again) == len(rest) == len(loader) - 3
    assert all(torch.equal(a, b) for a, b in zip(again, rest, strict=True))


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(DataError) as e:
        GANDataModule("imagenet")
    msg = str(e.value)
    assert "'imagenet'" in msg and all(name in msg for name in DATASETS)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10", "celeba"])
def test_missing_download_set_says_what_to_place_where(name, tmp_path):
    dm = GANDataModule(name, root=str(tmp_path))
    with pytest.raises(DataError) as e:
        dm.setup()
    msg = str(e.value)
    assert str(tmp_path) in msg and "place" in msg and "--data.download true" in msg
    assert "\n" not in msg


def test_folder_of_images(tmp_path):
    from PIL import Image

    for i in range(20):
        Image.new("RGB", (40, 50), (i * 10, 0, 255 - i * 10)).save(tmp_path / f"{i}.png")
    dm = GANDataModule("folder", root=str(tmp_path), batch_size=4)
    dm.setup()
    assert dm.data_shape == (3, 32, 32)
    x = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and x.min() >= -1 and x.max() <= 1
    gray = GANDataModule("folder", root=str(tmp_path), channels=1, image_size=64)
    gray.setup()
    assert gray.train_set[0].shape == (1, 64, 64)


def test_empty_folder_is_named(tmp_path):
    with pytest.raises(DataError, match="holds no images"):
        GANDataModule("folder", root=str(tmp_path)).setup()


def test_corrupt_image_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    dm = GANDataModule("folder", root=str(tmp_path), val_fraction=0.5)
    dm.setup()
    with pytest.raises(DataError, match="broken.png"):
        dm.train_set.dataset[0]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_loader_worker_dies_with_its_rank(tmp_path):
    """A rank SIGKILLed (a node's OOM killer, a test) must not leave its DataLoader worker
    behind: one was measured holding the rank's TCPStore port, which the requeued job needs."""
    script = tmp_path / "rank.py"
    script.write_text(
        "import sys, time, torch\n"
        "from torch.utils.data import DataLoader\n"
        "from lightning_gans.signals import ignore_in_worker\n"
        "loader = DataLoader(range(10**6), num_workers=1, worker_init_fn=ignore_in_worker)\n"
        "it = iter(loader); next(it)\n"
        "print(it._workers[0].pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    rank = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)  # fmt: skip
    worker = int(rank.stdout.readline())
    rank.kill()
    rank.wait()
    deadline = time.time() + 3  # the watchdog alone would take up to 5 s, or never
    while time.time() < deadline and alive(worker):
        time.sleep(0.1)
    assert not alive(worker)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def sigterm_then_ignore(worker_id: int) -> None:
    """A SLURM SIGTERM that reaches a worker in its first moment, before the worker_init_fn has
    ignored it: torch's own worker handler dies of it unless the signal is held until then."""
    os.kill(os.getpid(), signal.SIGTERM)
    signals.ignore_in_worker(worker_id)


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_a_sigterm_as_a_worker_starts_leaves_it_working(monkeypatch):
    """Each epoch forks its workers anew (persistent_workers false); a scancel that lands on
    one before its worker_init_fn ran crashed its rank ("DataLoader worker is killed by
    signal: Terminated") instead of checkpointing."""
    monkeypatch.setattr(datamodule, "ignore_in_worker", sigterm_then_ignore)
    dm = GANDataModule("toy8", toy_size=1024, batch_size=64, num_workers=2)
    dm.setup()
    for _ in range(2):  # two epochs: two forks of the workers
        assert sum(len(b) for b in dm.val_dataloader()) == len(dm.val_set)
    assert signal.SIGTERM not in signals.received  # the rank itself never saw it
