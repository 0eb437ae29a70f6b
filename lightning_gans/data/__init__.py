"""The data: one DataModule for every model, its data sets and restartable loaders."""

from lightning_gans.data.datamodule import REFERENCES, SPLITS, GANDataModule
from lightning_gans.data.datasets import DataError, to_neg_one_to_one, to_zero_to_one
from lightning_gans.data.loading import TensorSet, batches, first_n, take

__all__ = [
    "DataError",
    "GANDataModule",
    "REFERENCES",
    "SPLITS",
    "TensorSet",
    "batches",
    "first_n",
    "take",
    "to_neg_one_to_one",
    "to_zero_to_one",
]
