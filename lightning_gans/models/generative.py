"""What every model shares: its options saved for ``load_from_checkpoint``, ``sample(n)``, a
fixed latent batch for pictures, the per-step random streams and the finiteness guard."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch import Tensor

from lightning_gans.errors import ConfigError, require
from lightning_gans.lightning_internals import (
    align_log_counter,
    count_optimizer_step,
    forget_step_figures,
    label_epoch_rows,
    should_update_logs,
)
from lightning_gans.models.finiteness import FinitenessGuard
from lightning_gans.models.lean import lean_path_allowed
from lightning_gans.models.options import check_options, model_rules


class GenerativeModule(FinitenessGuard, L.LightningModule):
    """Base of every model. Its options are keyword-only; a subclass lists its own and forwards
    the rest as ``**kwargs``. Every constructor argument of the whole chain is saved as
    ``self.hparams``, so ``load_from_checkpoint(path)`` needs no config.

    Args:
        data_shape: shape of one sample, linked from the DataModule by the CLI.
        latent_dim: dimension of the latent (noise) vector z.
        seed: seeds the per-step noise and the fixed latent batch of the sample pictures.
        channels_last: image nets in channels-last memory layout, so are their activations
            (opt-in speed: faster convolutions on tensor-core GPUs under bf16/fp16).
        compile: ``torch.compile`` each trained network (opt-in speed, first steps slower).
    """

    def __init__(
        self,
        *,
        data_shape: Sequence[int] = (2,),
        latent_dim: int = 128,
        seed: int = 0,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # collects the arguments of every __init__ in the chain
        check_options(self.hparams, model_rules(type(self)))  # models/options.py, before any net
        image = len(data_shape) == 3
        require(image or not channels_last, "channels_last", channels_last, "false for 2-D data")
        self.data_shape = tuple(data_shape)
        self.latent_dim = latent_dim
        # the latent batch of every sample picture of a run: a buffer, so it is checkpointed
        fixed = torch.randn(64, latent_dim, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("fixed_z", fixed)  # (64, latent_dim)
        self._first_bad: dict[str, Tensor] = {}  # finiteness guard: loss -> first bad step
        self._loaded_step = 0  # the global_step of the checkpoint loaded, if any
        self._loaded_optimizers: int | None = None  # and how many optimizer states it held
        self.lean = False  # updates skip Lightning's hook dispatch (set when training starts)
        self._noise: torch.Generator | None = None  # step_noise's, reseeded every step
        self._logging = True  # whether this step's figures are logged (on_train_batch_start)
        self._own_figures: set[str] = set()  # what log_train and log_step log in a step

    def decode(self, z: Tensor, ema: bool = True) -> Tensor:
        """z -> data space; ``ema``: with averaged weights where the model keeps them."""
        raise NotImplementedError

    # --- opt-in speed: docs/design.md#speed-options -------------------------------------------

    def configure_model(self) -> None:
        """Lightning calls this on the model's device before the optimisers exist."""
        if self.hparams.channels_last:  # 4-D weights only, same Parameters; a convolution
            self.to(memory_format=torch.channels_last)  # with such weights returns the layout
        if self.hparams.compile:  # in place (state_dict keys unchanged); not the frozen EMA
            for net in self.children():
                if any(p.requires_grad for p in net.parameters()):
                    net.compile()

    @property
    def eval_stage(self) -> str:
        """``val`` or ``test``: the prefix of the figures an evaluation step logs."""
        trainer = self.attached_trainer
        return "test" if trainer is not None and trainer.testing else "val"

    @property
    def attached_trainer(self) -> L.Trainer | None:
        """The trainer, or None outside one (Lightning's ``trainer`` raises there)."""
        try:
            return self.trainer
        except RuntimeError:
            return None

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

    def samples(self, z: Tensor, batch_size: int = 500, ema: bool = True) -> Iterator[Tensor]:
        """``sample(z=z)`` a batch at a time, on the CPU: memory bounded by one batch however
        many rows z has (50k samples of the ResNet preset at once would need ~113 GiB)."""
        for chunk in z.split(batch_size):
            yield self.sample(z=chunk, ema=ema).float().cpu()

    # --- randomness keyed by (seed, step, rank): docs/design.md#noise-keyed-by-seed-step-rank ---

    def keyed_seed(self, index: int) -> int:
        """A seed that is a function of (seed, index, rank) only."""
        return ((self.hparams.seed * 1_000_003 + index) * 1_009 + self.global_rank) % 2**63

    def step_seed(self) -> int:
        """The seed of one training step, keyed by the step, so a resumed run draws exactly
        what the uninterrupted run drew, and ranks differ."""
        return self.keyed_seed(self.global_step)

    def step_noise(self) -> torch.Generator:
        """The random stream of one training step (``step_seed``), on the model's device: one
        generator, reseeded at every step (a new one per step costs host time)."""
        if self._noise is None or self._noise.device != self.device:
            self._noise = torch.Generator(self.device)
        return self._noise.manual_seed(self.step_seed())

    def eval_noise(self, batch_idx: int) -> torch.Generator:
        """The random stream of one validation or test batch: a function of (seed, batch,
        rank), the same at every evaluation, different on every rank (each rank holds other
        held-out data, and should hold other fakes too)."""
        return torch.Generator(self.device).manual_seed(self.keyed_seed(batch_idx))

    def randn(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.randn(*shape, generator=noise, device=self.device)

    def rand(self, *shape: int, noise: torch.Generator) -> Tensor:
        return torch.rand(*shape, generator=noise, device=self.device)

    # --- logging and the finiteness guard ----------------------------------------------------

    # --- one step label: docs/design.md#one-step-label ----------------------------------------

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        align_log_counter(self.trainer, self.global_step)
        logged, self._logging = self._logging, should_update_logs(self.trainer)
        # Lightning reads the last logged figures again at the end of every later step, and
        # turns the progress bar's into numbers with .item(): a wait for the device per step.
        # Once the logging step has written them, the template's own are forgotten (the
        # trainer keeps their values in callback_metrics and progress_bar_metrics); a fork's
        # own self.log figures are Lightning's, as documented.
        if logged:
            forget_step_figures(self.trainer, self._own_figures)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # A stop (time limit, signal) makes Lightning log the step it stops at whatever the
        # cadence: with nothing logged there it would repeat the last logged values under it.
        if self.trainer.should_stop and not self._logging:
            forget_step_figures(self.trainer, self._own_figures)

    def on_train_epoch_end(self) -> None:
        # a fork's on_epoch=True figures: their row reads this step, as its step rows do
        label_epoch_rows(self.trainer, self.global_step)

    def logging_step(self) -> bool:
        """Whether Lightning writes this step's training metrics (every ``log_every_n_steps``;
        outside a fit, always). ``self.log`` on the other steps is thrown away, yet it builds
        Lightning's result objects every time (measured: 0.69 s of 5.1 s over 100 toy8 GAN
        iterations on a CPU), so the models log only on these steps
        (docs/design.md#private-lightning-apis). Asked of Lightning once per step, when it
        starts: a step asks several times, and each asking costs host time."""
        return self._logging

    def log_train(self, metrics: dict[str, Tensor], batch_size: int) -> None:
        """``train/<name>`` for each metric, averaged across ranks, on logging steps only."""
        if not self.logging_step():
            return
        self.verify_finite()
        logged = {f"train/{k}": v.detach() for k, v in metrics.items()}
        self.log_dict(logged, prog_bar=True, sync_dist=True, batch_size=batch_size)
        self._own_figures.update(logged)
        self.log_step()

    def log_eval(self, metrics: dict[str, Tensor], batch_size: int) -> None:
        """``val/<name>`` (or ``test/<name>``) for each metric, averaged across ranks."""
        logged = {f"{self.eval_stage}/{k}": v for k, v in metrics.items()}
        self.log_dict(logged, sync_dist=True, batch_size=batch_size)
        self.log_step()

    def log_step(self) -> None:
        """Labels the row with ``global_step``, the generator updates done: the number in the
        names of this step's checkpoint and pictures and in its FID row. Lightning's own label
        is one lower during training, and 0 for ``validate``/``test`` of a checkpoint; a metric
        named ``step`` replaces it (docs/design.md#one-step-label)."""
        trainer = self.attached_trainer
        fitting = trainer is None or trainer.state.fn == "fit"
        self.log("step", float(self.global_step if fitting else self._loaded_step), batch_size=1)
        self._own_figures.add("step")

    def update(self, optimizer, loss: Tensor, counted: bool) -> None:
        """Backward of ``loss``, then one step of ``optimizer`` (``self.optimizers()``'s).
        ``counted``: a generator step, counted in global_step; the critic's are not
        (docs/design.md#global-step-counts-generator-iterations). Through Lightning's hooks,
        AMP scaling and DDP, or, where nobody listens, the lean path: the same arithmetic
        without the hook dispatch (docs/design.md#the-lean-update-path)."""
        if self.lean:
            loss.backward()
            if counted:  # with the progress counters LightningOptimizer.step keeps
                count_optimizer_step(optimizer, optimizer.optimizer.step)
            else:
                optimizer.optimizer.step()
            return
        self.manual_backward(loss)
        if counted:
            optimizer.step()
        else:  # through the strategy, not the LightningOptimizer: not counted as a step
            self.trainer.strategy.optimizer_step(optimizer.optimizer, closure=_no_closure)

    def on_train_start(self) -> None:
        self.lean = lean_path_allowed(self.trainer, self)
        # Lightning pairs saved optimizer states with the optimizers by zip: a file with fewer
        # would resume the rest from scratch, silently
        loaded, mine = self._loaded_optimizers, len(self.trainer.optimizers)
        if loaded is not None and loaded != mine:
            raise ConfigError(
                f"the checkpoint holds {loaded} optimizer states, this model has {mine} "
                "optimizers: it cannot continue this run; start a new run"
            )

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # ``validate``/``test`` restore no loop state: global_step stays 0 there
        self._loaded_step = checkpoint.get("global_step", 0)
        self._loaded_optimizers = len(checkpoint.get("optimizer_states", []))
        mine, saved = self.state_dict(), checkpoint.get("state_dict", {})
        for key, value in mine.items():  # a foreign or damaged file: one line, not torch's
            found = saved.get(key)
            if found is None or tuple(found.shape) != tuple(value.shape):
                had = "nothing" if found is None else f"shape {list(found.shape)}"
                raise ConfigError(
                    f"the checkpoint does not fit this model: {key} is {had} in the file, "
                    f"shape {list(value.shape)} here"
                )

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.verify_finite(weights=True)  # raising here writes nothing: the file on disk stays
        trainer = self.attached_trainer
        if trainer is not None:  # the length a schedule over max_steps was built for
            checkpoint["max_steps"] = trainer.max_steps

    @classmethod
    def schedule_over_max_steps(cls, hparams: dict) -> str | None:
        """The option that makes this model's learning rates a function of
        ``--trainer.max_steps`` (say ``--model.lr_schedule linear``), else None. A resume with
        another max_steps would then not continue the straight run, and is refused
        (launch/resume_rule.py). A fork whose schedule depends on max_steps says so here."""
        return None


def _no_closure() -> None:
    return None
