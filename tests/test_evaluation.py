"""Evaluation: domain FID/KID behave as distances, ``make eval`` / ``make sample`` through their
real entry points, and their one-line errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

from lightning_gans.data.datasets import digits_images
from tests.helpers import QUIET, ROOT, TINY_DIGITS, TINY_GAN_DIGITS, cli_args, fit, run_module

pytestmark = pytest.mark.slow  # make test-all (the default suite: make test)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A data/ cache with quickly trained classifiers: digits (3 epochs, ~95% accurate) and
    mnist5k, the default configs' set (3 epochs: weaker, enough for these tests)."""
    from lightning_gans.tools.classifier import train_classifier

    root = tmp_path_factory.mktemp("cache")
    path, accuracy = train_classifier("digits", 32, epochs=3, cache=str(root))
    assert path.is_file() and accuracy > 0.8
    path, accuracy = train_classifier("mnist5k", 32, epochs=3, cache=str(root))
    assert path.is_file() and accuracy > 0.3  # chance is 0.1; 3 epochs measured 0.498
    return root


def tool(module: str, *args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"lightning_gans.tools.{module}", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_domain_fid_and_kid_are_zero_for_identical_sets_and_grow_with_damage(cache):
    from lightning_gans.metrics.image_quality import ImageQuality

    quality = ImageQuality("domain", "digits", 32, 1, cache=str(cache))
    x = digits_images(32)
    real, other = x[:600], x[600:1200]
    same = quality(real, real)
    assert abs(same["domain_fid"]) < 1e-6
    assert abs(same["domain_kid"]) < 3 * same["domain_kid_std"] + 1e-6  # unbiased: ~0 +- noise
    fid, kid = {}, {}
    for name, fake in {
        "independent": other,
        "blur 1": TF.gaussian_blur(other, [5, 5], [1.0, 1.0]),
        "blur 2": TF.gaussian_blur(other, [9, 9], [2.0, 2.0]),
        "shift 0.2": (other + 0.2).clamp(-1, 1),
        "shift 0.5": (other + 0.5).clamp(-1, 1),
    }.items():
        scores = quality(real, fake)
        fid[name], kid[name] = scores["domain_fid"], scores["domain_kid"]
    for metric in (fid, kid):
        assert metric["independent"] < metric["blur 1"] < metric["blur 2"], metric
        assert metric["independent"] < metric["shift 0.2"] < metric["shift 0.5"], metric


def test_eval_and_sample_on_a_default_checkpoint(tmp_path, cache):
    fit(tmp_path, "wgan_gp", steps=3)
    run = tmp_path / "run"
    proc = tool("evaluate", str(run), "--n", "64", "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "domain_fid" in proc.stdout
    result = json.loads((run / "eval" / "step_000003.domain.json").read_text())
    assert result["features"] == "domain" and result["generator_step"] == 3
    assert (result["n_fake"], result["n_real"], result["reference"]) == (64, 64, "test")
    assert "64 samples against 64 images of the test split" in proc.stdout
    assert "classifier held-out accuracy" in proc.stdout and result["classifier_accuracy"] > 0.3
    quality = {"domain_fid", "domain_kid", "domain_precision", "domain_recall"}
    assert set(result["metrics"]) == quality | {"domain_kid_std"}
    assert result["metrics"]["domain_fid"] > 0
    ceiling = result["real_vs_real"]  # the same figures for other real images
    assert set(ceiling) == quality and ceiling["domain_fid"] < result["metrics"]["domain_fid"]
    assert "real vs real" in proc.stdout

    out = tmp_path / "pics" / "grid.png"
    proc = tool("sample", str(run), "--n", "16", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Image.open(out).size == (4 * 34 + 2, 4 * 34 + 2)  # 4x4 of 32 px, 2 px padding
    beside = tool("sample", str(run), "--n", "4")  # no OUT: beside the run's own pictures
    assert beside.returncode == 0, beside.stderr[-2000:]
    assert (run / "samples" / "sample_step_000003.png").is_file()
    assert not (ROOT / "samples.png").exists() or "samples.png" not in beside.stdout
    assert Image.open(out.with_name("grid_interp.png")).size == (10 * 34 + 2, 4 * 34 + 2)

    # resumed to step 5: a new file named by its step; the step-3 file still says step 3
    resumed = run_module("fit", *cli_args(tmp_path, "wgan_gp", "--ckpt_path", str(run), steps=5))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    proc = tool("evaluate", str(run), "--n", "32", "--reference", "train", "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr[-2000:]
    later = json.loads((run / "eval" / "step_000005.domain.json").read_text())
    assert later["generator_step"] == 5 and later["reference"] == "train"
    assert json.loads((run / "eval" / "step_000003.domain.json").read_text())["generator_step"] == 3

    # more real images than the set holds: all of them, said in one line (FID is biased in N)
    args = ["--n", "32", "--reference", "full_train", "--n-real", "100000", "--cache", str(cache)]
    proc = tool("evaluate", str(run), *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    held = json.loads((run / "eval" / "step_000005.domain.json").read_text())["n_real"]
    said = [ln for ln in proc.stdout.splitlines() if "--n-real 100000" in ln]
    assert said == [
        f"--n-real 100000: the full_train set holds {held} images, so FID uses all {held}; "
        "figures are comparable only with others at the same counts"
    ]
    assert held == 4000  # mnist5k: all 4,000 non-test digits, train and validation together


def test_eval_of_a_vae_adds_elbo_and_iw_bound(tmp_path, cache):
    from lightning_gans.tools.evaluate import evaluate

    fit(tmp_path, "vae", "--model.iw_samples", "4", steps=3)
    result = evaluate(str(tmp_path / "run"), n=32, cache=str(cache))
    m = result["metrics"]
    assert {"domain_fid", "elbo", "iw_bound", "bpd"} <= set(m)
    assert m["elbo"] < 0 and m["iw_bound"] >= m["elbo"] - 5.0  # the IW bound is the tighter one


def test_eval_of_a_toy_checkpoint_is_exact_w1(tmp_path):
    from lightning_gans.tools.evaluate import evaluate

    fit(tmp_path, "toy/wgan_gp", steps=3)
    result = evaluate(str(tmp_path / "run"), n=200)
    assert set(result["metrics"]) == {"exact_w1"} and result["metrics"]["exact_w1"] > 0


def test_eval_errors_are_one_line(tmp_path):
    assert "not found" in one_line(tool("evaluate", str(tmp_path / "missing.ckpt")))

    fit(tmp_path, "wgan_gp", steps=2)
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    msg = one_line(tool("evaluate", str(ckpt), "--features", "inception", "--cache", str(tmp_path)))
    assert "Inception weights not found" in msg and "make fetch-weights" in msg

    state = torch.load(ckpt, weights_only=False)  # the same run, as if trained on MNIST
    state["datamodule_hyper_parameters"] |= {"dataset": "mnist", "root": str(tmp_path / "nodata")}
    torch.save(state, tmp_path / "mnist.ckpt")
    msg = one_line(tool("evaluate", str(tmp_path / "mnist.ckpt")))
    assert "'mnist' is not in" in msg and "place MNIST/raw" in msg


def test_eval_right_after_training_uses_the_shipped_classifier_without_training_one(tmp_path):
    fit(tmp_path, "wgan_gp", steps=2)
    cache = tmp_path / "empty"
    proc = tool("evaluate", str(tmp_path / "run"), "--n", "32", "--cache", str(cache))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "training the mnist5k domain classifier" not in proc.stdout
    assert not cache.exists()  # nothing trained, nothing cached
    from lightning_gans.metrics.features import shipped_classifier_path

    shipped = torch.load(shipped_classifier_path("mnist5k", 32), weights_only=True)
    said = re.search(r"held-out accuracy (0\.\d+)", proc.stdout)
    assert said and float(said.group(1)) == pytest.approx(shipped["test_accuracy"], abs=1e-3)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_eval_and_sample_need_a_checkpoint():
    for target in ("eval", "sample"):
        proc = subprocess.run(["make", target], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode != 0 and "CKPT is required" in proc.stderr


def test_periodic_fid_is_logged_every_k_steps(tmp_path, cache, monkeypatch):
    monkeypatch.chdir(cache.parent)  # the callback finds the classifier under ./data
    (cache.parent / "data").mkdir(exist_ok=True)
    shutil.copytree(
        cache / "classifiers", cache.parent / "data" / "classifiers", dirs_exist_ok=True
    )
    fid = ["--fid.every_n_steps", "2", "--fid.n_samples", "64", "--fid.reference", "train"]
    fit(tmp_path, "wgan_gp", *fid, "--fid.n_real", "100", steps=4)
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/domain_fid")]
    fids = {int(r["step"]): float(r["val/domain_fid"]) for r in rows}
    assert sorted(fids) == [2, 4] and all(v > 0 for v in fids.values())
    # FID is biased in N: every figure is logged with its two counts
    assert all((r["val/fid_n_fake"], r["val/fid_n_real"]) == ("64", "100") for r in rows)


DDP = ["--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]


def fid_fit_args(tmp_path, cache, *extra: str) -> list[str]:
    """A tiny image fit with a 64-sample FID every 2 steps, run from tmp_path, whose data/ holds
    the fixture's classifiers (the callback finds them under ./data)."""
    (tmp_path / "data").mkdir()
    shutil.copytree(cache / "classifiers", tmp_path / "data" / "classifiers")
    args = ["fit", "--config", str(ROOT / "configs" / "wgan_gp.yaml"), *TINY_DIGITS]
    args += [*TINY_GAN_DIGITS, *QUIET, "--run.logger", "csv", "--run.root", str(tmp_path)]
    args += ["--fid.every_n_steps", "2", "--fid.n_samples", "64"]
    return [*args, "--trainer.limit_val_batches", "0", *extra]


def test_periodic_fid_under_ddp_equals_one_process(tmp_path, cache):
    """Rank 0 alone measures, so 2 gloo ranks log what 1 process logs from the same samples
    (lr 1e-12: the generator and its batch-norm statistics are rank 0's in both runs)."""
    args = fid_fit_args(tmp_path, cache, "--model.lr", "1e-12", "--trainer.max_steps", "2")
    figures = []
    for name, extra in (("one", []), ("two", DDP)):
        proc = run_module(*args, "--run.name", name, *extra, cwd=tmp_path,
                          env={"OMP_NUM_THREADS": "1"})  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        with open(tmp_path / name / "metrics.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("val/domain_fid")]
        assert [r["step"] for r in rows] == ["2"]  # one figure per evaluation
        figures.append({k: float(rows[0][f"val/{k}"]) for k in ("domain_fid", "domain_kid")})
    one, two = figures
    assert one == pytest.approx(two, abs=1e-6, rel=1e-6) and one["domain_fid"] > 0


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        pytest.param(  # the same path with another error: in `make test-all` (12 s)
            "nan",
            "non-finite images: FID/KID not computed at generator step 2; training stopped",
            marks=pytest.mark.slow,
        ),
        ("raise", "stand-in: out of memory while embedding"),
    ],
)
def test_a_failed_fid_on_rank_0_stops_both_ranks_within_a_minute(tmp_path, cache, mode, said):
    """Rank 0 alone measures; NaN samples (which would segfault MKL's eigvals) or an error in
    its evaluation must stop rank 1 too, not leave it in the next gradient all-reduce until the
    30-minute collective timeout."""
    args = fid_fit_args(tmp_path, cache, "--trainer.max_steps", "6", "--run.name", "run", *DDP)
    args += ["--trainer.callbacks+=tests.helpers.BreakFID", f"--trainer.callbacks.mode={mode}"]
    start = time.time()
    proc = run_module(*args, cwd=tmp_path, env={"OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
                      timeout=240)  # fmt: skip
    assert time.time() - start < 60 + 30  # 30 s: two Python start-ups on this machine
    assert proc.returncode != 0
    assert "DGEBAL" not in proc.stderr and proc.returncode != -11  # no MKL segfault
    told = [ln for ln in proc.stderr.splitlines() if said in ln]
    assert len(told) >= 2 if mode == "nan" else len(told) >= 1, proc.stderr[-3000:]
    if mode == "nan":  # the one non-finite line on every rank, no traceback
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 2 and all(said in e for e in errors), proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
    else:  # rank 1 names rank 0's error
        assert f"{said} (rank 0's FID)" in proc.stderr, proc.stderr[-3000:]


def test_inception_score_against_its_definition():
    """IS = exp E_x KL(p(y|x) || p(y)) (Salimans et al. 2016): 10 for confident predictions
    spread evenly over 10 classes, 1 when every image gets the same prediction."""
    from lightning_gans.metrics.image_quality import inception_score

    confident = torch.nn.functional.one_hot(torch.arange(1000) % 10, 10).double() * 50
    assert inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(torch.zeros(1000, 10).double())[0] == pytest.approx(1.0)
    logits = torch.randn(500, 7, generator=torch.Generator().manual_seed(0)).double()
    p = logits.softmax(1)
    by_hand = (p * (p.log() - p.mean(0, keepdim=True).log())).sum(1).mean().exp()
    assert inception_score(logits, splits=1)[0] == pytest.approx(float(by_hand), rel=1e-9)


def test_periodic_fid_measures_once_per_generator_step():
    """With accumulate_grad_batches k (the VAE), k batches end at one global step: one figure."""
    from types import SimpleNamespace

    from lightning_gans.callbacks.measurements import PeriodicImageQuality

    callback = PeriodicImageQuality(every_n_steps=2, n_samples=4)
    callback.quality = object()  # as after setup
    measured = []
    callback.measure = lambda pl_module: measured.append(1) or {"domain_fid": 1.0}
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append(step))
    saved = []  # best.ckpt: written when the figure improves (1.0 at step 2; 4 ties it)
    trainer = SimpleNamespace(is_global_zero=True, world_size=1, loggers=[logger],
                              checkpoint_callback=None, default_root_dir="run")  # fmt: skip
    trainer.save_checkpoint = lambda path, weights_only: saved.append(path)
    for step in (1, 2, 2, 2, 3, 4, 4):
        trainer.global_step = step
        callback.on_train_batch_end(trainer, None)
    assert len(measured) == 2 and logged == [2, 4]
    assert [p.name for p in saved] == ["best.ckpt"] and callback.best["step"] == 2


def test_blocked_precision_recall_equals_the_full_distance_matrices():
    """The blocked computation gives the figures of the full (F, R) matrices it replaces."""
    import lightning_gans.metrics.precision_recall as pr

    def full(real, fake, k=3):  # the former code: every distance at once
        def radius(x):
            return torch.cdist(x, x).topk(k + 1, dim=1, largest=False).values[:, k]

        d = torch.cdist(fake, real)
        precision = (d <= radius(real)[None, :]).any(1).double().mean()
        recall = (radius(fake)[None, :] >= d.T).any(1).double().mean()
        return float(precision), float(recall)

    gen = torch.Generator().manual_seed(0)
    real = torch.randn(700, 16, generator=gen, dtype=torch.float64)
    fake = 1.3 * torch.randn(500, 16, generator=gen, dtype=torch.float64) + 0.2
    for block in (64, 97, 2048):  # several blocks per row and column, uneven, and one
        radii = pr.kth_neighbour_radius(real, 3, block)
        assert torch.allclose(radii, pr.kth_neighbour_radius(real, 3, 10_000), rtol=1e-12)
    expected = full(real, fake)
    assert 0 < expected[0] < 1 and 0 < expected[1] < 1
    assert pr.precision_recall(real, fake) == expected


def test_eval_tools_trainer_uses_one_device(monkeypatch, tmp_path):
    """With devices="auto" Lightning would relaunch the whole tool once per visible GPU."""
    import lightning as L

    from lightning_gans.tools import evaluate

    cli = fit(tmp_path, "toy/vae", steps=2)
    built = []

    class Recorder(L.Trainer):
        def __init__(self, **kwargs):
            built.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(evaluate.L, "Trainer", Recorder)
    evaluate.evaluate(str(tmp_path / "run"), n=64, cache=str(tmp_path))
    assert cli.trainer.global_step == 2 and [b.get("devices") for b in built] == [1]


@pytest.mark.slow
def test_default_domain_classifier_reaches_the_accuracy_the_readme_quotes(tmp_path):
    """Every domain FID, precision and recall rests on this classifier (measured: 0.976 in
    72 s on 2 CPU cores; the former 10 epochs without shifts: 0.908)."""
    from lightning_gans.tools.classifier import train_classifier

    path, accuracy = train_classifier("mnist5k", 32, cache=str(tmp_path))
    assert accuracy >= 0.97
    # make classifier reproduces the shipped file (make classifier SHIP=1 writes that one)
    from lightning_gans.metrics.features import shipped_classifier_path

    shipped = torch.load(shipped_classifier_path("mnist5k", 32), weights_only=True)
    retrained = torch.load(path, weights_only=True)
    assert retrained["test_accuracy"] == pytest.approx(shipped["test_accuracy"], abs=0.005)
    for key, value in shipped["state_dict"].items():
        assert torch.allclose(retrained["state_dict"][key].half().float(), value.float(),
                              atol=1e-2), key  # fmt: skip


def test_samples_in_batches_are_the_samples_drawn_at_once():
    """Evaluation draws a batch at a time; in eval mode (batch norm on its running statistics)
    a sample does not depend on the batch it is drawn in."""
    from lightning_gans import WGANGP

    model = WGANGP(data_shape=(1, 32, 32), latent_dim=8, g_width=8, d_width=8)
    z = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    batched = torch.cat(list(model.samples(z, batch_size=7)))
    assert batched.shape == (50, 1, 32, 32)
    assert torch.allclose(batched, model.sample(z=z), atol=1e-6)
