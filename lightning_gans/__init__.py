"""lightning-gans: GAN, WGAN, WGAN-GP and VAE on PyTorch Lightning, as published.

The public names are imported on first use (PEP 562), so ``python -m lightning_gans`` can catch
a scheduler's signals before torch loads (lightning_gans/__main__.py)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_gans.data import GANDataModule
    from lightning_gans.models import GAN, VAE, WGAN, WGANGP, AdversarialModule, GenerativeModule

__all__ = ["GAN", "VAE", "WGAN", "WGANGP", "GANDataModule", "AdversarialModule", "GenerativeModule"]
_HOME = {name: "lightning_gans.models" for name in __all__} | {
    "GANDataModule": "lightning_gans.data"
}


def __getattr__(name: str):
    if name in _HOME:
        return getattr(import_module(_HOME[name]), name)
    raise AttributeError(f"module 'lightning_gans' has no attribute {name!r}")
