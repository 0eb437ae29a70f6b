"""What is measured while a model trains: the transport distance its critic estimates, and
FID/KID of its samples."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from lightning_gans.callbacks.checkpoints import checkpoint_dir
from lightning_gans.data import REFERENCES, batches, first_n
from lightning_gans.data.datasets import DataError
from lightning_gans.errors import NonFiniteLossError, require
from lightning_gans.metrics.features import FEATURES
from lightning_gans.metrics.image_quality import ImageQuality
from lightning_gans.metrics.theory import sliced_wasserstein1, wasserstein1


class TransportDistance(L.Callback):
    """At the end of each validation, the truth the critic's estimate is checked against:
    ``val/exact_w1``, exact W1 (POT) between ``n_points`` samples and held-out data for 2-D sets;
    for images, where exact OT is too slow to repeat, ``val/sliced_w1_lower_bound`` (a lower
    bound on W1, not an estimate of it; docs/theory.md §5). For a Wasserstein critic also
    ``val/critic_emd_over_exact_w1`` on the same points: ~1 for a 1-Lipschitz critic at its
    optimum, the unknown K for a clipped one (docs/theory.md §6). Every rank computes the same
    value, so every rank logs the same keys.

    Args:
        n_points: samples and held-out points per measurement (0: off).
        seed: seed of the samples' latent vectors.
    """

    def __init__(self, n_points: int = 2000, seed: int = 0):
        require(n_points >= 0, "transport.n_points", n_points, ">= 0 (0: off)")
        require(seed >= 0, "transport.seed", seed, ">= 0")
        self.n_points = n_points
        self.seed = seed

    @property
    def switched_off(self) -> bool:  # the CLI leaves it out of the trainer's callbacks
        return self.n_points == 0

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.measure(trainer, pl_module, "val_set", "val")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.measure(trainer, pl_module, "test_set", "test")

    def measure(self, trainer: L.Trainer, pl_module, split: str, stage: str) -> None:
        val_set = getattr(trainer.datamodule, split, None)
        if trainer.sanity_checking or val_set is None or self.n_points <= 0:
            return
        real = first_n(val_set, self.n_points)
        n = len(real)
        noise = torch.Generator().manual_seed(self.seed)
        z = torch.randn(n, pl_module.latent_dim, generator=noise)
        fake = pl_module.sample(z=z).float().cpu()
        if not torch.isfinite(fake).all():  # every rank holds the same weights: all stop here
            raise NonFiniteLossError(
                f"non-finite samples at generator step {trainer.global_step}: {stage} transport "
                "distance not computed; training stopped"
            )
        if real.dim() == 2:
            w1 = wasserstein1(fake, real)
            pl_module.log(f"{stage}/exact_w1", w1)
            critic = getattr(pl_module, "critic", None)
            if critic is not None:
                with torch.no_grad():
                    dev = pl_module.device
                    m = pl_module.critic_metrics(critic(real.to(dev)), critic(fake.to(dev)))
                if "critic_emd" in m:
                    pl_module.log(f"{stage}/critic_emd_over_exact_w1", m["critic_emd"].item() / w1)
        else:
            sliced = sliced_wasserstein1(real, fake, n_projections=128, seed=self.seed)
            pl_module.log(f"{stage}/sliced_w1_lower_bound", sliced)


class PeriodicImageQuality(L.Callback):
    """Every ``every_n_steps`` generator steps, FID and KID of ``n_samples`` samples against
    ``n_real`` images of the ``reference`` set, logged as ``val/domain_fid``, ``val/domain_kid``
    (or Inception's ``val/fid``, ``val/kid``, ``val/inception_score``) beside ``val/fid_n_fake``
    and ``val/fid_n_real``: FID is biased in N, so a figure is read with its counts. Published
    CIFAR-10 FIDs compare 50k samples with all 50k training images (``reference:
    full_train``). The reference features are computed once, at the first evaluation;
    samples are drawn and embedded a batch at a time. Images only. Under DDP rank 0 alone
    samples, embeds and computes: one figure per evaluation, from the same samples as a
    single process would draw (docs/design.md#fid-under-ddp); the other ranks learn how it
    went, so a failure there stops them too.

    Args:
        every_n_steps: generator steps between evaluations (0: off).
        n_samples: samples per evaluation.
        features: domain (offline; ``make classifier`` first) or inception
            (``make fetch-weights`` first).
        reference: the real images compared with: train, val, test or full_train (train + val).
        n_real: how many (default: n_samples); a smaller set is used whole, and it says so.
    """

    def __init__(
        self,
        every_n_steps: int = 0,
        n_samples: int = 1000,
        features: str = "domain",
        reference: str = "val",
        n_real: int | None = None,
    ):
        require(every_n_steps >= 0, "fid.every_n_steps", every_n_steps, ">= 0 (0: off)")
        require(n_samples >= 2, "fid.n_samples", n_samples, ">= 2")
        require(features in FEATURES, "fid.features", repr(features), " or ".join(FEATURES))
        refs = " or ".join(REFERENCES)
        require(reference in REFERENCES, "fid.reference", repr(reference), refs)
        require(n_real is None or n_real >= 2, "fid.n_real", n_real, ">= 2 or null")
        self.every = every_n_steps
        self.n = n_samples
        self.features = features
        self.reference = reference
        self.n_real = n_real or n_samples
        self.quality = None
        self.real = None  # the reference split, until rank 0 embeds it
        self.best: dict | None = None  # {"figure", "name", "step"} of checkpoints/best.ckpt
        self.measured_at = -1  # the step last measured: once per step, whatever calls the hook

    @property
    def switched_off(self) -> bool:  # the CLI leaves it out of the trainer's callbacks
        return self.every == 0

    def setup(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        data = trainer.datamodule
        if stage != "fit" or self.every <= 0:
            return
        images = len(pl_module.data_shape) == 3
        require(images, "fid.every_n_steps", self.every, "0 for 2-D data (FID compares images; "
                "val/exact_w1 measures a 2-D model)")  # fmt: skip
        data.setup(stage)
        split = getattr(data, f"{self.reference}_set")
        if len(split) < self.n_real:
            rank_zero_info(short_reference("fid.n_real", self.n_real, self.reference, len(split)))
            self.n_real = len(split)
        h = data.hparams
        try:
            self.quality = ImageQuality(
                self.features, h.dataset, h.image_size, pl_module.data_shape[0],
                device=pl_module.device,
            )  # fmt: skip
        except DataError as e:  # a config's default on a set without a domain classifier
            if self.features != "domain":
                raise
            rank_zero_info(f"no FID during this run: {e}")  # trains on, says so once
            return
        self.real = split  # embedded by rank 0 at its first measurement, not before: a run
        # shorter than every_n_steps (a test, a smoke run) pays nothing

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, *args) -> None:
        step = trainer.global_step
        if self.quality is None or step % self.every or step == self.measured_at:
            return  # (with accumulate_grad_batches k, k batches end at one step)
        self.measured_at = step
        failure, scores = None, {}
        if trainer.is_global_zero:
            try:
                scores = self.measure(pl_module)
            except NonFiniteLossError as e:
                failure = NonFiniteLossError(f"{e} at generator step {step}; training stopped")
            except Exception as e:  # noqa: BLE001 - told to every rank below, then raised
                failure = e
        best = self.improved(scores, step) if failure is None else None
        if trainer.world_size > 1:  # one collective per evaluation, not per step
            told, best = trainer.strategy.broadcast(  # rank 0 decides, for every rank
                (failure and (type(failure).__name__, str(failure)), best)
            )
            if told and failure is None:  # the other ranks stop with rank 0's error
                kind, said = told
                if kind == NonFiniteLossError.__name__:
                    raise NonFiniteLossError(said)
                raise RuntimeError(f"{said} (rank 0's FID)")
        if failure is not None:
            raise failure
        # straight to the loggers: self.log from a train-batch hook would be dropped unless the
        # step happened to be a multiple of log_every_n_steps
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{k}": v for k, v in scores.items()}, step)
        if best is not None:  # every rank (a DDP save is collective); rank 0 writes
            self.best = best
            trainer.save_checkpoint(self.best_path(trainer), weights_only=False)

    # --- the best checkpoint: the lowest FID so far, kept through resumes ----------------------

    def improved(self, scores: dict[str, float], step: int) -> dict | None:
        """The new best (figure, its name, step) when this evaluation beats the kept one."""
        name = next((k for k in ("domain_fid", "fid") if k in scores), None)
        if name is None or (self.best and scores[name] >= self.best["figure"]):
            return None
        return {"figure": float(scores[name]), "name": f"val/{name}", "step": step}

    @staticmethod
    def best_path(trainer: L.Trainer) -> Path:
        return checkpoint_dir(trainer) / "best.ckpt"  # beside last.ckpt

    def state_dict(self) -> dict:
        return {"best": self.best}  # in every checkpoint: a resume knows the best so far

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict.get("best")

    def embed_reference(self) -> None:
        """Rank 0's features of the reference images: once, at the first evaluation."""
        if self.real is not None:
            self.quality.set_real(batches(self.real, self.n_real))
            self.real = None

    def measure(self, pl_module) -> dict[str, float]:
        """The figures of this step, from ``n_samples`` samples drawn a batch at a time."""
        z = torch.randn(self.n, pl_module.latent_dim, generator=torch.Generator().manual_seed(0))
        self.quality.device = pl_module.device
        self.quality.net.to(pl_module.device)
        self.embed_reference()
        scores = self.quality(None, pl_module.samples(z))
        return scores | {"fid_n_fake": self.n, "fid_n_real": self.n_real}


def short_reference(option: str, wanted: int, reference: str, held: int) -> str:
    """The one line that says a reference set is smaller than asked (no published protocol)."""
    return (
        f"{option} {wanted}: the {reference} set holds {held} images, so FID uses all {held}; "
        "figures are comparable only with others at the same counts"
    )
