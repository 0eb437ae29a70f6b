"""Bad input, tried as a new user would: every case ends with one line on stderr naming the
option, the value and what is accepted, exit status 2, no traceback, and nothing written or
lost. The table runs through the CLI's entry point in this process (``main``, what
``python -m lightning_gans`` calls); a few cases run through ``make`` as a user types them."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_gans.launch.main import main
from tests.helpers import QUIET, ROOT, TINY_GAN, TINY_TOY, own_lines

SUBPROCESS = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 300}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")

# (config under configs/, extra flags, what the one line must say)
CASES = [
    ("toy/wgan_gp", ["--model.gp_lambda", "-1"], "gp_lambda must be >= 0, got -1.0"),
    ("toy/wgan", ["--model.clip", "-0.01"], "clip must be > 0, got -0.01"),
    ("toy/wgan_gp", ["--model.lr", "-1"], "lr must be > 0, got -1.0"),
    ("toy/wgan", ["--model.lr", "0"], "lr must be > 0, got 0.0"),
    ("toy/gan", ["--model.betas", "[1.5, 0.9]"], "betas must be two values in [0, 1)"),
    ("toy/wgan_gp", ["--model.latent_dim", "0"], "latent_dim must be >= 1, got 0"),
    ("toy/wgan_gp", ["--model.n_critic", "0"], "n_critic must be >= 1, got 0"),
    ("toy/wgan_gp", ["--model.g_width", "0"], "g_width must be >= 1, got 0"),
    ("toy/wgan_gp", ["--model.d_width", "-1"], "d_width must be >= 1, got -1"),
    ("toy/wgan_gp", ["--model.ema_decay", "1.0"], "ema_decay must be in [0, 1) or null"),
    ("toy/wgan_gp", ["--model.ema_start", "-5"], "ema_start must be >= 0, got -5"),
    ("toy/wgan_gp", ["--model.compile", "true"], "cannot differentiate the gradient penalty"),
    ("toy/wgan", ["--model.channels_last", "true"], "channels_last must be false for 2-D data"),
    ("toy/wgan_gp", ["--model.critic_norm", "batch"], "'batch' breaks the per-sample"),
    ("toy/wgan_gp", ["--model.critic_norm", "group"], "'group'; valid: none, layer, batch"),
    ("toy/wgan_gp", ["--model.critic_schedule", "burst"], "'burst'; valid: constant, wgan"),
    ("toy/wgan_gp", ["--model.lr_schedule", "cosine"], "'cosine'; valid: constant, linear"),
    ("toy/wgan_gp", ["--model.lr", "abc"], "key \"lr\": Expected a <class 'float'>"),
    ("toy/wgan_gp", ["--model.n_critc", "3"], "n_critc"),
    ("wgan_gp", ["--model.arch", "vit"], "unknown arch 'vit'; valid: dcgan, resnet"),
    ("toy/vae", ["--model.sigma", "0"], "sigma must be > 0, got 0.0"),
    ("toy/vae", ["--model.beta", "-1"], "beta must be >= 0, got -1.0"),
    ("toy/vae", ["--model.iw_samples", "0"], "iw_samples must be >= 1, got 0"),
    ("toy/vae", ["--model.likelihood", "bernoulli"], "'bernoulli' for this data; valid:"),
    ("toy/wgan_gp", ["--data.dataset", "imagenet"], "'imagenet'; valid names: toy8, toy25"),
    ("toy/wgan_gp", ["--data.batch_size", "0"], "batch_size must be >= 1, got 0"),
    ("toy/wgan_gp", ["--data.val_fraction", "1.5"], "val_fraction must be in (0, 1), got 1.5"),
    ("toy/wgan_gp", ["--data.toy_size", "0"], "toy_size must be >= 1, got 0"),
    ("toy/wgan_gp", ["--data.num_workers", "-1"], "num_workers must be >= 0, got -1"),
    ("wgan_gp", ["--data.channels", "2"], "channels must be 1 or 3, got 2"),
    ("wgan_gp", ["--data.image_size", "48"], "image_size must be 32 or 64, got 48"),
    ("toy/wgan_gp", ["--data.dataset", "mnist", "--data.root", "/nonexistent/x"], "MNIST/raw/"),
    ("toy/wgan_gp", ["--trainer.max_steps", "-3"], "`max_steps` must be a non-negative"),
    ("toy/wgan_gp", ["--trainer.val_check_interval", "0"], "val_check_interval must be > 0"),
    ("toy/wgan_gp", ["--trainer.max_time", "soon"], "'soon')` is not a valid duration"),
    ("toy/wgan_gp", ["--trainer.precision", "17"], 'key "trainer.precision"'),
    ("toy/wgan_gp", ["--trainer.precision", "bf16-true"], "precision must be 32-true, bf16-mix"),
    ("toy/gan", ["--trainer.precision", "16-true"], "precision must be 32-true, bf16-mixed"),
    ("toy/wgan", ["--trainer.precision", "64"], "precision must be 32-true, bf16-mixed"),
    ("toy/wgan_gp", ["--trainer.num_nodes", "0"], "trainer.num_nodes must be >= 1, got 0"),
    ("toy/wgan_gp", ["--trainer.overfit_batches", "1"], "trainer.overfit_batches must be 0"),
    ("toy/wgan_gp", ["--model.dequantize", "0.01"], "dequantize must be 0 for 2-D data"),
    ("toy/wgan_gp", ["--data.seed", "-1"], "seed must be >= 0, got -1"),
    pytest.param("toy/wgan_gp", ["--trainer.accelerator", "gpu"], "no CUDA GPU", marks=NO_CUDA),
    ("toy/wgan_gp", ["--samples.every_n_steps", "-1"], "samples.every_n_steps must be >= 0"),
    ("toy/wgan_gp", ["--fid.n_samples", "1"], "fid.n_samples must be >= 2, got 1"),
    ("toy/wgan_gp", ["--fid.features", "clip"], "fid.features must be domain or inception"),
    ("wgan_gp", ["--fid.reference", "dev"], "reference must be train or val or test or full_train"),
    ("wgan_gp", ["--fid.n_real", "1"], "fid.n_real must be >= 2 or null, got 1"),
    ("toy/wgan_gp", ["--transport.n_points", "-5"], "transport.n_points must be >= 0"),
    ("toy/wgan_gp", ["--run.logger", "mlflow"], "'mlflow'; valid: wandb, csv, tensorboard"),
    ("toy/wgan_gp", ["--run.log_model", "sometimes"], 'key "run.log_model"'),
    ("toy/wgan_gp", ["--run.wandb_timeout", "0"], "wandb_timeout must be a number of seconds > 0"),
    ("toy/wgan_gp", ["--run.wandb_timeout", "-5"], "seconds > 0, got -5.0"),
    ("toy/wgan_gp", ["--ckpt_path", "/nonexistent.ckpt"], "'/nonexistent.ckpt' not found"),
    ("toy/wgan_gp", ["--lr_scheduler", "StepLR"], "lr_scheduler"),  # would bypass our optimisers
    ("nope", [], "File does not exist"),
    # Lightning's own refusals of a Trainer argument, as one line
    ("toy/wgan_gp", ["--trainer.devices", "-2"], "trainer: `devices` selected with `CPUAccel"),
    ("toy/wgan_gp", ["--trainer.strategy", "nonsense"], "trainer: You selected an invalid strat"),
    ("toy/wgan_gp", ["--trainer.check_val_every_n_epoch", "0"], "every_n_epoch must be >= 1"),
    ("toy/wgan_gp", ["--trainer.log_every_n_steps", "-1"], "log_every_n_steps must be >= 0"),
    ("toy/wgan_gp", ["--trainer.num_sanity_val_steps", "-5"], "val_steps must be >= -1 (all)"),
    ("toy/wgan_gp", ["--trainer.barebones", "true"], "barebones must be false (it turns off"),
    ("toy/wgan_gp", ["--seed_everything", "-1"], "seed_everything must be in [0, 2**32)"),
    ("toy/wgan_gp", ["--model.seed", "-1"], "seed must be >= 0, got -1"),
    ("toy/wgan_gp", ["--transport.seed", "-1"], "transport.seed must be >= 0, got -1"),
    ("toy/wgan_gp", ["--model.latent_dim", "10000000000"], "out of memory: a tensor of"),
    ("toy/wgan_gp", ["--checkpoint.dirpath", "/etc/passwd"], "dirpath must be a directory"),
    ("toy/wgan_gp", ["--checkpoint.filename", "best"], "filename must be a file name with {st"),
    ("toy/wgan_gp", ["--checkpoint.filename", "../{step}"], "filename must be a file name with"),
    ("toy/wgan_gp", ["--checkpoint.save_last", "false"], "save_last must be true (resume"),
    ("toy/wgan_gp", ["--fid.every_n_steps", "100"], "fid.every_n_steps must be 0 for 2-D data"),
    ("toy/wgan_gp", ["--run.name", "../elsewhere"], "run.name must be a plain directory name"),
]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_main(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as stop:
        main(args)
    return stop.value.code, capsys.readouterr().err


def bad_fit(tmp_path: Path, config: str, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(ROOT / "configs" / f"{config}.yaml"),
        *TINY_TOY,
        *QUIET,
        *["--trainer.max_steps", "2", "--run.root", str(tmp_path), "--run.logger", "csv"],
        *extra,
    ]


def assert_one_line(code: int, err: str, needle: str) -> None:
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    said = [ln for ln in err.splitlines() if ln.strip()]  # every line, not only error: ones
    assert len(said) == 1 and said[0].startswith("error:") and needle in said[0], err[-2000:]


@pytest.mark.parametrize(("config", "extra", "needle"), CASES)
def test_bad_input_is_one_line_and_exit_2(config, extra, needle, tmp_path, capsys):
    code, err = run_main(bad_fit(tmp_path, config, *extra), capsys)
    assert_one_line(code, err, needle)
    assert not any(tmp_path.iterdir()), "a run that never started left a directory"


@pytest.mark.slow
def test_corrupt_checkpoint_names_the_file_and_the_run_stays_intact(fit_run, tmp_path, capsys):
    cli = fit_run("toy/wgan", steps=2)
    run_dir = Path(cli.trainer.default_root_dir)
    before = tree_digest(run_dir)
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes((run_dir / "checkpoints" / "last.ckpt").read_bytes()[:2000])
    code, err = run_main(bad_fit(tmp_path, "toy/wgan", "--ckpt_path", str(corrupt)), capsys)
    assert_one_line(code, err, f"cannot read checkpoint {corrupt}")
    # a bad option while resuming the run itself: refused before anything is written
    flags = [*TINY_GAN, "--ckpt_path", str(run_dir), "--trainer.max_steps", "-3"]
    code, err = run_main(bad_fit(tmp_path, "toy/wgan", *flags), capsys)
    assert_one_line(code, err, "max_steps")
    assert tree_digest(run_dir) == before
    for tool in ("evaluate", "sample"):  # make eval / make sample
        module = f"lightning_gans.tools.{tool}"
        proc = subprocess.run([sys.executable, "-m", module, str(corrupt)], **SUBPROCESS)
        assert_one_line(proc.returncode, proc.stderr, "not a PyTorch checkpoint (truncated?)")
    nan = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    next(v for v in nan["state_dict"].values() if v.is_floating_point()).fill_(float("nan"))
    torch.save(nan, tmp_path / "nan.ckpt")
    for tool in ("evaluate", "sample"):  # no figures or pictures of NaN weights
        module = f"lightning_gans.tools.{tool}"
        proc = subprocess.run([sys.executable, "-m", module, str(tmp_path / "nan.ckpt")],
                              **SUBPROCESS)  # fmt: skip
        assert_one_line(proc.returncode, proc.stderr, "holds non-finite weights")
    unwritable = [str(run_dir), "--out", "/proc/samples.png"]  # a picture that cannot be written
    proc = subprocess.run([sys.executable, "-m", "lightning_gans.tools.sample", *unwritable],
                          **SUBPROCESS)  # fmt: skip
    assert_one_line(proc.returncode, proc.stderr, "--out '/proc/samples.png': cannot write")
    assert tree_digest(run_dir) == before


def test_unwritable_run_root_and_removed_predict(tmp_path, capsys):
    a_file = tmp_path / "file"
    a_file.write_text("")
    code, err = run_main(bad_fit(tmp_path, "toy/wgan", "--run.root", str(a_file)), capsys)
    assert_one_line(code, err, f"run.root {str(a_file)!r}: cannot create")
    code, err = run_main(["predict", "--config", "configs/toy/wgan.yaml"], capsys)
    assert_one_line(code, err, "invalid choice: 'predict' (choose from 'fit', 'validate', 'test')")


MAKE_CASES = [
    (["train", "MODEL=wgan", "TOY=1", "ARGS=--model.clip -1"], "clip must be > 0, got -1.0"),
    (["train", "MODEL=stylegan"], "unknown MODEL 'stylegan'"),
    (["train", "MODEL=wgan", "EXP=imagenet"], "no preset EXP 'imagenet'"),
    (["eval"], "CKPT is required"),
    (["eval", "CKPT=/nonexistent"], "'/nonexistent' not found"),
    (["eval", "CKPT=configs", "N=1"], "--n must be at least 2, got 1"),
    (["sample", "CKPT=configs", "N=0"], "--n must be in [1, 10000] (the samples in one picture)"),
    (["sample", "CKPT=configs", "N=100000000"], "--n must be in [1, 10000]"),
]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("target", "needle"), MAKE_CASES)
def test_bad_input_through_make(target, needle, tmp_path):
    env_root = ["ARGS=" + target[-1].removeprefix("ARGS=") + f" --run.root {tmp_path}"]
    args = target[:-1] + env_root if target[-1].startswith("ARGS=") else target
    proc = subprocess.run(["make", *args], **SUBPROCESS)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert needle in proc.stderr, proc.stderr[-2000:]


class RunsCode:
    """Unpickling this runs a shell command: what a crafted checkpoint would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_a_checkpoint_that_would_run_code_is_refused_by_every_entry_point(tmp_path):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"global_step": 3, "state_dict": {}, "x": RunsCode(marker)}, crafted)
    run = tmp_path / "shared-run"  # a colleague's run directory
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(crafted.read_bytes())
    before = tree_digest(tmp_path)
    root = f"--run.root {tmp_path / 'runs'}"
    commands = [
        [sys.executable, "-m", "lightning_gans", "fit", "--config", "configs/toy/wgan.yaml",
         "--ckpt_path", str(crafted), "--run.root", str(tmp_path / "runs")],
        ["make", "-s", "train", "MODEL=wgan", "TOY=1", f"RESUME={run}", f"ARGS={root}"],
        ["make", "-s", "eval", f"CKPT={crafted}"],
        ["make", "-s", "sample", f"CKPT={run}"],
    ]  # fmt: skip
    for command in commands:
        proc = subprocess.run(command, **SUBPROCESS)
        ours = own_lines(proc.stderr)
        assert proc.returncode == 2 and len(ours) == 1, proc.stderr[-2000:]
        assert ours[0].startswith("error: refusing checkpoint ") and "posix.system" in ours[0]
        assert "Traceback" not in proc.stderr and not marker.exists(), command
    assert tree_digest(tmp_path) == before  # nothing written: no run directory, no samples


# --- a resumed run keeps its model and data -------------------------------------------------

RESUMED_WRONG = [  # (how, flags, what the one line must name)
    ("make", ["MODEL=wgan"], "holds a GAN, this run asks for a WGAN"),
    ("file", ["--config", "configs/toy/wgan_gp.yaml"], "holds a GAN, this run asks for a WGANGP"),
    ("dir", ["--model.g_width", "64"], "--model.g_width: "),
    ("file", ["--model.lr", "0.5"], "--model.lr: "),
    ("dir", ["--model.n_critic", "2"], "--model.n_critic: "),  # read at every step
    ("dir", ["--data.dataset", "toy25"], "--data.dataset: "),
    ("file", ["--config", "configs/gan.yaml"], "--data.dataset: "),  # a 2-D model, image data
    ("dir", ["--trainer.max_steps", "2"], "is at generator step 4 already"),
]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    """A toy GAN run of 4 steps, as ``make train MODEL=gan TOY=1`` makes it."""
    root = tmp_path_factory.mktemp("runs")
    args = f"--trainer.max_steps 4 --run.root {root} --run.name gan {' '.join(QUIET)}"
    proc = subprocess.run(["make", "-s", "train", "MODEL=gan", "TOY=1", "LOGGER=csv",
                           f"ARGS={args} --data.toy_size 1024"], **SUBPROCESS)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root / "gan"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("how", "flags", "said"), RESUMED_WRONG)
def test_a_resume_that_asks_for_another_model_or_data_is_refused_untouched(
    gan_run, how, flags, said, capsys
):
    """Through make as a user types it, and through the CLI in this process (the same entry
    point, without a Python start-up per case)."""
    before = tree_digest(gan_run)
    if how == "make":
        proc = subprocess.run(["make", "-s", "train", "TOY=1", f"RESUME={gan_run}", *flags],
                              **SUBPROCESS)  # fmt: skip
        code, ours = proc.returncode, own_lines(proc.stderr)
    else:
        ckpt = gan_run / "checkpoints" / "last.ckpt" if how == "file" else gan_run
        config = [] if "--config" in flags else ["--config", "configs/toy/gan.yaml"]
        args = ["fit", *config, *flags, "--data.toy_size", "1024", "--ckpt_path", str(ckpt)]
        code, err = run_main(args, capsys)
        ours = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(ours) == 1, ours
    assert ours[0].startswith("error: ") and said in ours[0], ours
    assert tree_digest(gan_run) == before  # config.yaml, hparams.yaml, checkpoints: as they were


@pytest.mark.slow
def test_a_resume_may_change_how_it_runs(gan_run, tmp_path):
    """Logging, steps and callbacks are the run's to change: it trains on from step 4."""
    run = tmp_path / "gan"
    shutil.copytree(gan_run, run)
    command = [sys.executable, "-m", "lightning_gans", "fit", "--config", "configs/toy/gan.yaml"]
    command += ["--data.toy_size", "1024", "--ckpt_path", str(run), *QUIET]
    command += ["--trainer.max_steps", "6", "--trainer.log_every_n_steps", "1"]
    command += ["--samples.every_n_steps", "0", "--run.logger", "csv"]
    proc = subprocess.run(command, **SUBPROCESS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6


WANDB = ["--run.logger", "wandb"]


@pytest.mark.parametrize(
    ("env", "flags", "said"),
    [
        (
            {"WANDB_MODE": "onlin"},
            ["--run.logger", "wandb"],
            "WANDB_MODE 'onlin' (make: WANDB=) must be online, offline",
        ),
        (
            {"WANDB_MODE": "online", "WANDB_API_KEY": ""},
            ["--run.logger", "wandb"],
            "not logged in to W&B; run `wandb",
        ),
        ({}, ["--run.logger", "tensorboard"], "needs the tensorboard package"),
    ],
)
def test_logger_settings_that_cannot_work_are_one_line(env, flags, said, tmp_path, capsys,
                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = run_main(bad_fit(tmp_path / "runs", "toy/wgan_gp", *flags), capsys)
    assert_one_line(code, err, said)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_fetch_weights_offline_is_one_line_saying_how_to_copy_them(tmp_path, capsys, monkeypatch):
    import lightning_gans.metrics.features as features
    from lightning_gans.tools.fetch_weights import main as fetch

    name = features.INCEPTION_URL.rsplit("/", 1)[-1]
    monkeypatch.setattr(features, "INCEPTION_URL", f"http://127.0.0.1:9/{name}")  # refused
    with pytest.raises(SystemExit) as stop:
        fetch(["--cache", str(tmp_path)])
    assert_one_line(stop.value.code, capsys.readouterr().err, "download it and copy it to")


@pytest.mark.slow
def test_a_trusted_checkpoint_that_holds_more_than_data_loads_only_with_the_opt_in(
    gan_run, tmp_path
):
    """Our own checkpoint plus an object that is not plain data (a date): refused, with the way
    to allow it; loaded when the user trusts the file (make TRUST=1, fit --weights_only false)."""
    import datetime

    saved = torch.load(gan_run / "checkpoints" / "last.ckpt", weights_only=True)
    saved["made_on"] = datetime.date(2026, 12, 1)
    run = tmp_path / "shared"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(gan_run / "config.yaml", run / "config.yaml")
    torch.save(saved, run / "checkpoints" / "last.ckpt")
    refused = subprocess.run(["make", "-s", "sample", f"CKPT={run}", "N=4"], **SUBPROCESS)
    ours = own_lines(refused.stderr)
    assert refused.returncode == 2 and len(ours) == 1, refused.stderr[-2000:]
    assert "datetime.date" in ours[0] and "TRUST=1 with make" in ours[0]
    allowed = subprocess.run(["make", "-s", "sample", f"CKPT={run}", "N=4", "TRUST=1"],
                             **SUBPROCESS)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr[-2000:]
    assert (run / "samples" / "sample_step_000004.png").is_file()
    resumed = subprocess.run(
        [sys.executable, "-m", "lightning_gans", "fit", "--config", "configs/toy/gan.yaml",
         "--data.toy_size", "1024", "--ckpt_path", str(run), "--weights_only", "false",
         "--trainer.max_steps", "5", "--run.logger", "csv", *QUIET], **SUBPROCESS,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 5


def test_a_forks_model_declares_the_ranges_of_its_own_options():
    from lightning_gans import WGANGP
    from lightning_gans.errors import ConfigError

    class Margin(WGANGP):
        option_rules = {"margin": ("> 0", lambda v: v > 0)}

        def __init__(self, *, margin: float = 1.0, **kwargs) -> None:
            super().__init__(**kwargs)

    assert Margin(margin=0.5).hparams.margin == 0.5
    with pytest.raises(ConfigError, match=r"^margin must be > 0, got -1.0$"):
        Margin(margin=-1.0)
    with pytest.raises(ConfigError, match="gp_lambda must be >= 0"):  # the table still holds
        Margin(gp_lambda=-1.0)


def _shrunk(saved: dict) -> None:
    saved["state_dict"] = {k: v[:1] if v.dim() else v for k, v in saved["state_dict"].items()}


DAMAGES = {  # what is done to a good checkpoint -> what the one line says
    "no_state": (lambda c: c.pop("state_dict"), "it holds no weights (state_dict)"),
    "weights_only": (lambda c: c.pop("optimizer_states"), "it holds weights only (no optimizer"),
    "shapes": (_shrunk, "the checkpoint does not fit this model: "),
    "step": (lambda c: c.update(global_step="four"), "it has no generator step (global_step)"),
    "negative_step": (lambda c: c.update(global_step=-1), "it has no generator step"),
    "a_weight_is_text": (lambda c: c["state_dict"].update(fixed_z="x"), "it holds no weights"),
    "no_model": (lambda c: c.update(hyper_parameters="GAN"), "does not say which model it hol"),
    "not_lightning": (lambda c: c.pop("pytorch-lightning_version"), "Lightning did not write it"),
    "no_optimizer_state": (lambda c: c.update(optimizer_states=[]), "its training state (opti"),
    "loops_are_text": (lambda c: c.update(loops="x"), "its training state (optimizer_states,"),
    "one_optimizer": (lambda c: c["optimizer_states"].pop(), "holds 1 optimizer states, this m"),
    "unknown_option": (lambda c: c["hyper_parameters"].update(bogus=1), "records --model.bogus 1"),
    "option_unrecorded": (lambda c: c["hyper_parameters"].pop("latent_dim"), "was trained with 1"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_checkpoint_is_one_line_and_no_run_directory(gan_run, damage, tmp_path, capsys):
    saved = torch.load(gan_run / "checkpoints" / "last.ckpt", weights_only=True)
    do, said = DAMAGES[damage]
    do(saved)
    ckpt = tmp_path / "damaged.ckpt"
    torch.save(saved, ckpt)
    runs = tmp_path / "runs"
    args = bad_fit(runs, "toy/gan", "--data.toy_size", "1024", "--data.batch_size", "256")
    args += ["--trainer.max_steps", "8", "--ckpt_path", str(ckpt)]
    code, err = run_main(args, capsys)
    assert_one_line(code, err, said)
    assert not runs.exists() or not any(runs.iterdir())
