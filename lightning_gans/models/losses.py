"""The shared pieces of the objectives, one home each (docs/theory.md §5, §7)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def critic_emd(f_real: torch.Tensor, f_fake: torch.Tensor) -> torch.Tensor:
    """The EMD estimate E[f(real)] - E[f(fake)] (docs/theory.md §5).

    The critic maximises it; its loss is the negation, plus any penalty. This difference alone,
    without the penalty, is the Wasserstein-1 estimate that is logged and plotted.
    """
    return f_real.mean() - f_fake.mean()


def interpolate(real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_hat = eps * real + (1 - eps) * fake, eps (B,) broadcast per sample (docs/theory.md §7)."""
    eps = eps.view(-1, *([1] * (real.dim() - 1)))  # (B, 1, 1, 1) for images
    return eps * real + (1 - eps) * fake


def input_grad_norm(
    critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, create_graph: bool = False
) -> torch.Tensor:
    """||grad_x f(x)||_2 per sample, the norm taken over every non-batch dimension. (B,)"""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        # Autocast would run the critic in reduced precision and the norm would inherit its
        # rounding; the penalty is computed in fp32 (PyTorch's AMP notes, "gradient penalty").
        # Only then: the context costs host time in every critic update.
        with torch.autocast(device_type=device, enabled=False):
            return input_grad_norm(critic, x.float(), create_graph)
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=create_graph)
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """E[(||grad f(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani et al., eq. 3).

    ``fake`` must be detached from the generator; ``create_graph=True`` keeps the double
    backward so the penalty's gradient reaches the critic's weights. Multiply by lambda outside.
    """
    x_hat = interpolate(real, fake.detach(), eps)
    return ((input_grad_norm(critic, x_hat, create_graph=True) - 1) ** 2).mean()
