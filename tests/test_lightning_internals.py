"""Canaries: each touch of a private Lightning name (lightning_gans/lightning_internals.py) still
does what the template relies on. A failure names the touch and what changed in Lightning; the
way out is to follow Lightning's change there, or to drop the touch if Lightning now offers it
publicly. And nothing outside that module touches Lightning's privates."""

from __future__ import annotations

import ast
import contextlib
import inspect
import re
import signal
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import Logger, WandbLogger

from lightning_gans import lightning_internals as li
from tests.helpers import ROOT

LIGHTNING = Path(L.__file__).parent


class Rows(Logger):
    """Every row Lightning hands a logger, with its step label."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[int, dict]] = []

    name, version = "rows", "0"

    def log_metrics(self, metrics, step=None) -> None:
        self.rows.append((step, dict(metrics)))

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass


class Tiny(L.LightningModule):
    """A linear model on random data; ``hooks`` maps a hook name to a function(module)."""

    def __init__(self, hooks=None, manual: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Linear(2, 1)
        self.hooks = hooks or {}
        self.automatic_optimization = not manual
        self.seen: list = []

    def train_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(48, 2), batch_size=4)  # 12 batches

    def val_dataloader(self):
        return torch.utils.data.DataLoader(torch.randn(8, 2), batch_size=4)

    def training_step(self, batch, batch_idx):
        loss = self.net(batch).pow(2).mean()
        if "training_step" in self.hooks:
            self.hooks["training_step"](self, batch_idx)
        if not self.automatic_optimization:
            opt = self.optimizers()
            opt.zero_grad()
            self.manual_backward(loss)
            li.count_optimizer_step(opt, opt.optimizer.step)
            return None
        return loss

    def validation_step(self, batch, batch_idx):
        self.seen.append(("val", self.global_step))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def on_train_batch_start(self, batch, batch_idx):
        if "on_train_batch_start" in self.hooks:
            self.hooks["on_train_batch_start"](self, batch_idx)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        if "on_train_batch_end" in self.hooks:
            self.hooks["on_train_batch_end"](self, batch_idx)

    def on_train_epoch_end(self):
        if "on_train_epoch_end" in self.hooks:
            self.hooks["on_train_epoch_end"](self, None)


def trainer(tmp_path, **kwargs) -> L.Trainer:
    settings = dict(max_steps=12, logger=Rows(), enable_progress_bar=False,
                    enable_model_summary=False, enable_checkpointing=False,
                    limit_val_batches=0, default_root_dir=tmp_path)  # fmt: skip
    return L.Trainer(**(settings | kwargs))


def canary(touch: str, what: str) -> str:
    return f"lightning_internals.{touch}: Lightning changed {what}"


@contextlib.contextmanager
def touching(touch: str, what: str):
    """A touch that no longer finds what it reaches for fails with the canary's message."""
    try:
        yield
    except (AttributeError, TypeError, KeyError) as e:
        pytest.fail(f"{canary(touch, what)}: {type(e).__name__}: {e}")


def test_should_update_logs_is_lightnings_cadence(tmp_path):
    said = []
    model = Tiny(
        {"on_train_batch_start": lambda m, i: said.append(li.should_update_logs(m.trainer))}
    )
    with touching("should_update_logs", "_logger_connector.should_update_logs"):
        trainer(tmp_path, log_every_n_steps=5).fit(model)
    assert said == [(i + 1) % 5 == 0 for i in range(12)], canary(
        "should_update_logs", "when it writes a step's figures (_logger_connector)"
    )


def test_the_log_counter_labels_rows_and_epoch_rows(tmp_path):
    def log(m, i):
        m.log("a", float(i), on_step=True, on_epoch=False)
        m.log("b", float(i), on_step=False, on_epoch=True)

    hooks = {
        "on_train_batch_start": lambda m, i: li.align_log_counter(m.trainer, 100 + i),
        "training_step": log,
        "on_train_epoch_end": lambda m, _: li.label_epoch_rows(m.trainer, 500),
    }
    logger = Rows()
    with touching("align_log_counter", "fit_loop.epoch_loop._batches_that_stepped"):
        trainer(tmp_path, log_every_n_steps=1, logger=logger, max_steps=12).fit(Tiny(hooks))
    step_rows = [step for step, row in logger.rows if "a" in row]
    epoch_rows = [step for step, row in logger.rows if "b" in row]
    assert step_rows == [100 + i for i in range(12)], canary(
        "align_log_counter", "the counter that labels rows (epoch_loop._batches_that_stepped)"
    )
    assert epoch_rows == [500], canary(
        "label_epoch_rows", "how epoch rows are labelled (fit_loop.on_advance_end)"
    )


def test_forget_step_figures_drops_only_the_named_ones(tmp_path):
    """After a logging step the named figure is no longer read (no .item() per step), its
    value is kept, and another figure's epoch mean is whole."""

    def log(m, i):
        m.log("mine", float(i), prog_bar=True, on_step=True, on_epoch=False)
        m.log("theirs", float(i), on_step=False, on_epoch=True)

    def forget(m, i):
        if i == 5:  # after the logging step 4 (log_every_n_steps 5)
            li.forget_step_figures(m.trainer, ["mine"])
            live = {k for k, _ in m.trainer._results.valid_items()}
            m.seen.append(live)

    logger = Rows()
    model = Tiny({"training_step": log, "on_train_batch_start": forget})
    t = trainer(tmp_path, log_every_n_steps=5, logger=logger)
    with touching("forget_step_figures", "trainer._results and its items' meta"):
        t.fit(model)
    (live,) = model.seen
    assert "training_step.mine" not in live and "training_step.theirs" in live, canary(
        "forget_step_figures", "the result collection (trainer._results, item.reset)"
    )
    assert t.progress_bar_metrics["mine"] == 11.0  # Lightning's view after the last step
    (epoch_row,) = [row for _, row in logger.rows if "theirs" in row]
    assert epoch_row["theirs"] == pytest.approx(5.5)  # mean of 0..11


def test_count_optimizer_step_counts_global_step(tmp_path):
    t = trainer(tmp_path, max_steps=7)
    with touching("count_optimizer_step", "LightningOptimizer._on_before_step/_on_after_step"):
        t.fit(Tiny(manual=True))
    assert t.global_step == 7, canary(
        "count_optimizer_step", "LightningOptimizer's step counters (_on_before/_on_after_step)"
    )


def test_lightning_sigterm_off_keeps_lightnings_handler_out(tmp_path):
    """Lightning installs its SIGTERM handler when a fit starts; switched off, the handler in
    place during training is the one from before."""
    seen = []

    def record(m, i):
        if i == 0:
            seen.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    t = trainer(tmp_path, max_steps=2)
    t.fit(Tiny({"on_train_batch_start": record}))
    assert seen[0] is not before, canary(
        "lightning_sigterm_off", "where it installs its SIGTERM handler (nothing to switch off)"
    )
    t = trainer(tmp_path, max_steps=2)
    with touching("lightning_sigterm_off", "_signal_connector or the epoch loop"):
        li.lightning_sigterm_off(t)
        t.fit(Tiny({"on_train_batch_start": record}))
    assert seen[1] is before, canary(
        "lightning_sigterm_off", "_signal_connector.register_signal_handlers"
    )
    assert inspect.getsource(type(t.fit_loop.epoch_loop)).count("_broadcast_sigterm_tensor") >= 2, (
        canary("lightning_sigterm_off", "the per-step broadcast (_broadcast_sigterm_tensor)")
    )


@pytest.mark.parametrize(("stop_at", "validated"), [(2, False), (4, True)])
def test_stop_without_extra_validation_runs_only_a_due_one(tmp_path, stop_at, validated):
    """val_check_interval 5: the step after batch 4 is due; the one after batch 2 is not."""

    def stop(m, i):
        if i == stop_at:
            li.stop_without_extra_validation(m.trainer)

    model = Tiny({"on_train_batch_end": stop})
    t = trainer(tmp_path, limit_val_batches=1, val_check_interval=5, num_sanity_val_steps=0)
    with touching("stop_without_extra_validation", "_should_check_val_fx/_data_fetcher"):
        t.fit(model)
    assert t.global_step == stop_at + 1
    assert bool(model.seen) == validated, canary(
        "stop_without_extra_validation", "_should_check_val_fx / _skip_next_val"
    )


def test_the_checkpoint_hparams_hook_runs_where_lightning_reads_them():
    source = inspect.getsource(L.pytorch.cli.LightningCLI.__init__)
    assert "self._parse_ckpt_path()" in source, canary(
        "CheckpointHparamsHook", "LightningCLI._parse_ckpt_path, or where __init__ calls it"
    )
    assert inspect.signature(L.pytorch.cli.LightningCLI._parse_ckpt_path).parameters.keys() == {
        "self"
    }


def test_wandb_still_gets_an_anonymous_value(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True)
    assert "anonymous" in getattr(logger, "_wandb_init", {}), canary(
        "drop_wandb_anonymous", "WandbLogger's init arguments: the touch is no longer needed"
    )
    li.drop_wandb_anonymous(logger)
    assert "anonymous" not in logger._wandb_init


def test_wandb_logger_keeps_its_run_and_init_arguments_where_the_restart_sets_them(tmp_path):
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, id="kept")
    assert getattr(logger, "_wandb_init", {}).get("id") == "kept", canary(
        "start_wandb_run_again", "WandbLogger's wandb.init arguments (_wandb_init)"
    )
    run = object()
    logger._experiment = run  # what start_wandb_run_again sets: experiment must return it
    assert logger.experiment is run, canary(
        "start_wandb_run_again", "where WandbLogger keeps its run (_experiment)"
    )
    source = inspect.getsource(WandbLogger.experiment.fget)
    axis = 'define_metric("*", step_metric="trainer/global_step", step_sync=True)'
    assert axis in source, canary(
        "start_wandb_run_again", "the x-axis WandbLogger defines for a new run"
    )


def lightning_source() -> str:
    return "\n".join(p.read_text() for p in LIGHTNING.rglob("*.py"))


def test_each_message_kept_off_the_console_is_lightnings():
    source = re.sub(r"\"\s*\n\s*f?\"", "", lightning_source())  # "a " "b" -> "a b"
    from packaging.version import Version

    installed = Version(L.__version__)
    for text in li.LIGHTNING_INFO_UNSAID:
        if installed < Version(li.SAID_SINCE.get(text, "0")):
            continue  # not yet said by this release: the filter waits for it
        assert text in source, canary("LIGHTNING_INFO_UNSAID", f"the message {text!r}")
    for pattern in li.LIGHTNING_WARNINGS_UNSAID:
        # the pattern without its leading/trailing .* and with f-string holes as .*
        core = pattern.removeprefix(".*").removesuffix(".*")
        plain = re.sub(r"\{[^}]*\}", "X", source)  # f-string holes match .*
        assert re.search(core, plain), canary(
            "LIGHTNING_WARNINGS_UNSAID", f"the warning {pattern!r}"
        )


# --- nothing else touches Lightning's privates ------------------------------------------------


def lightning_private_names() -> set[str]:
    """The names Lightning gives its own private attributes and methods."""
    found = re.findall(r"(?:def |self\.|\.)(_[a-zA-Z]\w*)", lightning_source())
    return {n for n in found if not n.startswith("__")}


def test_no_private_lightning_name_outside_the_internals_module():
    private = lightning_private_names()
    allowed = {"_class_path"}  # a key of the checkpoint's hyper_parameters, not an attribute
    offenders = []
    for path in sorted((ROOT / "lightning_gans").rglob("*.py")):
        if path.name == "lightning_internals.py":
            continue
        tree = ast.parse(path.read_text())
        methods = {id(f) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body}
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.FunctionDef) and id(node) in methods:  # an override
                names.append(node.name)
            for name in names:
                if name in private and name not in allowed:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert offenders == []
