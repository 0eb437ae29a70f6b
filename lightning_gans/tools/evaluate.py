"""``make eval CKPT=... [N=...]``: how good a checkpoint's samples are, against held-out data.

    python -m lightning_gans.tools.evaluate runs/<run> --n 2000 --features domain

Images: FID and KID (metrics/image_quality.py) between N samples and N held-out images, with
the domain classifier's features (offline default) or Inception's (``--features inception``, after
``make fetch-weights``). 2-D sets: exact W1 (POT). VAE: also the test-set ELBO and
importance-weighted bound. Every figure is printed beside its real-vs-real baseline and its
counts. Prints a table, writes ``<run>/eval/step_<N>.<features>.json`` and logs to the run's W&B
run when it has one.
"""

from __future__ import annotations

import importlib
import json
import os
import time
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import NamedTuple

import lightning as L
import torch

from lightning_gans.callbacks.measurements import short_reference
from lightning_gans.data import REFERENCES, GANDataModule, batches, first_n
from lightning_gans.errors import ConfigError, OneLineParser, require
from lightning_gans.files import atomic_write
from lightning_gans.launch.console import lightning_silent, quiet_lightning
from lightning_gans.launch.run_dir import read_checkpoint, resolve_checkpoint, trusted
from lightning_gans.metrics.features import FEATURES, classifier_path, find_classifier
from lightning_gans.metrics.image_quality import ImageQuality
from lightning_gans.metrics.theory import wasserstein1
from lightning_gans.models.generative import GenerativeModule
from lightning_gans.tools.args import add_trust_flag, one_line_errors, trust_if_asked
from lightning_gans.tools.classifier import train_classifier


class Run(NamedTuple):
    model: GenerativeModule
    data: GANDataModule
    path: Path
    generator_step: int


def load_run(ckpt: str, device: str = "cpu") -> Run:
    """The model and DataModule a checkpoint was trained with (both are in the checkpoint),
    read as data only unless the user trusted the file (``--trust-checkpoint``)."""
    path = resolve_checkpoint(ckpt)
    if path is None:
        raise ConfigError(f"checkpoint {ckpt!r} not found: pass a .ckpt file or a run directory")
    try:
        saved = read_checkpoint(path)  # data only: nothing in it runs
        module, name = saved["hyper_parameters"]["_class_path"].rsplit(".", 1)
        cls = getattr(importlib.import_module(module), name)
        model = cls.load_from_checkpoint(path, map_location=device, weights_only=not trusted(path))
    except (KeyError, RuntimeError, EOFError, ValueError, TypeError, ImportError,
            AttributeError, ArgumentError) as e:  # fmt: skip
        raise ConfigError(f"{path} is not a lightning-gans checkpoint ({type(e).__name__})") from e
    if not isinstance(model, GenerativeModule):
        raise ConfigError(f"{path} holds a {type(model).__name__}, not a lightning-gans model")
    broken = [
        k for k, v in model.state_dict().items() if v.is_floating_point() and not v.isfinite().all()
    ]
    if broken:  # figures or pictures of NaN weights would say nothing true
        raise ConfigError(f"{path} holds non-finite weights ({broken[0]}, ...): nothing to measure")
    hparams = saved["datamodule_hyper_parameters"]
    data = GANDataModule(**{k: v for k, v in hparams.items() if not k.startswith("_")})
    data.setup("test")
    return Run(model.eval(), data, path, saved["global_step"])


def ensure_classifier(dataset: str, image_size: int, cache: str) -> None:
    """Trains the domain classifier once when it is missing (about a minute on a CPU)."""
    path = classifier_path(dataset, image_size, cache)
    if find_classifier(dataset, image_size, cache) is None:
        print(f"no {path}: training the {dataset} domain classifier once (make classifier)")
        _, accuracy = train_classifier(dataset, image_size, cache=cache)
        print(f"domain classifier: {path} (held-out accuracy {accuracy:.3f})")


def evaluate(
    ckpt: str,
    n: int = 2000,
    features: str = "domain",
    cache: str = "data",
    seed: int = 0,
    reference: str = "test",
    n_real: int | None = None,
) -> dict:
    """All figures for one checkpoint: n samples against n_real (default n) images of the
    ``reference`` split, beside the real-vs-real baseline (as many images of another split
    against the same reference); written to ``<run>/eval/step_<N>.<features>.json``."""
    require(reference in REFERENCES, "--reference", repr(reference), " or ".join(REFERENCES))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, data, path, step = load_run(ckpt, device)
    accuracy = None
    split = getattr(data, f"{reference}_set")
    asked = n_real or n
    n_real = min(asked, len(split))
    if n_real < asked:  # a smaller set is used whole, and says so
        print(short_reference("--n-real", asked, reference, len(split)))
    other_name = "test" if reference in ("train", "full_train") else "train"
    other_set = getattr(data, f"{other_name}_set")  # held-out from the reference
    n_other = min(n, len(other_set))
    z = torch.randn(n, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    h = data.hparams
    if len(model.data_shape) == 1:  # 2-D points: small, exact optimal transport on all of them
        real, fake = first_n(split, n_real), torch.cat(list(model.samples(z)))
        metrics = {"exact_w1": wasserstein1(fake, real)}
        baseline = {"exact_w1": wasserstein1(first_n(other_set, n), real)}
    else:  # images: drawn and embedded a batch at a time, only their features are kept
        if features == "domain" and h.dataset in ("mnist5k", "digits"):  # embedded: offline
            ensure_classifier(h.dataset, h.image_size, cache)
        channels = model.data_shape[0]
        quality = ImageQuality(features, h.dataset, h.image_size, channels, cache, device)
        quality.set_real(batches(split, n_real))
        metrics = quality(None, model.samples(z), seed)
        baseline = quality(None, batches(other_set, n), seed)
        baseline = {k: v for k, v in baseline.items() if "std" not in k}
        accuracy = getattr(quality.net, "test_accuracy", None)  # domain: how far to trust it
    if hasattr(model, "iw_bound"):  # the VAE: likelihood bounds on the whole test split
        with lightning_silent():
            # devices=1: with "auto" Lightning would rerun this whole tool once per visible GPU
            tester = L.Trainer(
                logger=False, enable_progress_bar=False, inference_mode=False, devices=1
            )
            scores = tester.test(model, data.test_dataloader(), verbose=False)[0]
        metrics |= {k.removeprefix("test/"): v for k, v in scores.items() if k != "step"}
    result = {
        "checkpoint": str(path),
        "model": type(model).__name__,
        "dataset": h.dataset,
        "generator_step": step,
        "n_fake": n,
        "n_real": n_real,
        "reference": reference,
        "real_vs_real_images": f"{n_other} of the {other_name} split",
        "units": "images" if len(model.data_shape) == 3 else "points",
        "features": features if len(model.data_shape) == 3 else "none (exact optimal transport)",
        "classifier_accuracy": accuracy,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "metrics": metrics,
        "real_vs_real": baseline,
    }
    written = eval_path(path, step, result["features"].split()[0])
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(written, lambda f: f.write(text.encode()))  # whole or not at all
    result["written"] = str(written)
    log_to_wandb(path, result)
    return result


def eval_path(ckpt: Path, step: int, features: str) -> Path:
    """``<run>/eval/step_<N>.<features>.json``: named by the step it measured, so a file
    never describes a checkpoint that has since moved on (``last.ckpt`` does)."""
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run_dir / "eval" / f"step_{step:06d}.{features}.json"


def log_to_wandb(ckpt: Path, result: dict) -> None:
    """Adds the figures to the run's W&B run (same id), if the run logged to W&B."""
    run_dir = ckpt.parent.parent
    id_file = run_dir / "wandb_run_id"
    if not id_file.is_file():
        return
    from lightning_gans.launch.loggers import wandb_mode

    mode = wandb_mode()
    if mode == "disabled":
        return
    import wandb

    run = wandb.init(
        id=id_file.read_text().strip(),
        dir=str(run_dir),
        resume="allow",
        mode=mode,
        project=_project(run_dir),
        settings=wandb.Settings(silent=True),
    )
    run.log(
        {f"eval/{k}": v for k, v in result["metrics"].items()}
        | {"eval/generator_step": result["generator_step"]}
    )
    run.finish()


def _project(run_dir: Path) -> str:
    """The W&B project the run logged to: its flag, else $WANDB_PROJECT, else ours."""
    import yaml

    config = run_dir / "config.yaml"
    project = None
    if config.is_file():
        project = (yaml.safe_load(config.read_text()).get("run") or {}).get("project")
    return project or os.environ.get("WANDB_PROJECT") or "lightning-gans"


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    print(f"{result['model']} on {result['dataset']}, generator step {result['generator_step']}")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("real vs real", justify="right")
    ceiling = result.get("real_vs_real", {})
    for k, v in result["metrics"].items():
        table.add_row(k, f"{v:.4f}", f"{ceiling[k]:.4f}" if k in ceiling else "")
    Console().print(table)
    accuracy = result["classifier_accuracy"]
    held_out = "" if accuracy is None else f" (classifier held-out accuracy {accuracy:.3f})"
    print(
        f"features: {result['features']}{held_out}; {result['n_fake']} samples against "
        f"{result['n_real']} {result['units']} of the {result['reference']} split; real vs real: "
        f"{result['real_vs_real_images']} against the same {result['n_real']}"
    )
    print(f"written to {result['written']}")


def main(argv: list[str] | None = None) -> None:
    ap = OneLineParser(description="FID/KID (images), exact W1 (2-D), ELBO (VAE)")
    ap.add_argument("ckpt", help="a .ckpt file or a run directory (its last.ckpt)")
    ap.add_argument("--n", type=int, default=2000, help="samples (and held-out points) to use")
    ap.add_argument("--features", default="domain", choices=FEATURES)
    ap.add_argument("--cache", default="data", help="where weights and classifiers live")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--reference",
        default="test",
        choices=REFERENCES,
        help="the real images: a split, or full_train (train + val)",
    )
    ap.add_argument("--n-real", type=int, default=None, help="how many (default: --n)")
    add_trust_flag(ap)
    args = ap.parse_args(argv)
    quiet_lightning()
    warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
    if args.n < 2:
        ap.error(f"--n must be at least 2, got {args.n}")
    if args.n_real is not None and args.n_real < 2:
        ap.error(f"--n-real must be at least 2, got {args.n_real}")
    one_line_errors(lambda: trust_if_asked(args) or print_table(evaluate(
        args.ckpt, args.n, args.features, args.cache, args.seed, args.reference, args.n_real
    )))  # fmt: skip


if __name__ == "__main__":
    main()
