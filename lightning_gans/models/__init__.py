"""The LightningModules: the adversarial loop, one algorithm per file, the VAE, their losses."""

from lightning_gans.errors import NonFiniteLossError
from lightning_gans.models.adversarial import AdversarialModule
from lightning_gans.models.gan import GAN
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.models.vae import VAE
from lightning_gans.models.wgan import WGAN
from lightning_gans.models.wgan_gp import WGANGP

__all__ = [
    "GAN",
    "VAE",
    "WGAN",
    "WGANGP",
    "AdversarialModule",
    "GenerativeModule",
    "NonFiniteLossError",
]
