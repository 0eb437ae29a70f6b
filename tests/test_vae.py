"""The VAE (docs/theory.md §8): reparameterisation, the bounds, a short real fit."""

from __future__ import annotations

import csv

import pytest
import torch

from lightning_gans import VAE
from lightning_gans.errors import ConfigError
from lightning_gans.models import elbo


def test_gradients_reach_mu_and_logvar_through_the_sample():  # docs/theory.md §8.2
    mu = torch.zeros(4, 3, requires_grad=True)
    logvar = torch.zeros(4, 3, requires_grad=True)
    z = elbo.reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    (z**2).sum().backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0


def test_likelihoods_match_their_densities():  # docs/theory.md §8.4
    x = torch.rand(5, 1, 32, 32) * 2 - 1
    out = torch.randn(5, 1, 32, 32)
    expected = (
        -torch.nn.functional.binary_cross_entropy_with_logits(out, (x + 1) / 2, reduction="none")
        .flatten(1)
        .sum(1)
    )
    assert torch.allclose(elbo.log_likelihood(x, out, "bernoulli", 0.1), expected)
    normal = torch.distributions.Normal(out, 0.5).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(elbo.log_likelihood(x, out, "gaussian", 0.5), normal, atol=1e-3)


def test_bad_likelihood_is_refused():
    with pytest.raises(ConfigError, match="valid: bernoulli, gaussian"):
        VAE(data_shape=(1, 32, 32), likelihood="poisson")
    with pytest.raises(ConfigError, match="gaussian"):
        VAE(data_shape=(2,), likelihood="bernoulli")


def read_metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_short_fit_improves_validation_elbo_and_iw_bounds(fit_run, tmp_path):
    cli = fit_run(
        "toy/vae",
        "--trainer.val_check_interval",
        "40",
        "--model.width",
        "64",
        "--data.batch_size",
        "128",
        "--model.iw_samples",
        "8",
        steps=120,
    )
    rows = [r for r in read_metrics(tmp_path / "run" / "metrics.csv") if r.get("val/elbo")]
    elbos = [float(r["val/elbo"]) for r in rows]
    assert len(elbos) == 3 and elbos[-1] > elbos[0]  # the validation ELBO improves
    for r in rows:  # the IW bound with k = 8 sits above the ELBO
        assert float(r["val/iw_bound"]) >= float(r["val/elbo"]) - 0.05

    model, data = cli.model.eval(), cli.datamodule.val_set.x[:1024]
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo_terms(b)["elbo"] for b in data.split(256)]).mean()
    bounds = {
        k: torch.cat([model.iw_bound(b, k) for b in data.split(256)]).mean().item()
        for k in (1, 5, 50)
    }
    assert bounds[1] == pytest.approx(elbo.item(), abs=0.1)  # k = 1 is the ELBO estimate
    assert bounds[1] <= bounds[5] + 1e-3 <= bounds[50] + 2e-3  # non-decreasing in k
    assert bounds[50] > elbo.item()


def test_digits_fit_writes_reconstructions_and_samples(fit_run, tmp_path):
    cli = fit_run("vae", "--model.width", "8", "--model.iw_samples", "2", steps=3)
    names = sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png"))
    assert names == [
        "interpolation_step_000003.png",
        "reconstructions_step_000003.png",
        "step_000003.png",
    ]
    x = cli.model.sample(4)
    assert x.shape == (4, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    loaded = VAE.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert loaded.sample(2).shape == (2, 1, 32, 32)
