"""The first run a user makes: real MNIST digits embedded, a clean console with progress in
generator steps, a judge of the samples, W&B as its users set it up, and every README command
that exists and parses."""

from __future__ import annotations

import re
import shlex
from argparse import Namespace

import pytest
import torch
import yaml

from lightning_gans.data import datasets as ds
from lightning_gans.errors import ConfigError
from lightning_gans.metrics.precision_recall import precision_recall
from lightning_gans.run.loggers import make_loggers, wandb_mode
from tests.helpers import QUIET, ROOT, TINY_DIGITS, TINY_GAN_DIGITS, run_module

IMAGE_CONFIGS = ["gan", "wgan", "wgan_gp", "vae"]


def test_mnist5k_is_real_digits_with_a_held_out_split():
    (x, y), (x_test, y_test) = ds.mnist5k(32, seed=0)
    assert x.shape == (4000, 1, 32, 32) and x_test.shape == (1000, 1, 32, 32)
    assert x.min() == -1 and x.max() == 1 and (x[:, :, :2] == -1).all()  # padded with background
    assert set(y.tolist()) == set(y_test.tolist()) == set(range(10))
    assert torch.bincount(y_test).min() >= 60 and torch.bincount(y_test).max() <= 140  # shuffled
    flat, flat_test = x.flatten(1), x_test.flatten(1)
    assert not (torch.cdist(flat_test[:100], flat) == 0).any()  # no test image in training
    (x_again, _), _ = ds.mnist5k(32, seed=0)
    assert torch.equal(x, x_again)


@pytest.mark.parametrize("config", IMAGE_CONFIGS)
def test_default_image_configs_train_on_mnist5k_for_a_few_minutes(config):
    spec = yaml.safe_load((ROOT / "configs" / f"{config}.yaml").read_text())
    assert spec["data"]["dataset"] == "mnist5k"
    assert spec["trainer"]["max_time"] == "00:00:04:30"  # a time budget on any device
    presets = (ROOT / "configs" / "experiments").glob(f"*/{config}.yaml")
    for preset in presets:  # the paper-scale presets run their whole schedule
        assert "max_time" in yaml.safe_load(preset.read_text())["trainer"], preset


def test_precision_and_recall_see_fidelity_and_coverage():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 8, generator=g)
    assert precision_recall(real, real.clone()) == (1.0, 1.0)
    far = real + 100.0
    assert precision_recall(real, far) == (0.0, 0.0)
    half = real[real[:, 0] > 0]  # realistic, but covers half the data
    precision, recall = precision_recall(real, half)
    assert precision == 1.0 and 0.3 < recall < 0.8


QUIET_LINES = ["litlogger", "anonymous setting", "will be deleted", "weights_only", "FLOPs"]


def test_a_default_run_prints_progress_in_steps_and_nothing_else_to_ignore(tmp_path):
    proc = run_module(
        "fit", "--config", "configs/wgan.yaml", *TINY_DIGITS, *TINY_GAN_DIGITS,
        "--trainer.max_steps", "60", "--trainer.enable_model_summary", "true",
        "--run.root", str(tmp_path), "--run.name", "run",
        env={"WANDB_MODE": "offline", "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    for line in QUIET_LINES:
        assert line not in out, line
    assert not re.search(r"\bepoch \d", out)
    assert re.search(r"^step 50/60  [\d.]+ it/s  ETA \d+:\d\d:\d\d  .*critic_emd", out, re.M)
    assert re.search(r"^step 60/60 ", out, re.M)  # the last step, at the end
    run = tmp_path / "run"
    assert f"run directory: {run}" in out and f"samples:     {run}/samples/step_000060.png" in out
    assert re.search(r"at step 60: train/critic_emd [-\d.e]+", out)
    assert f"wandb sync {run}/wandb/offline-run-*" in out
    assert "generator" in out and "critic" in out and "total" in out  # the parameter table


def run_options(**changes) -> Namespace:
    options = dict(logger="wandb", project=None, entity=None, group=None, tags=[],
                   job_type=None, log_model=False)  # fmt: skip
    return Namespace(**(options | changes))


def test_wandb_project_and_entity_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.setenv("WANDB_ENTITY", "team-env")
    wandb, _ = make_loggers(run_options(job_type="train"), tmp_path / "a")
    assert wandb._wandb_init["project"] == "from-env"
    assert wandb._wandb_init["entity"] == "team-env" and wandb._wandb_init["job_type"] == "train"
    assert "anonymous" not in wandb._wandb_init
    flagged, _ = make_loggers(run_options(project="flag"), tmp_path / "b")
    assert flagged._wandb_init["project"] == "flag"  # a flag wins over the environment
    monkeypatch.delenv("WANDB_PROJECT")
    default, _ = make_loggers(run_options(), tmp_path / "c")
    assert default._wandb_init["project"] == "lightning-gans"


def test_wandb_mode_online_is_taken_literally(monkeypatch):
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing answers there
    monkeypatch.setenv("WANDB_MODE", "online")
    assert wandb_mode() == "online"  # asked for: no quiet fallback
    monkeypatch.setenv("WANDB_MODE", "")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode() == "offline"  # not asked for, server silent: offline


def test_log_model_is_refused_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(ConfigError, match="log_model"):
        make_loggers(run_options(log_model=True), tmp_path / "a")
    proc = run_module("fit", "--config", "configs/toy/wgan.yaml", *QUIET, "--run.log_model",
                      "true", "--run.root", str(tmp_path))  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("or leave log_model false")


# --- the README's commands ---------------------------------------------------------------------


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.split("  #")[0].strip() for block in blocks for ln in block.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#")]


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-zA-Z_-]+):", (ROOT / "Makefile").read_text(), flags=re.M))


def as_fit(command: str) -> list[str] | None:
    """A README training command as ``fit`` arguments, or None if it is not one."""
    words = shlex.split(command)
    if words[:2] == ["make", "train"]:
        kv = dict(w.split("=", 1) for w in words[2:])
        model = kv.get("MODEL", "wgan")
        args = ["--config", f"configs/{'toy/' if 'TOY' in kv else ''}{model}.yaml"]
        if "EXP" in kv:
            args += ["--config", f"configs/experiments/{kv['EXP']}/{model}.yaml"]
        return args + shlex.split(kv.get("ARGS", ""))
    for prefix in (["lightning-gans", "fit"], ["python", "-m", "lightning_gans", "fit"]):
        if words[: len(prefix)] == prefix:
            return [w for w in words[len(prefix) :] if w != "--print_config"]
    return None


def test_every_make_target_the_readme_names_exists():
    targets, commands = make_targets(), readme_commands()
    named = {shlex.split(c)[1] for c in commands if c.startswith("make ")}
    assert named and named <= targets, named - targets


def test_every_readme_training_command_parses():
    checked = 0
    for command in readme_commands():
        args = as_fit(command)
        if args is None or any("<" in a or "..." in a or "RESUME" in a for a in args):
            continue
        proc = run_module("fit", *args, "--print_config", timeout=120)
        assert proc.returncode == 0, (command, proc.stderr[-1500:])
        checked += 1
    assert checked >= 5
