"""The critic's EMD estimate beside sample quality (docs/theory.md §5): every default image run
logs a domain FID with the classifier the package ships, the training-minus-held-out gap of the
estimate, and a batch norm critic is measured as it was trained (batch statistics)."""

from __future__ import annotations

import math

import pytest
import torch
import yaml
from torch import nn

from tests.helpers import ROOT, fit, run_module
from tests.helpers.runs import best_of, figures

IMAGE_CONFIGS = ("gan", "wgan", "wgan_gp", "vae")


@pytest.mark.parametrize("model", IMAGE_CONFIGS)
def test_each_default_image_config_measures_quality_at_regular_steps(model):
    fid = yaml.safe_load((ROOT / "configs" / f"{model}.yaml").read_text())["fid"]
    assert fid["every_n_steps"] == 250 and fid["n_samples"] == 1000  # n_real: as many
    assert fid["reference"] == "test" and "n_real" not in fid


def test_a_run_logs_domain_fid_beside_the_emd_with_the_shipped_classifier(tmp_path):
    """Started where no data/classifiers exists: the shipped classifier, no training first."""
    args = ["fit", "--config", str(ROOT / "configs" / "wgan_gp.yaml"), "--trainer.max_steps", "8",
            "--trainer.val_check_interval", "4", "--trainer.limit_val_batches", "2",
            "--fid.every_n_steps", "4", "--fid.n_samples", "64", "--model.g_width", "8",
            "--model.d_width", "8", "--data.batch_size", "16", "--run.logger", "csv",
            "--run.root", str(tmp_path), "--run.name", "run", "--trainer.enable_progress_bar",
            "false"]  # fmt: skip
    proc = run_module(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "no domain classifier" not in proc.stdout + proc.stderr
    assert not (tmp_path / "data").exists()  # nothing trained, nothing cached
    run = tmp_path / "run"
    fids, emds = figures(run, "val/domain_fid"), figures(run, "val/critic_emd")
    assert sorted(fids) == sorted(emds) == [4, 8] and all(math.isfinite(v) for v in fids.values())
    assert figures(run, "val/fid_n_real") == {4: 64.0, 8: 64.0}  # of the held-out test digits


def test_the_shipped_classifiers_are_data_and_name_their_accuracy():
    from lightning_gans.metrics.features import shipped_classifier_path

    for dataset in ("mnist5k", "digits"):
        saved = torch.load(shipped_classifier_path(dataset, 32), weights_only=True)
        assert saved["dataset"] == dataset and saved["test_accuracy"] > 0.9


def test_the_critic_estimate_is_logged_on_training_images_too_with_its_gap(tmp_path):
    cli = fit(tmp_path, "wgan_gp", "--trainer.val_check_interval", "4",
              "--trainer.limit_val_batches", "2", steps=8)  # fmt: skip
    run = tmp_path / "run"
    held, seen = figures(run, "val/critic_emd"), figures(run, "val/critic_emd_train")
    gap = figures(run, "val/critic_emd_gap")
    assert sorted(held) == sorted(seen) == sorted(gap) == [4, 8]
    assert all(gap[s] == pytest.approx(seen[s] - held[s], abs=1e-5) for s in gap)
    assert seen != held  # other images: another figure
    assert cli.trainer.datamodule.train_set is not None


def test_a_batch_norm_critic_is_measured_with_batch_statistics_and_keeps_its_running_ones(
    tmp_path,
):
    """The default WGAN's critic has batch norm. Its held-out estimate must not depend on the
    running statistics (the critic is trained on batch statistics), nor change them."""
    cli = fit(tmp_path, "wgan", "--trainer.limit_val_batches", "2", steps=6)
    model, trainer = cli.model, cli.trainer
    norms = [m for m in model.critic.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms  # the default WGAN critic
    before = trainer.validate(model, cli.datamodule, verbose=False)[0]["val/critic_emd"]
    with torch.no_grad():
        for m in norms:  # running statistics far from any batch's
            m.running_mean.add_(3.0)
            m.running_var.mul_(20.0)
    kept = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    after = trainer.validate(model, cli.datamodule, verbose=False)[0]["val/critic_emd"]
    assert after == pytest.approx(before, rel=1e-5, abs=1e-7)
    for m, (mean, var) in zip(norms, kept, strict=True):  # left as they were
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)


# --- the best checkpoint --------------------------------------------------------------------

FID_EVERY = ["--fid.every_n_steps", "4", "--fid.n_samples", "8", "--trainer.val_check_interval",
             "4", "--trainer.limit_val_batches", "1"]  # fmt: skip


def scripted_fid(monkeypatch, figures: dict[int, float]) -> None:
    """The FID each evaluation reports, by generator step: a best that is not the last."""
    from lightning_gans.callbacks.measurements import PeriodicImageQuality

    def measure(self, pl_module):
        return {"domain_fid": figures[pl_module.global_step], "fid_n_fake": 8}

    monkeypatch.setattr(PeriodicImageQuality, "measure", measure)


def test_the_best_checkpoint_is_kept_said_at_the_end_and_survives_a_resume(
    tmp_path, monkeypatch, caplog, capfd
):
    from lightning_gans.launch.cli import build_cli
    from tests.helpers import cli_args

    scripted_fid(monkeypatch, {4: 50.0, 8: 30.0, 12: 40.0, 16: 35.0, 20: 45.0, 24: 20.0})
    fit(tmp_path, "wgan_gp", *FID_EVERY, steps=12)
    run = tmp_path / "run"
    step, best = best_of(run)
    assert step == best["step"] == 8 and best["figure"] == 30.0  # not the last, 40
    assert best["name"] == "val/domain_fid"
    # the run's own report says it (the CLI's last lines, through Lightning's logger)
    with caplog.at_level("INFO"):
        build_cli(["fit", *cli_args(tmp_path, "wgan_gp", *FID_EVERY, steps=20),
                   "--ckpt_path", str(run)])  # fmt: skip
    said = capfd.readouterr()  # through Lightning's logger (its console handler, or pytest's)
    assert "best.ckpt (generator step 8, val/domain_fid 30)" in caplog.text + said.out + said.err
    step, best = best_of(run)  # 35 and 45 after the resume are worse than the kept 30
    assert step == 8 and best["figure"] == 30.0
    build_cli(
        ["fit", *cli_args(tmp_path, "wgan_gp", *FID_EVERY, steps=24), "--ckpt_path", str(run)]
    )  # fmt: skip  (an extension)
    step, best = best_of(run)
    assert step == best["step"] == 24 and best["figure"] == 20.0
