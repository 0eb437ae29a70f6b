"""lightning-gans: GAN, WGAN, WGAN-GP and VAE on PyTorch Lightning, as published."""

from lightning_gans.data import GANDataModule
from lightning_gans.models import GAN, VAE, WGAN, WGANGP, AdversarialModule, GenerativeModule

__all__ = ["GAN", "VAE", "WGAN", "WGANGP", "GANDataModule", "AdversarialModule", "GenerativeModule"]
