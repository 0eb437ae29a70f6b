"""What every model shares, and the adversarial training loop that the GANs share.

``GenerativeModule``: a fixed latent batch for pictures, ``sample(n)``, the data's shape.
``AdversarialModule``: Algorithm 1 of WGAN (Arjovsky et al.) and WGAN-GP (Gulrajani et al.),
with the two losses left to the subclass:

    for each generator iteration:                       # one Lightning batch = one iteration
        for t in 1..n_critic:                           # a fresh real batch each (item 13)
            x ~ P_r, z ~ p(z)
            update the critic on critic_loss(x, G(z))   # not counted in global_step
        z ~ p(z)
        update the generator on generator_loss(D(G(z)))  # counted: global_step = iterations
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightning_gans.errors import ConfigError
from lightning_gans.losses import critic_emd, input_grad_norm, interpolate
from lightning_gans.nets import build_critic, build_generator

LR_SCHEDULES = ("constant", "linear")


def make_ema(net: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``net``'s weights and batch-norm statistics:
    ema <- decay * ema + (1 - decay) * weights after each generator update (PyTorch's
    ``AveragedModel``). It is a submodule, so checkpoints save and restore it."""
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return ema.requires_grad_(False)


class NonFiniteLossError(RuntimeError):
    """Training stopped on a NaN/inf loss; the weights were not updated with it."""


class GenerativeModule(L.LightningModule):
    """Base of every model: ``sample(n)`` in data space, and a fixed latent batch (a buffer, so
    it is checkpointed) from which every sample picture of a run is drawn."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int, seed: int, n_fixed: int = 64):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        fixed = torch.randn(n_fixed, latent_dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", fixed)  # (n_fixed, latent_dim)

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """z -> data space; ``ema``: with averaged weights where the model keeps them."""
        raise NotImplementedError

    @property
    def eval_stage(self) -> str:
        """``val`` or ``test``: the prefix of the figures an evaluation step logs."""
        return "test" if self._trainer is not None and self.trainer.testing else "val"

    @torch.no_grad()
    def sample(self, n: int | None = None, z: Tensor | None = None, ema: bool = True) -> Tensor:
        """n samples (or one per row of z) in data space: images in [-1, 1], points as they are;
        from the averaged generator when the model keeps one, unless ``ema=False``."""
        if z is None:
            z = torch.randn(n, self.latent_dim, device=self.device)
        was_training = self.training
        self.eval()  # batch norm uses its running statistics, as at deployment
        try:
            return self.decode(z.to(self.device), ema=ema)
        finally:
            self.train(was_training)

    def step_noise(self) -> torch.Generator:
        """The random stream of one training step, a function of (seed, step, rank) only, so a
        resumed run draws exactly what the uninterrupted run drew (PITFALLS D) and ranks differ."""
        seed = (self.hparams.seed * 1_000_003 + self.global_step) * 1_009 + self.global_rank
        return torch.Generator(self.device).manual_seed(seed % 2**63)

    def randn(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.randn(*shape, generator=noise, device=self.device)

    def rand(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.rand(*shape, generator=noise, device=self.device)

    def logging_step(self) -> bool:
        """Whether Lightning writes this step's training metrics (every ``log_every_n_steps``).
        ``self.log`` on the other steps is thrown away, yet it builds Lightning's result objects
        every time (measured: 0.69 s of 5.1 s over 100 toy8 GAN iterations on a CPU), so the
        models log only on these steps."""
        connector = getattr(self._trainer, "_logger_connector", None)
        return connector is None or connector.should_update_logs

    def check_finite(self, **losses: Tensor) -> None:
        """Stop before a NaN/inf loss reaches the weights; checkpoints on disk stay good."""
        values = torch.stack([v.detach().float() for v in losses.values()])
        if not torch.isfinite(values).all():
            bad = ", ".join(f"{k} = {v.item()}" for k, v in losses.items() if not torch.isfinite(v))
            raise NonFiniteLossError(
                f"non-finite loss at generator step {self.global_step}: {bad}; "
                "training stopped, the last checkpoint is intact"
            )


class AdversarialModule(GenerativeModule):
    """The n_critic loop, step accounting and logging; subclasses write the two losses.

    Subclasses implement ``critic_loss(real, fake, noise) -> (loss, metrics)``,
    ``generator_loss(f_fake) -> loss`` and ``configure_optimizers`` returning
    ``optimizer_pair(...)``; ``after_critic_step`` is a hook (weight clipping).

    Options every GAN shares: ``arch`` (dcgan or resnet nets for images), ``ema_decay`` /
    ``ema_start`` (an exponential moving average of the generator's weights, used for samples
    and evaluation; Karras et al. 2018, Yazici et al. 2019) and ``lr_schedule`` (``linear``:
    both learning rates decay to 0 at the last generator step, as in WGAN-GP's ResNet runs).
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int,
        n_critic: int,
        g_width: int,
        d_width: int,
        critic_norm: str,
        seed: int,
        arch: str = "dcgan",
        ema_decay: float | None = None,
        ema_start: int = 0,
        lr_schedule: str = "constant",
    ):
        super().__init__(data_shape, latent_dim, seed)
        if n_critic < 1:
            raise ConfigError(f"n_critic must be >= 1, got {n_critic}")
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"unknown lr_schedule {lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}"
            )
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) or null, got {ema_decay}")
        self.automatic_optimization = False  # the n_critic loop is ours
        self.generator = build_generator(self.data_shape, latent_dim, g_width, arch=arch)
        self.critic = build_critic(self.data_shape, d_width, critic_norm, arch=arch)
        self.generator_ema = make_ema(self.generator, ema_decay) if ema_decay is not None else None
        self.ema_start, self.lr_schedule = ema_start, lr_schedule

    @property
    def real_batches_per_step(self) -> int:
        """The DataModule hands each step n_critic fresh real batches, stacked."""
        return self.hparams.n_critic

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """G(z); with the averaged generator when there is one, unless ``ema=False``."""
        if ema and self.generator_ema is not None:
            return self.generator_ema(z)
        return self.generator(z)

    def optimizer_pair(self, cls: type[torch.optim.Optimizer], **kwargs):
        """[generator optimizer, critic optimizer] of one kind with the same settings, the order
        ``training_step`` expects, plus their schedules. Betas become floats: torch rejects
        mixed (0, 0.9)."""
        if "betas" in kwargs:
            kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
        opts = [cls(self.generator.parameters(), **kwargs), cls(self.critic.parameters(), **kwargs)]
        if self.lr_schedule == "constant":
            return opts
        total = self.trainer.max_steps
        if total is None or total < 1:
            raise ConfigError(f"lr_schedule linear needs --trainer.max_steps > 0, got {total}")
        # factor 1 - t/T after t generator updates: 0 after the last one (step T)
        scheds = [LambdaLR(o, lambda t, total=total: max(0.0, 1 - t / total)) for o in opts]
        return opts, scheds

    def after_generator_step(self) -> None:
        """Per generator update: the learning-rate schedules and the generator average."""
        for sched in self.schedulers():
            sched.step()
        if self.generator_ema is not None:
            if self.global_step < self.ema_start:  # before the start: follow the weights
                self.generator_ema.n_averaged.zero_()
            self.generator_ema.update_parameters(self.generator)  # n_averaged 0 -> a copy

    def schedulers(self) -> list:
        found = self.lr_schedulers()
        return [] if found is None else found if isinstance(found, list) else [found]

    # --- the losses: one pair per algorithm ---------------------------------------------------

    def critic_loss(
        self, real: Tensor, fake: Tensor, noise: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def after_critic_step(self) -> dict[str, Tensor] | None:
        """Called after every critic update (WGAN clips its weights here); may return metrics."""

    # --- Algorithm 1 -------------------------------------------------------------------------

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        noise = self.step_noise()
        reals = batch.chunk(self.hparams.n_critic)  # n_critic x (B, ...), disjoint
        metrics: list[dict[str, Tensor]] = []
        for real in reals:
            with torch.no_grad():
                fake = self.generator(self.randn(len(real), self.latent_dim, noise=noise))
            loss_d, m = self.critic_loss(real, fake, noise)
            self.check_finite(d_loss=loss_d)
            opt_d.zero_grad(set_to_none=True)  # also drops what the last generator step left in D
            self.manual_backward(loss_d + self._ddp_touch(self.generator))
            # Through the strategy, not opt_d.step(): keeps AMP scaling and the hooks, but is not
            # counted in global_step, which thus counts generator iterations (PITFALLS A).
            self.trainer.strategy.optimizer_step(opt_d.optimizer, closure=_no_closure)
            m |= self.after_critic_step() or {}
            metrics.append({"d_loss": loss_d.detach(), **{k: v.detach() for k, v in m.items()}})

        z = self.randn(len(reals[0]), self.latent_dim, noise=noise)
        loss_g = self.generator_loss(self.critic(self.generator(z)))
        self.check_finite(g_loss=loss_g)
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(loss_g)  # D receives gradients too; zeroed before its next update
        opt_g.step()
        self.after_generator_step()

        self._broadcast_buffers()
        if self.logging_step():
            logged = {f"train/{k}": torch.stack([m[k] for m in metrics]).mean() for k in metrics[0]}
            logged["train/g_loss"] = loss_g.detach()
            self.log_dict(logged, prog_bar=True, sync_dist=True, batch_size=len(real))

    def _broadcast_buffers(self) -> None:
        """Batch-norm running statistics from rank 0 to all ranks, as DDP does at each forward
        of its wrapper (we call the networks directly, so the wrapper never sees a forward)."""
        if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
            for buf in self.buffers():
                torch.distributed.broadcast(buf, src=0)

    def _ddp_touch(self, net: torch.nn.Module) -> Tensor | float:
        """0 * sum of net's weights: under DDP every parameter must take part in every backward
        (plain strategy="ddp" raises otherwise, PITFALLS 6); alone it is skipped."""
        if not (torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1):
            return 0.0
        return 0.0 * sum(p.sum() for p in net.parameters())

    # --- validation: the EMD estimate on held-out data ------------------------------------------

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        noise = torch.Generator(self.device).manual_seed(self.hparams.seed + batch_idx)
        fake = self.generator(self.randn(len(batch), self.latent_dim, noise=noise))
        m = self.critic_metrics(self.critic(batch), self.critic(fake))
        stage = self.eval_stage
        self.log_dict(
            {f"{stage}/{k}": v for k, v in m.items()}, sync_dist=True, batch_size=len(batch)
        )
        # Lipschitz diagnostics: ||grad_x f|| at real, generated and interpolated points
        x_hat = interpolate(batch, fake, self.rand(len(batch), noise=noise))
        with torch.enable_grad():
            for name, x in (("real", batch), ("fake", fake), ("interp", x_hat)):
                norms = input_grad_norm(self.critic, x)
                self.log(
                    f"{stage}/grad_norm_{name}_mean",
                    norms.mean(),
                    sync_dist=True,
                    batch_size=len(batch),
                )
                self.log(
                    f"{stage}/grad_norm_{name}_max",
                    norms.max(),
                    reduce_fx="max",
                    sync_dist=True,
                    batch_size=len(batch),
                )

    test_step = validation_step  # the same figures on the test split, logged as test/...

    def critic_metrics(self, f_real: Tensor, f_fake: Tensor) -> dict[str, Tensor]:
        """What the critic's scores say, without any penalty: for a Wasserstein critic the EMD
        estimate (THEORY.md item 10). The GAN overrides it with D's probabilities."""
        return {"critic_emd": critic_emd(f_real, f_fake)}


def _no_closure() -> None:
    return None
