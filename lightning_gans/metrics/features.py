"""Feature networks for FID and KID, and where their weights live.

Two kinds, never mixed up (every figure says which it used):

- ``inception``: the Inception-v3 of published FID numbers (torch-fidelity's port of the TF
  graph, through torchmetrics). Its weights are fetched once by ``make fetch-weights`` into
  ``data/weights/``; evaluation loads them from there only, and checks their SHA-256 prefix.
- ``domain``: the penultimate layer of a small classifier trained on the data set itself by
  ``make classifier DATASET=...`` (``data/classifiers/``). Works offline on the embedded digits;
  its FID is a "domain FID", comparable only with other domain FIDs of the same classifier.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from lightning_gans.data.datasets import DataError

FEATURES = ("domain", "inception")
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
INCEPTION_SHA256_PREFIX = "6726825d"  # the hash in the published file name (torch.hub's rule)


def inception_path(cache: str | Path = "data") -> Path:
    return Path(cache) / "weights" / INCEPTION_URL.rsplit("/", 1)[-1]


def classifier_path(dataset: str, image_size: int, cache: str | Path = "data") -> Path:
    """Where ``make classifier`` writes a domain classifier (a user's own, read first)."""
    return Path(cache) / "classifiers" / f"{dataset}-{image_size}px.pt"


SHIPPED = Path(__file__).parent / "classifiers"  # mnist5k and digits at 32 px, in the package


def shipped_classifier_path(dataset: str, image_size: int) -> Path:
    """The classifier the package ships for an embedded set (``make classifier SHIP=1``
    reproduces it): a default run measures its domain FID from the first step, no training."""
    return SHIPPED / f"{dataset}-{image_size}px.pt"


def find_classifier(dataset: str, image_size: int, cache: str | Path = "data") -> Path | None:
    """The domain classifier to use: the cache's (``make classifier``), else the shipped one."""
    for path in (classifier_path(dataset, image_size, cache),
                 shipped_classifier_path(dataset, image_size)):  # fmt: skip
        if path.is_file():
            return path
    return None


def sha256_prefix(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[: len(INCEPTION_SHA256_PREFIX)]


def fetch_inception(cache: str | Path = "data") -> Path:
    """Downloads the Inception weights into the cache (needs internet); idempotent."""
    path = inception_path(cache)
    if path.is_file() and sha256_prefix(path) == INCEPTION_SHA256_PREFIX:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(INCEPTION_URL, str(path), INCEPTION_SHA256_PREFIX)
    except Exception as e:  # URLError, HTTPError, RuntimeError (hash mismatch)
        raise DataError(
            f"could not fetch {INCEPTION_URL} ({type(e).__name__}: {e}); on a machine with "
            f"internet download it and copy it to {path}"
        ) from e
    return path


class DomainClassifier(nn.Module):
    """A small convnet classifier for (C, S, S) images in [-1, 1]; ``features`` is its 128-d
    penultimate layer, the embedding of the domain FID."""

    num_features = 128

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out, k, stride in ((channels, 32, 3, 1), (32, 64, 4, 2), (64, 128, 4, 2)):
            layers += [nn.Conv2d(c_in, c_out, k, stride, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        # global average pooling: features of moderate scale that move smoothly with the image
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.num_features, n_classes)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class DomainFeatures(nn.Module):
    """The feature module torchmetrics calls (``normalize=True``: images in [0, 1])."""

    def __init__(self, classifier: DomainClassifier, test_accuracy: float | None = None):
        super().__init__()
        self.classifier = classifier.eval().requires_grad_(False)
        self.num_features = classifier.num_features
        self.test_accuracy = test_accuracy  # held-out accuracy stored with the classifier

    def train(self, mode: bool = True) -> DomainFeatures:
        return super().train(False)  # never leaves evaluation mode

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier.features(x.float() * 2 - 1)


# the data sets with class labels, so with a domain classifier; the others (a folder of one's
# own images, CelebA) are measured in Inception's features only
LABELLED = ("mnist5k", "digits", "mnist", "fashion_mnist", "cifar10")


def inception_needed(dataset: str) -> str:
    """What a data set without labels needs for FID: the one way that works, offline too."""
    return (
        f"dataset {dataset!r} has no class labels, so no domain classifier can be trained for "
        f"it; its FID/KID use Inception's features (make eval FEATURES=inception, or "
        f"--fid.features inception), which need the weights file {inception_path()}: "
        f"`make fetch-weights` with internet, or download {INCEPTION_URL} on another machine "
        "and copy it there"
    )


def load_domain_features(
    dataset: str, image_size: int, channels: int, cache: str | Path = "data"
) -> DomainFeatures:
    """The saved classifier's features, or a one-line error saying how to train it."""
    if dataset not in LABELLED:
        raise DataError(inception_needed(dataset))
    path = find_classifier(dataset, image_size, cache)
    if path is None:
        missing = classifier_path(dataset, image_size, cache)
        raise DataError(
            f"no domain classifier for {dataset!r} at {image_size}px ({missing} is missing): "
            f"run `make classifier DATASET={dataset} IMAGE_SIZE={image_size}`"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)  # data only, never code
    if saved["channels"] != channels:
        raise DataError(f"{path} was trained on {saved['channels']}-channel images, not {channels}")
    net = DomainClassifier(saved["channels"], saved["n_classes"])
    net.load_state_dict(
        {
            k: v.to(torch.float32) if v.is_floating_point() else v
            for k, v in saved["state_dict"].items()
        }
    )  # shipped in float16
    return DomainFeatures(net, saved.get("test_accuracy"))


def check_inception(cache: str | Path = "data", dataset: str | None = None) -> Path:
    """The cached Inception weights, or a one-line error saying how to get them."""
    path = inception_path(cache)
    if not path.is_file():
        offline = (
            "offline, use the domain features (FEATURES=domain) instead"
            if dataset is None or dataset in LABELLED
            else f"{dataset!r} has no labels for domain features, so FID needs these weights"
        )
        raise DataError(
            f"Inception weights not found at {path}: run `make fetch-weights` (needs internet), "
            f"or download {INCEPTION_URL} elsewhere and copy it there; {offline}"
        )
    if sha256_prefix(path) != INCEPTION_SHA256_PREFIX:
        raise DataError(
            f"{path} is corrupt (SHA-256 does not start with {INCEPTION_SHA256_PREFIX}): "
            "delete it and run `make fetch-weights`"
        )
    return path


def load_inception(cache: str | Path = "data", dataset: str | None = None) -> nn.Module:
    """torch-fidelity's Inception-v3 (2048-d pool features; ``fc`` gives the logits) from the
    cached weights, through torchmetrics."""
    from torchmetrics.image.fid import NoTrainInceptionV3

    return NoTrainInceptionV3("inception-v3-compat", ["2048"], str(check_inception(cache, dataset)))
