"""docs/theory.md §1-§4 and §8.3, and worked examples A and B, as tests."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_gans.metrics.theory import (
    cross_entropy,
    entropy,
    gan_value,
    gaussian_kl,
    js,
    kl,
    optimal_discriminator,
    sliced_wasserstein1,
    tv,
    wasserstein1,
    wasserstein1_1d,
)
from lightning_gans.tools.theory_plot import example_a, parallel_lines

LOG2 = math.log(2)


def distributions(size: int):
    """Random probability vectors with exact zeros (disjoint supports happen) and no masses so
    small that float64 underflows (p = 1e-320 is a test of the float format, not of the maths)."""
    mass = st.one_of(st.just(0.0), st.floats(1e-3, 1.0))
    weights = st.lists(mass, min_size=size, max_size=size)
    return weights.filter(lambda w: sum(w) > 1e-3).map(
        lambda w: torch.tensor(w, dtype=torch.float64) / sum(w)
    )


# --- §1, §2 -------------------------------------------------------------------------------------


def test_cross_entropy_is_entropy_plus_kl():  # §1: H(p, q) = H(p) + KL(p || q)
    p = torch.tensor([0.5, 0.25, 0.25, 0.0], dtype=torch.float64)
    q = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    assert cross_entropy(p, q).item() == pytest.approx((entropy(p) + kl(p, q)).item(), abs=1e-12)


def test_kl_is_asymmetric_and_infinite_off_support():
    p = torch.tensor([0.9, 0.1], dtype=torch.float64)
    q = torch.tensor([0.5, 0.5], dtype=torch.float64)
    assert kl(p, q).item() != pytest.approx(kl(q, p).item())
    assert kl(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])).item() == math.inf
    assert kl(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])).item() == pytest.approx(LOG2)


def test_disjoint_supports_js_log2_tv_1():
    p, q = torch.tensor([0.3, 0.7, 0.0, 0.0]), torch.tensor([0.0, 0.0, 0.6, 0.4])
    assert js(p, q).item() == pytest.approx(LOG2)
    assert tv(p, q).item() == pytest.approx(1.0)


def test_batched():
    p = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    q = torch.tensor([[0.5, 0.5], [0.0, 1.0]])
    assert js(p, q).tolist() == pytest.approx([0.0, LOG2])


@settings(max_examples=60, deadline=None)
@given(distributions(6), distributions(6))
def test_properties_on_random_distributions(p, q):
    assert kl(p, q) >= -1e-12 and entropy(p) >= 0
    assert 0 <= js(p, q) <= LOG2 + 1e-12
    assert js(p, q).item() == pytest.approx(js(q, p).item(), abs=1e-12)  # symmetric
    assert 0 <= tv(p, q) <= 1 + 1e-12
    assert tv(p, q).item() == pytest.approx(tv(q, p).item(), abs=1e-12)
    assert kl(p, p).item() == pytest.approx(0, abs=1e-12)
    if (q > 0).all():
        assert cross_entropy(p, q).item() == pytest.approx((entropy(p) + kl(p, q)).item(), abs=1e-9)


# --- §4, examples A and B --------------------------------------------------------------------


@pytest.mark.parametrize("theta", [0.0, 0.25, -0.5, 1.0, 3.0])
def test_example_a_parallel_lines(theta):
    p, q, x0, x1 = parallel_lines(theta)
    if theta == 0:
        assert kl(p, q).item() == kl(q, p).item() == 0
        assert js(p, q).item() == tv(p, q).item() == 0
    else:
        assert kl(p, q).item() == math.inf and kl(q, p).item() == math.inf
        assert js(p, q).item() == pytest.approx(LOG2)
        assert tv(p, q).item() == pytest.approx(1.0)
    assert wasserstein1(x0, x1) == pytest.approx(abs(theta), abs=1e-9)


def test_theory_plot_curves_and_png(tmp_path):
    from lightning_gans.tools.theory_plot import main

    rows = example_a([-1.0, 0.0, 0.5])
    assert rows["W"] == pytest.approx([1.0, 0.0, 0.5])
    assert rows["JS"] == pytest.approx([LOG2, 0.0, LOG2])
    out = tmp_path / "a.png"
    main(str(out))
    assert out.stat().st_size > 10_000


def test_example_b_moving_blocks():
    u, v = torch.tensor([2.0, 8.0]), torch.tensor([3.0, 7.0])
    assert wasserstein1(u[:, None], v[:, None]) == pytest.approx(1.0)
    assert wasserstein1_1d(u, v).item() == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.floats(-5, 5), min_size=2, max_size=12),
    st.lists(st.floats(-5, 5), min_size=2, max_size=12),
)
def test_closed_form_1d_matches_exact_ot(u, v):
    u, v = torch.tensor(u, dtype=torch.float64), torch.tensor(v, dtype=torch.float64)
    exact = wasserstein1(u[:, None], v[:, None])
    assert wasserstein1_1d(u, v).item() == pytest.approx(exact, abs=1e-9)
    assert wasserstein1_1d(u, v).item() == pytest.approx(wasserstein1_1d(v, u).item(), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sliced_w1_is_a_lower_bound_on_exact_w1_where_sliced_w2_is_not(seed):
    """§5: 190 of 200 points where the data is, 10 far off: W1 = 10/200 * 10 = 0.5, while the
    sliced W2 (POT's default order) is about sqrt(0.05 * 100 / 8) = 0.79."""
    import ot

    gen = torch.Generator().manual_seed(seed)
    data = 0.01 * torch.randn(200, 8, generator=gen, dtype=torch.float64)
    far = torch.nn.functional.normalize(torch.randn(10, 8, generator=gen, dtype=torch.float64))
    model = torch.cat([data[:190] + 0.001, 10 * far])
    exact = wasserstein1(model, data)
    assert sliced_wasserstein1(model, data, seed=seed) <= exact
    sw2 = ot.sliced_wasserstein_distance(model.numpy(), data.numpy(), n_projections=128, seed=seed)
    assert sw2 > exact  # the order matters: p = 2 would report more than the distance it bounds


def test_weighted_point_sets():
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[0.0]])
    assert wasserstein1(x, y, a=torch.tensor([0.75, 0.25])) == pytest.approx(0.25)


# --- §3: the GAN game -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(distributions(5), distributions(5), st.lists(st.floats(0.01, 0.99), min_size=5, max_size=5))
def test_d_star_maximises_v_pointwise(p_data, p_g, d):
    d_star = optimal_discriminator(p_data, p_g)
    assert (
        gan_value(d_star, p_data, p_g) >= gan_value(torch.tensor(d).double(), p_data, p_g) - 1e-12
    )
    for i in range(5):  # pointwise: moving D at any single x away from D* lowers V
        for delta in (-0.01, 0.01):
            other = d_star.clone()
            other[i] = (other[i] + delta).clamp(1e-6, 1 - 1e-6)
            assert gan_value(other, p_data, p_g) <= gan_value(d_star, p_data, p_g) + 1e-12


@settings(max_examples=40, deadline=None)
@given(distributions(5), distributions(5))
def test_c_of_g_is_minus_log4_plus_2js(p_data, p_g):
    c = gan_value(optimal_discriminator(p_data, p_g), p_data, p_g)
    assert c.item() == pytest.approx(-math.log(4) + 2 * js(p_data, p_g).item(), abs=1e-9)
    assert c.item() >= -math.log(4) - 1e-12


def test_c_of_g_minimum_only_at_p_data():
    p = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    at = gan_value(optimal_discriminator(p, p), p, p)
    assert at.item() == pytest.approx(-math.log(4))
    assert torch.allclose(optimal_discriminator(p, p), torch.full_like(p, 0.5))
    q = torch.tensor([0.25, 0.3, 0.45], dtype=torch.float64)
    assert gan_value(optimal_discriminator(p, q), p, q).item() > -math.log(4) + 1e-4


# --- §8.3: the Gaussian KL --------------------------------------------------------------------


def test_gaussian_kl_closed_form_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 0.2]], dtype=torch.float64)
    logvar = torch.tensor([[0.3, -0.7, 0.0]], dtype=torch.float64)
    std = (0.5 * logvar).exp()
    z = mu + std * torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    assert gaussian_kl(mu, logvar).item() == pytest.approx((log_q - log_p).mean().item(), abs=0.01)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).tolist() == [0.0, 0.0]
