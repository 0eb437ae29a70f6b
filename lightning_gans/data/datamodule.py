"""One LightningDataModule for every model, chosen by ``--data.dataset``.

Training batches are grouped: a model that makes k updates on fresh real data per optimisation
step (the n_critic critic updates of a WGAN) declares ``real_batches_per_step = k`` and receives
k * batch_size samples per step, which it splits into k disjoint batches (docs/theory.md §7).
The rare steps that need more (the critic bursts of WGAN's reference schedule) take the rest
from ``draw_train``, a seeded stream, so every loader batch keeps one size.
One Lightning "batch" is therefore one generator iteration, so every counter Lightning keeps
(steps, ``log_every_n_steps``, ``val_check_interval``, progress bar) counts generator iterations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, random_split

import lightning_gans.data.datasets as ds
from lightning_gans.data.loading import EpochSampler, ResumableLoader, TensorSet, collate, take
from lightning_gans.errors import require
from lightning_gans.signals import ignore_in_worker, worker_context

TOY_VAL_SIZE = 8192


SPLITS = ("train", "val", "test")  # train_set, val_set, test_set after setup
# the images an FID is measured against: a split, or the whole training set before the
# validation hold-out (published CIFAR-10 FIDs use all 50k training images)
REFERENCES = (*SPLITS, "full_train")


class GANDataModule(L.LightningDataModule):
    """Embedded sets (no download): toy8, toy25, swissroll, mnist5k, digits. Downloaded into
    ``root`` on request (``download: true``): mnist, fashion_mnist, cifar10, celeba, folder
    (``root`` is then any directory of images). Images are scaled to [-1, 1]; 2-D points are left as they are.

    Args:
        dataset: which data set (see ``datasets.DATASETS``).
        root: where downloaded sets live, or the image directory for ``folder``.
        batch_size: samples per update, per device (the papers' batch size).
        image_size: side of the square images (32 or 64 for the convnets).
        channels: 1 or 3, only for ``folder`` (the other sets fix their own).
        val_fraction: share of the training split held out for validation (seeded).
        toy_size: number of training points drawn for the 2-D sets.
        seed: seeds the embedded sets, the split and the shuffling.
        download: let torchvision download a missing set (needs internet).
    """

    def __init__(
        self,
        dataset: str = "toy8",
        root: str = "data",
        batch_size: int = 64,
        image_size: int = 32,
        channels: int | None = None,
        val_fraction: float = 0.1,
        toy_size: int = 65536,
        seed: int = 0,
        download: bool = False,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
    ):
        super().__init__()
        ds.check_name(dataset)
        require(batch_size >= 1, "batch_size", batch_size, ">= 1")
        require(dataset in ds.TOY or image_size in (32, 64), "image_size", image_size, "32 or 64")
        require(0 < val_fraction < 1, "val_fraction", val_fraction, "in (0, 1)")
        require(channels in (None, 1, 3), "channels", channels, "1 or 3")
        require(toy_size >= 1, "toy_size", toy_size, ">= 1")
        require(num_workers >= 0, "num_workers", num_workers, ">= 0")
        require(seed >= 0, "data.seed", seed, ">= 0")  # numpy and the toy sets need it
        # logger=False: the CLI logs the whole run config; the model's seed is another seed
        self.save_hyperparameters(logger=False)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Shape of one sample; linked into the model's ``data_shape`` by the CLI."""
        h = self.hparams
        if h.dataset in ds.TOY:
            return (2,)
        return (ds.native_channels(h.dataset, h.channels), h.image_size, h.image_size)

    # --- building the splits --------------------------------------------------------------

    def prepare_data(self) -> None:
        # rank 0 only: downloads must not race (docs/design.md#data-sets-ship-with-the-package)
        h = self.hparams
        if h.dataset in ds.MISSING and h.download:
            for train in (True, False):
                ds.torchvision_split(h.dataset, Path(h.root), train, 8, 1, download=True)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        h = self.hparams
        split = torch.Generator().manual_seed(h.seed)
        if h.dataset in ds.TOY:
            self.train_set = TensorSet(ds.toy_points(h.dataset, h.toy_size, h.seed))
            self.val_set = TensorSet(ds.toy_points(h.dataset, TOY_VAL_SIZE, h.seed + 1))
            self.test_set = TensorSet(ds.toy_points(h.dataset, TOY_VAL_SIZE, h.seed + 2))
            return
        if h.dataset == "mnist5k":  # its own held-out test split; validation from the rest
            (x, _), (x_test, _) = ds.mnist5k(h.image_size, h.seed)
            full: Dataset = TensorSet(x)
            self.test_set = TensorSet(x_test)
        elif h.dataset == "digits":
            full = TensorSet(ds.digits_images(h.image_size))
        elif h.dataset == "folder":
            full = ds.ImageFiles(Path(h.root), h.image_size, self.data_shape[0])
        else:
            c = self.data_shape[0]
            full = ds.torchvision_split(h.dataset, Path(h.root), True, h.image_size, c, False)
            self.test_set = ds.torchvision_split(
                h.dataset, Path(h.root), False, h.image_size, c, False
            )
        n_val = max(1, int(len(full) * h.val_fraction))
        train, val = random_split(full, [len(full) - n_val, n_val], generator=split)
        if isinstance(full, TensorSet):  # keep in-memory sets as single tensors: fast batches
            train, val = TensorSet(full.x[train.indices]), TensorSet(full.x[val.indices])
        self.train_set, self.val_set = train, val
        self.test_set = self.test_set or val

    @property
    def full_train_set(self) -> Dataset:
        """The training set before the validation hold-out: train + val."""
        return ConcatDataset([self.train_set, self.val_set])

    # --- loaders ---------------------------------------------------------------------------

    def _loader_args(self) -> dict[str, Any]:
        h = self.hparams
        return dict(
            num_workers=h.num_workers,
            pin_memory=h.pin_memory,
            persistent_workers=h.persistent_workers and h.num_workers > 0,
            collate_fn=collate,
            # SLURM signals every process of a step: the rank acts on them, its workers don't
            worker_init_fn=ignore_in_worker if h.num_workers > 0 else None,
            multiprocessing_context=worker_context() if h.num_workers > 0 else None,
        )

    def train_dataloader(self) -> DataLoader:
        k = (
            getattr(self.trainer.lightning_module, "real_batches_per_step", 1)
            if self.trainer
            else 1
        )
        world, rank = (
            (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        )
        sampler = EpochSampler(self.train_set, world, rank, self.hparams.seed)
        batch = self.hparams.batch_size * k
        if len(sampler) < batch:
            raise ds.DataError(
                f"dataset {self.hparams.dataset!r} gives {len(sampler)} training samples per "
                f"device, "
                f"fewer than one step needs ({k} x batch_size {self.hparams.batch_size})"
            )
        return ResumableLoader(
            self.train_set, batch, sampler=sampler, drop_last=True, **self._loader_args()
        )

    def draw_train(self, n: int, seed: int) -> torch.Tensor:
        """n training samples drawn uniformly with replacement, a function of ``seed`` alone:
        the real batches of the extra critic updates of a burst step (``critic_schedule:
        wgan``), which the fixed-size loader batches cannot hold. Keyed by (step, rank), the
        draws are the same after a resume and differ across ranks."""
        idx = torch.randint(
            len(self.train_set), (n,), generator=torch.Generator().manual_seed(seed)
        )
        return take(self.train_set, idx.tolist())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, self.hparams.batch_size, **self._loader_args())

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, self.hparams.batch_size, **self._loader_args())
