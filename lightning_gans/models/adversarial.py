"""The adversarial loop every GAN here shares: Algorithm 1 of WGAN (Arjovsky et al. 2017) and
WGAN-GP (Gulrajani et al. 2017), with the two losses left to the subclass.

    for each generator iteration:                       # one Lightning batch = one iteration
        for t in 1..n_critic:                           # (100 on burst steps: critic_schedule)
            x ~ P_r (a fresh batch), z ~ p(z)           # docs/theory.md §7
            update the critic on critic_loss(x, G(z))   # not counted in global_step
        z ~ p(z)
        update the generator on generator_loss(D(G(z)))  # counted: global_step = iterations
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_gans.errors import ConfigError, require
from lightning_gans.models import schedules
from lightning_gans.models.distributed import broadcast_buffers, touch_every_parameter
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.models.losses import critic_emd, input_grad_norm, interpolate
from lightning_gans.nets import build_critic, build_generator
from lightning_gans.nets.blocks import batch_statistics


class AdversarialModule(GenerativeModule):
    """The n_critic loop, step accounting and logging. A subclass writes ``critic_loss(real,
    fake, noise) -> (loss, metrics)``, ``generator_loss(f_fake) -> loss`` and
    ``configure_optimizers`` returning ``optimizer_pair(...)``; ``after_critic_step`` is a hook
    (weight clipping).

    Args:
        n_critic: critic updates per generator update, each on a fresh real batch.
        g_width: width of the generator (hidden units, or base channels of a convnet).
        d_width: width of the critic.
        critic_norm: normalisation in the critic: none, layer or batch.
        arch: image networks: dcgan or resnet (2-D data always gets MLPs).
        ema_decay: keep an exponential moving average of the generator with this decay for
            samples and evaluation (null: none).
        ema_start: generator step before which the average just follows the weights.
        lr_schedule: constant, or linear (both learning rates decay to 0 at max_steps).
        critic_schedule: constant (n_critic), or wgan (the WGAN reference code's 100 critic
            updates on the first 25 generator steps and on every 500th).
        g_batch_factor: the generator update's batch is this many times the critic's (2 in
            the WGAN-GP CIFAR-10 ResNet code).
        dequantize: add U(0, dequantize) noise to every real pixel the critic sees (1/128 in
            the WGAN-GP CIFAR-10 ResNet code: 8-bit levels become a continuous density).
    """

    def __init__(
        self,
        *,
        n_critic: int = 5,
        g_width: int = 64,
        d_width: int = 64,
        critic_norm: str = "none",
        arch: str = "dcgan",
        ema_decay: float | None = None,
        ema_start: int = 0,
        lr_schedule: str = "constant",
        critic_schedule: str = "constant",
        g_batch_factor: int = 1,
        dequantize: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        schedules.check_choice("lr_schedule", lr_schedule, schedules.LR_SCHEDULES)
        schedules.check_choice("critic_schedule", critic_schedule, schedules.CRITIC_SCHEDULES)
        # U(0, d) noise models 8-bit pixel levels; 2-D points are measured un-noised (exact W1)
        require(not dequantize or len(self.data_shape) == 3, "dequantize", dequantize,
                "0 for 2-D data (it spreads 8-bit pixel levels)")  # fmt: skip
        self.automatic_optimization = False  # the n_critic loop is ours
        self.generator = build_generator(self.data_shape, self.latent_dim, g_width, arch=arch)
        self.critic = build_critic(self.data_shape, d_width, critic_norm, arch=arch)
        # samples and evaluation use the generator's moving average when there is one
        self.generator_ema = schedules.make_ema(self.generator, ema_decay)

    # --- the losses: one pair per algorithm ---------------------------------------------------

    def critic_loss(
        self, real: Tensor, fake: Tensor, noise: torch.Generator
    ) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_loss(self, f_fake: Tensor) -> Tensor:
        raise NotImplementedError

    def after_critic_step(self) -> dict[str, Tensor] | None:
        """Called after every critic update (WGAN clips its weights here); may return metrics."""

    def critic_metrics(self, f_real: Tensor, f_fake: Tensor) -> dict[str, Tensor]:
        """What the critic's scores say, without any penalty: for a Wasserstein critic the EMD
        estimate (docs/theory.md §5). The GAN overrides it with D's probabilities."""
        return {"critic_emd": critic_emd(f_real, f_fake)}

    # --- Algorithm 1 -------------------------------------------------------------------------

    def training_step(self, batch: Tensor, batch_idx: int) -> None:
        step = self.global_step  # the generator step updates it
        noise = self.step_noise()  # z and eps of this step: a function of (seed, step, rank)
        reals = self.real_batches(batch)  # n_critic (or a burst's) disjoint (B, ...) batches
        critic = [self.critic_update(real, noise) for real in reals]
        loss_g = self.generator_update(len(reals[0]) * self.hparams.g_batch_factor, noise)
        # once per step, on the device: a NaN stops training before anything is saved or logged
        self.check_finite(step, d_loss=torch.stack([m["d_loss"] for m in critic]), g_loss=loss_g)
        if self.logging_step():  # the critic's figures averaged over its updates of this step
            logged = {k: torch.stack([m[k] for m in critic]).mean() for k in critic[0]}
            self.log_train(logged | {"g_loss": loss_g}, batch_size=len(reals[0]))

    def critic_update(self, real: Tensor, noise: torch.Generator) -> dict[str, Tensor]:
        """One critic update on a real batch and as many fakes; returns its detached metrics."""
        opt_d = self.optimizers()[1]
        if self.hparams.dequantize:  # real + U(0, d): as the reference fed its critic
            real = real + self.hparams.dequantize * self.rand(*real.shape, noise=noise)
        with torch.no_grad():  # G receives nothing from the critic's loss
            fake = self.generator(self.randn(len(real), self.latent_dim, noise=noise))
        loss, metrics = self.critic_loss(real, fake, noise)
        opt_d.zero_grad(set_to_none=True)  # also drops what the last generator step left in D
        # not counted in global_step (docs/design.md#global-step-counts-generator-iterations)
        self.update(opt_d, touch_every_parameter(loss, self.generator), counted=False)
        metrics |= self.after_critic_step() or {}
        return {"d_loss": loss.detach()} | {k: v.detach() for k, v in metrics.items()}

    def generator_update(self, batch_size: int, noise: torch.Generator) -> Tensor:
        """One generator update (counted in global_step); returns the detached loss."""
        opt_g = self.optimizers()[0]
        z = self.randn(batch_size, self.latent_dim, noise=noise)
        loss = self.generator_loss(self.critic(self.generator(z)))
        opt_g.zero_grad(set_to_none=True)
        self.update(opt_g, loss, counted=True)  # D gets gradients too; zeroed before its update
        for sched in self.schedulers():
            sched.step()
        if self.generator_ema is not None:  # global_step already counts this update
            h = self.hparams
            copy = self.global_step == 1 or self.global_step < h.ema_start  # first, or too early
            schedules.update_ema(self.generator_ema, self.generator, h.ema_decay, copy)
        return loss.detach()

    # --- the pieces the loop uses --------------------------------------------------------------

    @property
    def real_batches_per_step(self) -> int:
        """The DataModule hands each step n_critic fresh real batches, stacked."""
        return self.hparams.n_critic

    def critic_iterations(self, step: int) -> int:
        """Critic updates before generator update ``step`` (``schedules.critic_iterations``)."""
        h = self.hparams
        return schedules.critic_iterations(h.critic_schedule, h.n_critic, step)

    def real_batches(self, batch: Tensor) -> tuple[Tensor, ...]:
        """One fresh real batch per critic update of this step: the loader's n_critic disjoint
        batches, plus, on a burst step of the ``wgan`` schedule, the rest drawn from the
        DataModule's seeded stream (``GANDataModule.draw_train``)."""
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
        if self.hparams.lr_schedule == "constant":
            return opts
        return opts, schedules.linear_decay(opts, self.trainer.max_steps)

    @classmethod
    def schedule_over_max_steps(cls, hparams: dict) -> str | None:
        linear = hparams.get("lr_schedule") == "linear"  # decays to 0 at the last step
        return "--model.lr_schedule linear" if linear else None

    def schedulers(self) -> list:
        found = self.lr_schedulers()
        return [] if found is None else found if isinstance(found, list) else [found]

    # --- validation: the EMD estimate on held-out data ------------------------------------------

    def on_validation_epoch_start(self) -> None:
        # Batch norm's running statistics are read only here, each rank on its shard, and in
        # rank 0's samples and checkpoints: every rank evaluates with rank 0's, sent once per
        # evaluation rather than after every step (docs/design.md#every-parameter-in-every-backward)
        broadcast_buffers(self)

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        noise = self.eval_noise(batch_idx)
        fake = self.generator(self.randn(len(batch), self.latent_dim, noise=noise))
        # the critic as it was trained: batch norm on each batch's statistics (docs/theory.md
        # §5), so that training and held-out estimates differ by the data alone
        with batch_statistics(self.critic):
            f_fake = self.critic(fake)
            logged = self.critic_metrics(self.critic(batch), f_fake)
            seen = self.training_images(batch_idx, len(batch))
            if "critic_emd" in logged and seen is not None:  # the critic's overfitting
                logged["critic_emd_train"] = self.critic_metrics(self.critic(seen), f_fake)[
                    "critic_emd"
                ]  # on as many training images, against the same fakes
                logged["critic_emd_gap"] = logged["critic_emd_train"] - logged["critic_emd"]
            # Lipschitz diagnostics: ||grad_x f|| at real, generated and interpolated points
            x_hat = interpolate(batch, fake, self.rand(len(batch), noise=noise))
            with torch.enable_grad():
                for name, x in (("real", batch), ("fake", fake), ("interp", x_hat)):
                    norms = input_grad_norm(self.critic, x)
                    logged[f"grad_norm_{name}_mean"] = norms.mean()
                    max_key = f"{self.eval_stage}/grad_norm_{name}_max"
                    self.log(max_key, norms.max(), reduce_fx="max", sync_dist=True,
                             batch_size=len(x))  # fmt: skip
        self.log_eval(logged, batch_size=len(batch))

    def training_images(self, batch_idx: int, n: int) -> Tensor | None:
        """``n`` fixed training images for validation batch ``batch_idx`` (other ones on each
        rank), or None (a test, or no training set at hand)."""
        trainer = self.attached_trainer
        train_set = getattr(getattr(trainer, "datamodule", None), "train_set", None)
        if self.eval_stage != "val" or train_set is None or len(train_set) < n:
            return None
        shard = batch_idx * trainer.world_size + trainer.global_rank
        start = shard * n % (len(train_set) - n + 1)
        return torch.stack([train_set[i] for i in range(start, start + n)]).to(self.device)

    test_step = validation_step  # the same figures on the test split, logged as test/...
