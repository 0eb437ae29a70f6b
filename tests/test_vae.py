"""The VAE (docs/theory.md §8): reparameterisation, the bounds, a short real fit."""

from __future__ import annotations

import csv
import math

import pytest
import torch
from torch import nn

from lightning_gans import VAE
from lightning_gans.callbacks.sample_pictures import SamplePictures
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
    for likelihood in ("bernoulli", "binarized"):  # one formula; binarized scores 0/1 pixels
        assert torch.allclose(elbo.log_likelihood(x, out, likelihood, 0.1), expected)
    normal = torch.distributions.Normal(out, 0.5).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(elbo.log_likelihood(x, out, "gaussian", 0.5), normal, atol=1e-3)


LEVELS = torch.arange(256, dtype=torch.float64) * 2 / 255 - 1  # the 8-bit levels in [-1, 1]


@pytest.mark.parametrize(("mean", "log_scale"), [(0.0, -3.0), (0.99, -6.0), (-2.0, 0.5)])
def test_discretised_logistic_is_a_distribution_over_the_256_levels(mean, log_scale):
    m, s = torch.full((256,), mean, dtype=torch.float64), torch.full((256,), log_scale)
    p = elbo.discretized_logistic(LEVELS, m, s.double()).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)


def test_binarisation_draws_each_pixel_from_its_grey_level():
    grey = torch.full((20000,), 0.5)  # data space: grey level 0.75
    x = elbo.observe(grey, "binarized", torch.Generator().manual_seed(0))
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    assert float((x > 0).double().mean()) == pytest.approx(0.75, abs=0.01)
    again = elbo.observe(grey, "binarized", torch.Generator().manual_seed(1))
    assert not torch.equal(x, again)  # redrawn: dynamic, not a fixed binarisation


class Const(nn.Module):  # a decoder that ignores z: p(x|z) = p(x)
    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out

    def forward(self, z):
        return self.out.expand(len(z), *self.out.shape)


def test_bits_per_dim_of_the_discretised_logistic_by_hand():
    torch.manual_seed(0)
    vae = VAE(data_shape=(1, 32, 32), likelihood="logistic", latent_dim=2, width=4)
    mean, log_scale = torch.rand(1, 32, 32) - 0.5, torch.full((1, 32, 32), -1.0)
    vae.decoder = Const(torch.cat([mean, log_scale]))
    vae.encoder = nn.Linear(1024, 4).requires_grad_(False)  # q = N(0, I) = p(z): KL = 0
    nn.init.zeros_(vae.encoder.weight), nn.init.zeros_(vae.encoder.bias)
    vae.encoder = nn.Sequential(nn.Flatten(), vae.encoder)
    k = torch.randint(1, 255, (3, 1, 32, 32))  # interior levels
    x = k * 2 / 255 - 1
    s = math.exp(-1.0)
    up, down = (x.double() + 1 / 255 - mean) / s, (x.double() - 1 / 255 - mean) / s
    by_hand = torch.sigmoid(up) - torch.sigmoid(down)
    log_p = by_hand.log().flatten(1).sum(1)  # log P(x) of each 8-bit image, nats
    terms = vae.elbo_terms(elbo.observe(x, "logistic"))
    assert float(terms["kl"]) == pytest.approx(0.0, abs=1e-6)
    assert float(terms["elbo"]) == pytest.approx(float(log_p.mean()), rel=1e-5)
    assert float(terms["bpd"]) == pytest.approx(
        float(-log_p.mean() / (1024 * math.log(2))), rel=1e-5
    )
    assert torch.allclose(vae.iw_bound(x, 16).double(), log_p, rtol=1e-5)


def linear_gaussian_vae(sigma=0.5):
    """z ~ N(0, 1), x | z ~ N(w z + b, sigma^2 I) in 2-D: p(x) = N(b, w w^T + sigma^2 I)."""
    vae = VAE(data_shape=(2,), likelihood="gaussian", sigma=sigma, latent_dim=1)
    w, b = torch.tensor([[1.5], [-0.5]]), torch.tensor([0.3, -0.2])
    vae.decoder = nn.Linear(1, 2).requires_grad_(False)
    vae.decoder.weight.copy_(w), vae.decoder.bias.copy_(b)
    p_x = torch.distributions.MultivariateNormal(b, w @ w.T + sigma**2 * torch.eye(2))
    return vae, w, b, p_x


def test_elbo_below_iw_bound_below_the_true_log_likelihood():  # docs/theory.md §8.3
    torch.manual_seed(0)
    vae, w, b, p_x = linear_gaussian_vae()
    x = p_x.sample((4000,))
    log_p = p_x.log_prob(x).mean()
    vae.encoder = nn.Linear(2, 2).requires_grad_(False)  # some q(z|x), not the posterior
    bound = vae.elbo_terms(x)["elbo"]
    iw = {k: vae.iw_bound(x, k).mean() for k in (1, 10, 200)}
    assert float(bound) < float(iw[10]) < float(iw[200]) <= float(log_p) + 0.01
    # q = the exact posterior: every bound is log p(x) itself
    precision = 1 + float(w.T @ w) / 0.25
    vae.encoder.weight.copy_(torch.cat([w.T / (0.25 * precision), torch.zeros(1, 2)]))
    vae.encoder.bias.copy_(
        torch.tensor([-float(w.T @ b) / (0.25 * precision), -math.log(precision)])
    )
    assert torch.allclose(vae.iw_bound(x, 8), p_x.log_prob(x), atol=1e-4)
    assert float(vae.elbo_terms(x)["elbo"]) == pytest.approx(float(log_p), abs=0.02)


def test_each_figure_is_named_for_what_it_bounds():
    x = torch.rand(4, 1, 32, 32) * 2 - 1
    keys = {}
    for likelihood in ("binarized", "logistic", "gaussian", "bernoulli"):
        vae = VAE(data_shape=(1, 32, 32), likelihood=likelihood, width=4, latent_dim=2)
        iw = elbo.named(torch.zeros(()), likelihood, (1, 32, 32), iw=True)
        keys[likelihood] = set(vae.elbo_terms(x)) | set(iw)
    assert {"elbo", "bpd", "iw_bound", "iw_bpd"} <= keys["binarized"] & keys["logistic"]
    assert {"elbo", "iw_bound"} <= keys["gaussian"] and not {"bpd", "iw_bpd"} & keys["gaussian"]
    assert {"objective", "iw_objective"} <= keys["bernoulli"]
    assert not {"elbo", "bpd", "iw_bound", "iw_bpd"} & keys["bernoulli"]


def test_bad_likelihood_is_refused():
    with pytest.raises(ConfigError, match="valid: binarized, logistic, gaussian, bernoulli"):
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


def test_pictures_leave_every_buffer_unchanged(fit_run, tmp_path):
    """Samples, reconstructions and the interpolation are drawn in eval mode: batch norm neither
    normalises by the 8 pictured images nor updates its running statistics."""
    cli = fit_run("vae", "--model.width", "8", "--model.iw_samples", "2", steps=2)
    model = cli.model.train()
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    pictures = next(c for c in cli.trainer.callbacks if isinstance(c, SamplePictures))
    before = {k: v.clone() for k, v in model.named_buffers()}
    pictures.last_step = -1
    pictures.draw(cli.trainer, model)
    assert (tmp_path / "run" / "samples" / "reconstructions_step_000002.png").is_file()
    after = dict(model.named_buffers())
    assert all(torch.equal(before[k], after[k]) for k in before)  # num_batches_tracked too
    assert model.training  # restored


def test_validation_figures_are_the_same_at_every_evaluation(tmp_path):
    """The ELBO's eps and the IW bound's z_i come from the evaluation's own stream, not from the
    global generator: two evaluations of the same weights agree whatever ran in between."""
    import lightning as L

    from lightning_gans.data import GANDataModule

    model = VAE(data_shape=(2,), likelihood="gaussian", latent_dim=2, iw_samples=4)
    data = GANDataModule(dataset="toy8", toy_size=256, batch_size=64)
    trainer = L.Trainer(
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        limit_val_batches=2,
        accelerator="cpu",
        devices=1,
        default_root_dir=tmp_path,
    )
    figures = []
    for seed in (1, 2):  # whatever drew from the global generator before this evaluation
        torch.manual_seed(seed)
        figures.append(trainer.validate(model, datamodule=data, verbose=False)[0])
    assert figures[0]["val/elbo"] == figures[1]["val/elbo"]
    assert figures[0]["val/iw_bound"] == figures[1]["val/iw_bound"]
