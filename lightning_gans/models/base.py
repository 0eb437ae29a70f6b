"""The adversarial training loop that the GANs share (``GenerativeModule`` is in generative.py).

``AdversarialModule``: Algorithm 1 of WGAN (Arjovsky et al.) and WGAN-GP (Gulrajani et al.),
with the two losses left to the subclass:

    for each generator iteration:                       # one Lightning batch = one iteration
        for t in 1..n_critic:                           # a fresh real batch each (item 13)
                                                        # (100 on burst steps: critic_schedule)
            x ~ P_r, z ~ p(z)
            update the critic on critic_loss(x, G(z))   # not counted in global_step
        z ~ p(z)
        update the generator on generator_loss(D(G(z)))  # counted: global_step = iterations
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from lightning_gans.errors import ConfigError
from lightning_gans.losses import critic_emd, input_grad_norm, interpolate
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.nets import build_critic, build_generator

LR_SCHEDULES = ("constant", "linear")
CRITIC_SCHEDULES = ("constant", "wgan")
# The WGAN reference code (Arjovsky et al., main.py): 100 critic iterations on the first 25
# generator iterations and on every 500th, n_critic on the others.
BURST_CRITIC, BURST_FIRST, BURST_EVERY = 100, 25, 500


def make_ema(net: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``net``'s weights and batch-norm statistics:
    ema <- decay * ema + (1 - decay) * weights after each generator update (PyTorch's
    ``AveragedModel``). It is a submodule, so checkpoints save and restore it."""
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    return ema.requires_grad_(False)


class AdversarialModule(GenerativeModule):
    """The n_critic loop, step accounting and logging; subclasses write the two losses.

    Subclasses implement ``critic_loss(real, fake, noise) -> (loss, metrics)``,
    ``generator_loss(f_fake) -> loss`` and ``configure_optimizers`` returning
    ``optimizer_pair(...)``; ``after_critic_step`` is a hook (weight clipping).

    Options every GAN shares: ``arch`` (dcgan or resnet nets for images), ``ema_decay`` /
    ``ema_start`` (an exponential moving average of the generator's weights, used for samples
    and evaluation; Karras et al. 2018, Yazici et al. 2019) and ``lr_schedule`` (``linear``:
    both learning rates decay to 0 at the last generator step, as in WGAN-GP's ResNet runs)
    and ``critic_schedule`` (``wgan``: the WGAN reference code's 100 critic iterations on the
    first 25 generator iterations and every 500th, which keeps the critic near its optimum and
    so its EMD estimate honest; see ``critic_iterations``).
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
        critic_schedule: str = "constant",
    ):
        super().__init__(data_shape, latent_dim, seed)
        if n_critic < 1:
            raise ConfigError(f"n_critic must be >= 1, got {n_critic}")
        if lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"unknown lr_schedule {lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}"
            )
        if critic_schedule not in CRITIC_SCHEDULES:
            raise ConfigError(
                f"unknown critic_schedule {critic_schedule!r}; valid: {', '.join(CRITIC_SCHEDULES)}"
            )
        if ema_decay is not None and not 0 <= ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) or null, got {ema_decay}")
        self.automatic_optimization = False  # the n_critic loop is ours
        self.generator = build_generator(self.data_shape, latent_dim, g_width, arch=arch)
        self.critic = build_critic(self.data_shape, d_width, critic_norm, arch=arch)
        self.generator_ema = make_ema(self.generator, ema_decay) if ema_decay is not None else None
        self.ema_start, self.lr_schedule = ema_start, lr_schedule
        self.critic_schedule = critic_schedule

    @property
    def real_batches_per_step(self) -> int:
        """The DataModule hands each step n_critic fresh real batches, stacked."""
        return self.hparams.n_critic

    def critic_iterations(self, step: int) -> int:
        """Critic updates before generator update ``step`` (0-based): n_critic, or with
        ``critic_schedule: wgan`` 100 on steps 0-24 and on every 500th step, as in the WGAN
        reference code ("train the critic more at the start", when it is furthest from f*)."""
        n = self.hparams.n_critic
        if self.critic_schedule == "wgan" and (step < BURST_FIRST or step % BURST_EVERY == 0):
            return max(n, BURST_CRITIC)
        return n

    def real_batches(self, batch: Tensor) -> tuple[Tensor, ...]:
        """One fresh real batch per critic update of this step (item 13): the loader's
        n_critic disjoint batches, plus, on a burst step of the ``wgan`` schedule, the rest
        drawn from the DataModule's seeded stream (``GANDataModule.draw_train``)."""
        reals = batch.chunk(self.hparams.n_critic)
        extra = self.critic_iterations(self.global_step) - len(reals)
        if extra <= 0:
            return reals
        datamodule = getattr(self.trainer, "datamodule", None)
        if not hasattr(datamodule, "draw_train"):
            raise ConfigError("critic_schedule 'wgan' needs the GANDataModule (--data)")
        seed = self.step_seed() ^ (1 << 62)  # not the noise's seed: an independent stream
        more = datamodule.draw_train(extra * len(reals[0]), seed)
        return reals + more.to(self.device, batch.dtype).chunk(extra)

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
        reals = self.real_batches(batch)  # n_critic (or a burst's) x (B, ...), disjoint
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
