"""What a fork does to the template, done: its own figures, schedules, shared runs, threads."""

from __future__ import annotations

import csv
import os
import shutil
import stat
import statistics
import subprocess
import threading
import time
from collections import defaultdict

import pytest
import torch
import yaml

from lightning_gans.launch.main import main
from lightning_gans.launch.report import run_report
from tests.helpers import (
    QUIET,
    ROOT,
    TINY_GAN,
    TINY_TOY,
    SignalAt,
    cli_args,
    fit,
    own_lines,
    run_module,
)


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_forks_own_figures_follow_lightnings_rules(tmp_path):
    """on_step / on_epoch in each combination, against means computed here; epoch rows carry
    the generator step of the epoch's last training row (docs/design.md#one-step-label)."""
    cli = fit(
        tmp_path, "toy/gan", "--model", "tests.helpers.fork_models.EpochFiguresGAN",
        "--data.toy_size", "480", "--trainer.log_every_n_steps", "5",
        "--trainer.val_check_interval", "null", "--trainer.check_val_every_n_epoch", "1000",
        steps=30,
    )  # fmt: skip
    values = cli.model.values
    by_epoch = defaultdict(list)
    for epoch, step, value in values:
        by_epoch[epoch].append((step, value))
    assert len(by_epoch) >= 2 and len(by_epoch[0]) > 5  # several epochs, several logging steps
    rows = read_rows(tmp_path / "run" / "metrics.csv")
    step_rows = [r for r in rows if r.get("fork/step_only")]
    epoch_rows = [r for r in rows if r.get("fork/epoch_only")]
    value_at = {step: value for _, step, value in values}
    assert len(step_rows) == 30 // 5
    for row in step_rows:
        step = int(float(row["step"]))
        assert float(row["fork/step_only"]) == value_at[step]
        assert float(row["fork/both_step"]) == value_at[step]
        assert float(row["train/g_loss"]) == float(row["train/g_loss"])  # the template's too
    assert len(epoch_rows) == len(by_epoch)
    for epoch, row in enumerate(epoch_rows):
        steps, seen = zip(*by_epoch[epoch], strict=True)
        assert float(row["fork/epoch_only"]) == pytest.approx(statistics.fmean(seen))
        assert float(row["fork/both_epoch"]) == pytest.approx(statistics.fmean(seen))
        assert int(float(row["step"])) == max(steps)  # the label of its last training row


LINEAR = ("--model.lr_schedule", "linear", "--trainer.deterministic", "true")


def test_extending_a_linear_decay_is_refused_and_a_resume_is_the_straight_run(tmp_path):
    """Under a learning rate that decays to 0 at max_steps, another max_steps on resume would
    make the rate jump: refused in one line, the run untouched. A resume at the same
    max_steps ends where the straight run ends, rates included."""
    straight = fit(tmp_path, "toy/wgan_gp", *LINEAR, name="straight", steps=8)
    cut = fit(tmp_path, "toy/wgan_gp", *LINEAR, steps=8, callbacks=[SignalAt(3)])
    assert cut.trainer.global_step == 4
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    proc = run_module("fit", *cli_args(tmp_path, "toy/wgan_gp", *LINEAR, "--ckpt_path", str(run),
                                       steps=12))  # fmt: skip
    lines = own_lines(proc.stderr)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "--trainer.max_steps 12" in lines[0], lines
    assert "--model.lr_schedule linear" in lines[0] and "--trainer.max_steps 8" in lines[0]
    assert last.read_bytes() == before
    resumed = fit(tmp_path, "toy/wgan_gp", *LINEAR, name="resumed", steps=8, ckpt_path=last)
    assert resumed.trainer.global_step == 8
    rates = [[g["lr"] for g in o.param_groups] for o in resumed.trainer.optimizers]
    assert rates == [[g["lr"] for g in o.param_groups] for o in straight.trainer.optimizers]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_checkpoints_take_the_umask_as_config_yaml_does(tmp_path):
    """A group shares a run: its checkpoints are as readable as its config.yaml."""
    old = os.umask(0o022)
    try:
        fit(tmp_path, "toy/gan", steps=2)
    finally:
        os.umask(old)
    run = tmp_path / "run"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (run / "checkpoints").iterdir()}
    assert modes and set(modes.values()) == {0o644}, modes
    assert stat.S_IMODE((run / "config.yaml").stat().st_mode) == 0o644


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--checkpoint.dirpath", "--run.root"])
def test_a_remote_path_is_one_line(tmp_path, option):
    args = cli_args(tmp_path, "toy/gan", option, "s3://bucket/runs", steps=2)
    proc = run_module("fit", *args, cwd=tmp_path)
    lines = own_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert option.removeprefix("--") in lines[0] and "s3://bucket/runs" in lines[0]
    assert not (tmp_path / "s3:").exists()


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("named", [True, False])
def test_resume_with_the_runs_own_config_resumes_in_place(tmp_path, named):
    """The way out a refused resume names (the run's own config.yaml), through make: it
    continues the run in its directory, also from a config.yaml that names ckpt_path null (as
    runs saved before) and for a named run."""
    tiny = " ".join([*TINY_TOY, *TINY_GAN, *QUIET, "--checkpoint.every_n_train_steps", "1"])
    name = "--run.name mine" if named else ""
    first = make("train", "MODEL=gan", "TOY=1", "LOGGER=csv",
                 f"ARGS=--run.root {tmp_path} {name} --trainer.max_steps 3 {tiny}")  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    (run,) = tmp_path.iterdir()
    config = run / "config.yaml"
    config.write_text(config.read_text() + "ckpt_path: null\n")  # as earlier runs saved it
    step1 = (run / "checkpoints" / "step000001.ckpt").stat().st_mtime_ns
    again = make("train", "MODEL=gan", f"RESUME={run}",
                 f"ARGS=--config {config} --trainer.max_steps 5")  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert list(tmp_path.iterdir()) == [run]  # no new run directory
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 5
    assert (run / "checkpoints" / "step000001.ckpt").stat().st_mtime_ns == step1  # not retrained
    assert "ckpt_path" not in yaml.safe_load(config.read_text())  # rewritten by the resume


def test_a_fit_in_a_thread_trains_and_a_concurrent_second_is_one_line(tmp_path, capsys):
    """Thread-based search tools: a fit outside the main thread trains (no signal handling
    there: Python delivers signals to the main thread only); a second fit while one runs is
    refused in one line, and the first is not disturbed."""
    outcome: dict[str, object] = {}

    def trial(name: str, steps: int) -> None:
        try:
            main(["fit", *cli_args(tmp_path, "toy/gan", name=name, steps=steps)])
            outcome[name] = 0
        except SystemExit as e:
            outcome[name] = e.code
        except BaseException as e:  # shown in the assertion
            outcome[name] = repr(e)

    first = threading.Thread(target=trial, args=("first", 60))
    first.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "first" / "config.yaml").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    trial("second", 2)  # here, while the first trains
    first.join(timeout=300)
    assert outcome == {"first": 0, "second": 2}
    said = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error:")]
    assert len(said) == 1 and "in its own process" in said[0], said
    assert torch.load(tmp_path / "first" / "checkpoints" / "last.ckpt",
                      weights_only=True)["global_step"] == 60  # fmt: skip
    assert not (tmp_path / "second").exists()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_folder_of_ones_own_images_is_told_what_its_fid_needs(tmp_path):
    """No labels, so no domain classifier: make eval and make classifier both say the one
    route that works (Inception's features) and what it needs offline, in one line."""
    from PIL import Image

    from lightning_gans.metrics.features import inception_path

    images = tmp_path / "images"
    images.mkdir()
    for i in range(24):
        Image.new("L", (36, 36), i * 10).save(images / f"{i}.png")
    run = fit(tmp_path, "gan", "--data.dataset", "folder", "--data.root", str(images),
              "--data.channels", "1", steps=2)  # fmt: skip
    run_dir = tmp_path / "run"
    assert run.trainer.global_step == 2
    for args in (["eval", f"CKPT={run_dir}", "N=16"], ["classifier", "DATASET=folder"]):
        proc = make(*args)
        lines = own_lines(proc.stderr)
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
        assert "FEATURES=inception" in lines[0] and str(inception_path()) in lines[0]
        assert "make fetch-weights" in lines[0] and "make classifier" not in lines[0]
    if not (ROOT / inception_path()).is_file():
        proc = make("eval", f"CKPT={run_dir}", "N=16", "FEATURES=inception")
        lines = own_lines(proc.stderr)
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
        assert "make fetch-weights" in lines[0] and "FEATURES=domain" not in lines[0]


def test_the_end_of_a_run_names_wandb_sync_only_when_it_logged_offline(tmp_path, capsys):
    import wandb

    wandb.finish()  # a run an earlier in-process test left open would be attached to
    first = fit(tmp_path, "toy/gan", logger="wandb", steps=2)
    assert "wandb sync" in run_report(first.trainer, first.run_dir)
    resumed = fit(tmp_path, "toy/gan", logger="csv", name="again", steps=4,
                  ckpt_path=first.run_dir / "checkpoints" / "last.ckpt")  # fmt: skip
    (resumed.run_dir / "wandb" / "offline-run-x").mkdir(parents=True)  # an earlier W&B run's
    assert "wandb sync" not in run_report(resumed.trainer, resumed.run_dir)


def test_weight_clipping_with_batch_norm_on_2d_data_is_one_line(tmp_path):
    """The image config's batch-norm critic on 8 Gaussians learnt nothing under clipping
    (critic_emd ~1e-10 after 200 steps): refused, with the way that works."""
    args = cli_args(tmp_path, "wgan", "--data.dataset", "toy8", steps=2)
    proc = run_module("fit", *args)
    lines = own_lines(proc.stderr)
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
    assert "critic_norm" in lines[0] and "none or layer" in lines[0]


def test_eval_of_2d_data_counts_points(tmp_path, capsys):
    from lightning_gans.tools.evaluate import main as evaluate

    fit(tmp_path, "toy/gan", steps=2)
    evaluate([str(tmp_path / "run"), "--n", "100"])
    said = capsys.readouterr().out
    assert "100 points of the test split" in said and "images" not in said
