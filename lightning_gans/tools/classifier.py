"""Trains the domain classifier whose features give the offline "domain FID" (features.py).

    python -m lightning_gans.tools.classifier --dataset mnist5k [--image-size 32] [--epochs 20]
    make classifier DATASET=mnist5k [SHIP=1]

Saves ``data/classifiers/<dataset>-<size>px.pt`` with its held-out accuracy. Needs a labelled
set: mnist5k and digits (embedded), mnist, fashion_mnist, cifar10 (from ``data/``). ``--ship``
writes the package's own copy instead (``lightning_gans/metrics/classifiers/``, float16: the
one a default run uses when ``data/`` has none); the shipped mnist5k and digits files are what
this command writes with its defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import lightning_gans.data.datasets as ds
from lightning_gans.errors import OneLineParser
from lightning_gans.files import atomic_save
from lightning_gans.launch.console import lightning_silent, quiet_lightning
from lightning_gans.metrics.features import (
    LABELLED,
    DomainClassifier,
    classifier_path,
    inception_needed,
    shipped_classifier_path,
)


def labelled_images(dataset: str, root: str, image_size: int, seed: int = 0):
    """((x_train, y_train), (x_test, y_test)) with images in [-1, 1]."""
    if dataset not in LABELLED:
        raise ds.DataError(
            f"{inception_needed(dataset)} (domain classifiers: {', '.join(LABELLED)})"
        )
    if dataset == "mnist5k":  # the training split; its test split is never seen
        return ds.mnist5k(image_size, seed)
    if dataset == "digits":
        from sklearn.datasets import load_digits

        x, y = ds.digits_images(image_size), torch.as_tensor(load_digits().target)
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        n_test = len(x) // 10
        test, train = order[:n_test], order[n_test:]
        return (x[train], y[train]), (x[test], y[test])
    c = ds.native_channels(dataset, None)
    splits = []
    for train in (True, False):
        base = ds.torchvision_split(dataset, Path(root), train, image_size, c, False).base
        loader = DataLoader(base, batch_size=512, num_workers=2)
        xs, ys = zip(*loader, strict=True)
        splits.append((torch.cat(xs), torch.cat(ys)))
    return splits[0], splits[1]


def shifted(x: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Each image moved by up to ``max_shift`` pixels each way, the background (-1) filling in:
    the augmentation that takes mnist5k's 4,000 training digits from 0.64 to 0.98 held-out
    accuracy (benchmarks/README.md, domain classifier)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n)).tolist()
    moved = zip(range(n), dy, dx, strict=True)
    return torch.stack([padded[i, :, a : a + h, b : b + w] for i, a, b in moved])


class ClassifierModule(L.LightningModule):
    """Cross-entropy on shifted images, Adam with a one-cycle learning rate (peak ``lr``)."""

    def __init__(self, channels: int, n_classes: int, lr: float = 3e-3):
        super().__init__()
        self.net = DomainClassifier(channels, n_classes)
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(shifted(x)), y)
        self.log("loss", loss, prog_bar=True)
        return loss

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("accuracy", (self.net(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        steps = self.trainer.estimated_stepping_batches
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=steps)
        return [opt], [{"scheduler": schedule, "interval": "step"}]


def train_classifier(
    dataset: str, image_size: int = 32, epochs: int = 20, root: str = "data", cache: str = "data",
    ship: bool = False,
) -> tuple[Path, float]:  # fmt: skip
    """Trains, saves and returns (path, held-out accuracy). ``ship``: into the package, in
    float16 (half the size; the features move by less than 1e-3)."""
    quiet_lightning()
    L.seed_everything(0, verbose=False)
    (x, y), (x_test, y_test) = labelled_images(dataset, root, image_size)
    module = ClassifierModule(x.shape[1], int(y.max()) + 1)
    train = DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)
    test = DataLoader(TensorDataset(x_test, y_test), batch_size=256)
    with lightning_silent():  # the caller says one line when it is done
        trainer = L.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
            accelerator="auto",
            devices=1,
        )
        trainer.fit(module, train)
        accuracy = trainer.test(module, test, verbose=False)[0]["accuracy"]
    path = (
        shipped_classifier_path(dataset, image_size)
        if ship
        else classifier_path(dataset, image_size, cache)
    )
    state = module.net.state_dict()
    if ship:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    atomic_save(  # readers, and a make eval started meanwhile, never see half a file
        {
            "state_dict": state,
            "channels": x.shape[1],
            "n_classes": int(y.max()) + 1,
            "dataset": dataset,
            "image_size": image_size,
            "test_accuracy": accuracy,
        },
        path,
    )
    return path, accuracy


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist5k", help=f"one of {', '.join(LABELLED)}")
    ap.add_argument("--image-size", type=int, default=32, choices=[32, 64])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--root", default="data", help="where downloaded sets live")
    ap.add_argument("--ship", action="store_true", help="write the package's shipped copy")
    args = ap.parse_args(argv)
    try:
        path, accuracy = train_classifier(
            args.dataset, args.image_size, args.epochs, args.root, ship=args.ship
        )
    except ds.DataError as e:
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
    print(f"domain classifier: {path} (held-out accuracy {accuracy:.3f})")


if __name__ == "__main__":
    main()
