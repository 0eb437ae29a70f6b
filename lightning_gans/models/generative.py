"""What every model shares: its options saved for ``load_from_checkpoint``, ``sample(n)``, a
fixed latent batch for pictures, the per-step random streams and the finiteness guard."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import lightning as L
import torch
from torch import Tensor

from lightning_gans.errors import ConfigError, NonFiniteLossError, require
from lightning_gans.models.distributed import is_distributed
from lightning_gans.models.lean import lean_path_allowed
from lightning_gans.models.options import check_options, model_rules

NEVER = torch.iinfo(torch.long).max  # "no non-finite loss yet", above every step
GUARD_EVERY = 10  # steps between finiteness checks when nothing is logged


class GenerativeModule(L.LightningModule):
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
        self._first_bad: dict[str, Tensor] = {}  # loss name -> first non-finite step, or NEVER
        self._loaded_step = 0  # the global_step of the checkpoint loaded, if any
        self._loaded_optimizers: int | None = None  # and how many optimizer states it held
        self.lean = False  # updates skip Lightning's hook dispatch (set when training starts)
        self._noise: torch.Generator | None = None  # step_noise's, reseeded every step
        self._logging = True  # whether this step's figures are logged (on_train_batch_start)

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
        # Lightning's log-step counter (which picks the logging steps) equals global_step before
        # each update in an uninterrupted run, but resumes one ahead from a checkpoint written
        # at the end of a fit: an extended run would log other steps than a straight one.
        self.trainer.fit_loop.epoch_loop._batches_that_stepped = self.global_step
        logged, self._logging = self._logging, self.trainer._logger_connector.should_update_logs
        # Lightning reads the last logged figures again at the end of every later step, and
        # turns the progress bar's into numbers with .item(): a wait for the device per step.
        # Once the logging step has written them they are forgotten (the trainer keeps their
        # values in callback_metrics and progress_bar_metrics).
        if logged:
            self.trainer._results.reset(metrics=False, fx="training_step")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        # A stop (time limit, signal) makes Lightning log the step it stops at whatever the
        # cadence: with nothing logged there it would repeat the last logged values under it.
        if self.trainer.should_stop and not self._logging:
            self.trainer._results.reset(metrics=False, fx="training_step")

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
        fitting = self._trainer is None or self.trainer.state.fn == "fit"
        self.log("step", float(self.global_step if fitting else self._loaded_step), batch_size=1)

    def update(self, optimizer, loss: Tensor, counted: bool) -> None:
        """Backward of ``loss``, then one step of ``optimizer`` (``self.optimizers()``'s).
        ``counted``: a generator step, counted in global_step; the critic's are not
        (docs/design.md#global-step-counts-generator-iterations). Through Lightning's hooks,
        AMP scaling and DDP, or, where nobody listens, the lean path: the same arithmetic
        without the hook dispatch (docs/design.md#the-lean-update-path)."""
        if self.lean:
            loss.backward()
            if counted:  # the progress counters LightningOptimizer.step keeps
                optimizer._on_before_step()
            optimizer.optimizer.step()
            if counted:
                optimizer._on_after_step()
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

    # --- the finiteness guard: docs/design.md#a-nan-stops-every-rank -------------------------

    def check_finite(self, step: int | None = None, **losses: Tensor) -> None:
        """Notes, on the device and without waiting for it, the first step (default: this one)
        at which each loss was NaN/inf (steps only grow, so the minimum is the first).
        ``verify_finite`` acts on it before anything is logged or saved."""
        step = self.global_step if step is None else step
        for name, value in losses.items():
            first = self._first_bad.get(name)
            if first is None:
                first = self._first_bad[name] = torch.full((), NEVER, device=value.device)
            bad_at = torch.where(torch.isfinite(value.detach()).all(), NEVER, step)
            torch.minimum(first, bad_at, out=first)
        # with logging off (log_every_n_steps 0) nothing would act on it until the next save:
        # the guard must not depend on the logging cadence
        off = self._trainer is not None and self.trainer.log_every_n_steps == 0
        if off and step % GUARD_EVERY == 0:
            self.verify_finite()

    def verify_finite(self, weights: bool = False) -> None:
        """Stops training if a loss was non-finite on any rank: on logging steps and before
        every checkpoint save, so no checkpoint holds weights updated with it. With
        ``weights`` (at a save) also if any parameter or buffer is: a finite loss can still
        meet a non-finite gradient (fp32/bf16 overflow, Adam on an inf). The ranks agree (one
        all-reduce), so every rank stops at the same step with the same error."""
        names = sorted(self._first_bad)
        firsts = [self._first_bad[n] for n in names]
        if weights:
            names.append("weights")
            firsts.append(self._non_finite_weights_step())
        if not firsts:
            return
        firsts = torch.stack(firsts)
        if is_distributed():
            torch.distributed.all_reduce(firsts, op=torch.distributed.ReduceOp.MIN)
        firsts = firsts.tolist()  # the guard's one host sync
        step = min(firsts)
        if step == NEVER:
            return
        bad = [n for n, s in zip(names, firsts, strict=True) if s == step and n != "weights"]
        if not bad:  # the losses were finite: the update itself went wrong
            raise NonFiniteLossError(
                f"non-finite weights at generator step {step} after finite losses; training "
                "stopped, no checkpoint holds them (the last one on disk is from before)"
            )
        raise NonFiniteLossError(
            f"non-finite loss at generator step {step}: {', '.join(bad)}; training stopped, "
            "no checkpoint holds the weights after it"
        )

    def _non_finite_weights_step(self) -> Tensor:
        """This step if any floating-point parameter or buffer is NaN/inf, else NEVER."""
        tensors = [t for t in self.state_dict().values() if t.is_floating_point()]
        finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all()
        return torch.where(finite, NEVER, self.global_step).to(self.device)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        self.verify_finite(weights=True)  # raising here writes nothing: the file on disk stays


def _no_closure() -> None:
    return None
