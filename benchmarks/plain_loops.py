"""The same training, written as a plain PyTorch loop without Lightning: the reference that
``bench.py`` times the template against. Same networks (``lightning_gans.nets``), batch size,
n_critic, optimisers and losses as the LightningModules; nothing else from the package.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gans.nets import build_critic, build_generator


def batches(data: Tensor, size: int, gen: torch.Generator):
    """Endless shuffled batches of `size` rows, a new permutation per epoch, last part dropped."""
    while True:
        order = torch.randperm(len(data), generator=gen)
        for i in range(0, len(order) - size + 1, size):
            yield data[order[i : i + size]]


def train_gan(hp: dict, data: Tensor, iters: int, seed: int, model: str, *args, **kwargs):
    """``gan_loop`` for ``iters`` generator iterations. Returns (sample function, per-iteration
    end times; on CUDA the device is synchronised before each time)."""
    G, iterations = gan_loop(hp, data, seed, model, *args, **kwargs)
    times = []
    for _ in range(iters):
        next(iterations)
        times.append(time.perf_counter())
    return _sampler(G, nn.Identity()), times


def gan_loop(
    hp: dict,
    data: Tensor,
    seed: int,
    model: str,
    device: str = "cpu",
    amp: torch.dtype | None = None,
    channels_last: bool = False,
    compile: bool = False,
):
    """GAN / WGAN / WGAN-GP: n_critic critic updates on fresh real batches, then one G update.
    On ``device`` (batches moved there each step, as a loader's are), under autocast to ``amp``
    with the gradient penalty in fp32, optionally channels-last and compiled. Returns (the
    generator, an endless iterator: each ``next`` is one generator iteration)."""
    torch.manual_seed(seed)
    dev, shape, arch = torch.device(device), tuple(data.shape[1:]), hp.get("arch", "dcgan")
    G = build_generator(shape, hp["latent_dim"], hp["g_width"], arch=arch).to(dev)
    D = build_critic(shape, hp["d_width"], hp["critic_norm"], arch=arch).to(dev)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    G, D = G.to(memory_format=layout), D.to(memory_format=layout)
    if compile:
        G.compile(), D.compile()

    def autocast(enabled: bool = True):  # without AMP, no context at all: it costs host time
        if amp is None:
            return nullcontext()
        return torch.autocast(dev.type, dtype=amp, enabled=enabled)

    g_batch = hp["batch_size"] * hp.get("g_batch_factor", 1)
    if model == "wgan":
        opt_g = torch.optim.RMSprop(G.parameters(), lr=hp["lr"])
        opt_d = torch.optim.RMSprop(D.parameters(), lr=hp["lr"])
    else:
        betas = tuple(float(b) for b in hp["betas"])
        opt_g = torch.optim.Adam(G.parameters(), lr=hp["lr"], betas=betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=hp["lr"], betas=betas)
    n_critic, zdim = hp["n_critic"], hp["latent_dim"]
    stream = batches(data, hp["batch_size"] * n_critic, torch.Generator().manual_seed(seed))

    def iterations():
        for step in stream:
            step = step.to(dev, non_blocking=True)
            step = step.contiguous(memory_format=layout) if step.dim() == 4 else step
            for real in step.chunk(n_critic):
                if hp.get("dequantize"):  # real + U(0, d), as the ResNet preset feeds its critic
                    real = real + hp["dequantize"] * torch.rand_like(real)
                with torch.no_grad(), autocast():
                    fake = G(torch.randn(len(real), zdim, device=dev))
                with autocast():
                    f_real, f_fake = D(real), D(fake)
                    if model == "gan":
                        loss_d = F.binary_cross_entropy_with_logits(
                            f_real, torch.ones_like(f_real)
                        ) + F.binary_cross_entropy_with_logits(f_fake, torch.zeros_like(f_fake))
                    else:
                        loss_d = f_fake.float().mean() - f_real.float().mean()
                if model == "wgan_gp":
                    eps = torch.rand(len(real), *([1] * (real.dim() - 1)), device=dev)
                    x_hat = (eps * real + (1 - eps) * fake.float()).requires_grad_(True)
                    with autocast(False):
                        (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
                    penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
                    loss_d = loss_d + hp["gp_lambda"] * penalty
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
                if model == "wgan":
                    with torch.no_grad():
                        for p in D.parameters():
                            p.clamp_(-hp["clip"], hp["clip"])
            with autocast():
                f_fake = D(G(torch.randn(g_batch, zdim, device=dev)))
                if model == "gan":
                    loss_g = F.binary_cross_entropy_with_logits(f_fake, torch.ones_like(f_fake))
                else:
                    loss_g = -f_fake.float().mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            yield

    return G, iterations()


def train_vae(hp: dict, data: Tensor, iters: int, seed: int, model: str = "vae"):
    """VAE (Kingma & Welling): maximise the ELBO with one reparameterised sample per example."""
    torch.manual_seed(seed)
    shape, zdim = tuple(data.shape[1:]), hp["latent_dim"]
    enc = build_critic(shape, hp["width"], "none", d_out=2 * zdim)
    dec = build_generator(shape, zdim, hp["width"], tanh=False)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=hp["lr"])
    stream = batches(data, hp["batch_size"], torch.Generator().manual_seed(seed))
    bernoulli = hp["likelihood"] in ("bernoulli", "binarized")
    times = []
    for _ in range(iters):
        x = next(stream)
        if hp["likelihood"] == "binarized":  # dynamic binarisation: a fresh draw per step
            x = torch.bernoulli((x + 1) / 2) * 2 - 1
        mu, logvar = enc(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        out = dec(z)
        if bernoulli:
            recon = F.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none")
            recon = recon.flatten(1).sum(1)
        else:
            s = hp["sigma"]
            recon = (x - out).pow(2).flatten(1).sum(1) / (2 * s * s)
            recon = recon + x[0].numel() * math.log(s * math.sqrt(2 * math.pi))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        loss = (recon + hp["beta"] * kl).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter())
    return _sampler(dec, nn.Sigmoid() if bernoulli else nn.Identity(), bernoulli), times


def _sampler(net: nn.Module, head: nn.Module, rescale: bool = False) -> Callable[[Tensor], Tensor]:
    @torch.no_grad()
    def sample(z: Tensor) -> Tensor:
        net.eval()
        out = head(net(z.to(next(net.parameters()).device)))
        return out * 2 - 1 if rescale else out  # Bernoulli means in [0, 1] -> [-1, 1]

    return sample


PLAIN = {"gan": train_gan, "wgan": train_gan, "wgan_gp": train_gan, "vae": train_vae}
