"""The study measures round-off, not the step size: lr="auto", the controls of the
experiments, the per-net crossing bound and survival depth."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pieces import (ReLUNet, TrainConfig, count_pieces, initial_net, perturbed_step, sawtooth, train,
                    train_batch, yarotsky_square)
from pieces.curvature import auto_lr, gauss_newton_lambda_max, output_jacobian
from pieces.perturb import gd_step
from pieces.pwl import crossing_bound, layer_slopes, max_input_derivative, sup_error_square
from pieces.study import default_settings
from strategies import nets as degenerate_nets


# -- lr = "auto" ---------------------------------------------------------------------------


def test_jacobian_matches_finite_differences():
    net = ReLUNet.random([5, 4, 3], seed=2)
    x = np.linspace(0.05, 0.95, 7)
    J = output_jacobian(net, x)
    from pieces.train import net_to_theta, theta_to_net

    theta = net_to_theta(net)
    sizes = [1, 5, 4, 3, 1]
    h = 1e-6
    fd = np.empty((x.size, theta.size))
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        fd[:, k] = (theta_to_net(theta + e, sizes)(x) - theta_to_net(theta - e, sizes)(x)) / (2 * h)
    # J's columns are in another order: compare the Gram matrices (order-free)
    np.testing.assert_allclose(J @ J.T, fd @ fd.T, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("net", [sawtooth(4), yarotsky_square(3), ReLUNet.random([8, 8], seed=1)])
def test_lambda_max_equals_the_largest_eigenvalue(net):
    x = np.linspace(0, 1, 65)
    J = output_jacobian(net, x)
    exact = 2.0 / x.size * np.linalg.eigvalsh(J.T @ J).max()
    assert gauss_newton_lambda_max(net, x) == pytest.approx(exact, rel=1e-5)


def test_auto_lr_is_recorded_and_rejected_for_adam():
    cfg = TrainConfig(optimizer="gd", lr="auto", steps=20, record_every=10)
    res = train(ReLUNet.random([8, 8], seed=0), "square", cfg)
    lr, lam = auto_lr(ReLUNet.random([8, 8], seed=0), np.linspace(0, 1, cfg.n_samples))
    assert res.lr == lr and res.lambda_max == lam and res.config.lr == lr
    assert np.isnan(train(ReLUNet.random([8], seed=0), "square", TrainConfig(steps=5)).lambda_max)
    with pytest.raises(ValueError, match="Adam"):
        TrainConfig(optimizer="adam", lr="auto")
    with pytest.raises(ValueError, match="auto"):
        TrainConfig(lr="fast")


def test_auto_lr_batch_equals_one_by_one():
    cfg = TrainConfig(optimizer="gd", lr="auto", steps=30, record_every=10)
    nets = [ReLUNet.random([6, 6], seed=s) for s in range(3)]
    batch = train_batch(nets, "sine:2", cfg)
    for net, b in zip(nets, batch):
        one = train(net, "sine:2", cfg)
        assert one.net == b.net and one.lr == b.lr


def test_auto_lr_underflow_in_fp16_leaves_the_start():
    cfg = TrainConfig(optimizer="gd", lr="auto", steps=10, record_every=5, precision="fp16", n_samples=2**13 + 1)
    res = train(sawtooth(12), "sawtooth:2048", cfg)
    assert res.lr_underflow and res.steps_done == 0 and len(res.history) == 1


# -- the controls -------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["sawtooth", "yarotsky_square"])
def test_exact_construction_stays_exact_under_fp64_training(init):
    """Control 1: the exact construction, trained with lr='auto' in fp64 on its own
    target, keeps exactly 2**L pieces, its weights, and a loss at rounding level."""
    cfg = TrainConfig(optimizer="gd", lr="auto", steps=40, record_every=20)
    for L in (1, 4, 8, 10):
        net = initial_net(init, depth=L)
        target = f"sawtooth:{2 ** (L - 1)}" if init == "sawtooth" else f"yarotsky:{L}"
        res = train(net, target, TrainConfig(**{**cfg.__dict__, "n_samples": 2 ** (L + 1) + 1}))
        assert res.net == net
        assert set(res.history["pieces"]) == {2**L}
        assert res.history["loss"].max() < 1e-30


@pytest.mark.parametrize("init, target", [("sawtooth", "square"), ("yarotsky_square", "sine:2")])
def test_unperturbed_step_keeps_construction_pieces(init, target):
    """Control 2: eta = 0 at lr='auto' keeps >= 99% of the pieces at every depth of the
    default perturbation grid."""
    x = np.linspace(0, 1, 256)
    y = np.sin(2 * np.pi * x) if target == "sine:2" else x**2
    for L in default_settings()["perturbation_depths"]:
        net = initial_net(init, depth=L)
        before = count_pieces(net).pieces
        after = count_pieces(perturbed_step(net, x, y, lr="auto", eta=0.0)).pieces
        assert after >= 0.99 * before, (L, before, after)


def test_auto_lr_keeps_a_perturbed_sawtooth_where_a_fixed_step_collapses_it():
    net = initial_net("sawtooth", depth=12, perturb=1e-3, seed=0)
    x = np.linspace(0, 1, 2**13 + 1)
    y = x**2
    assert count_pieces(perturbed_step(net, x, y, lr="auto", eta=0.0)).pieces >= 0.9 * 2**12
    # the experiment could see a collapse: the old fixed step does collapse it
    assert count_pieces(perturbed_step(net, x, y, lr=0.05, eta=0.0)).pieces < 0.1 * 2**12


# -- the crossing bound -------------------------------------------------------------------


def _tv_dense(net, layer, n, grid=200_001):
    g = np.linspace(0, 1, grid)
    z = net.preactivations(g)[layer][n] - net._biases[layer][n]
    return float(np.abs(np.diff(z)).sum())


def test_crossing_bound_terms_against_a_dense_grid():
    net = ReLUNet.random([6, 5, 4], seed=7)
    cb = crossing_bound(net, [np.zeros(6), np.zeros(5), np.zeros(4)])
    k = 0
    for layer, w in enumerate(net.widths):
        for n in range(w):
            # a grid misses the tips of the extrema between its points: it may only be lower
            dense = _tv_dense(net, layer, n)
            assert dense <= cb.tv[k] * (1 + 1e-9) + 1e-12 and cb.tv[k] - dense <= 1e-5 * max(cb.tv[k], 1e-3)
            k += 1
    # with no noise the bound is 1 + the actual sign changes, which bound the regions
    assert cb.bound == 1 + cb.crossings.sum() >= count_pieces(net).regions


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=degenerate_nets(max_depth=5, max_width=8), eta=st.sampled_from([0.0, 1e-4, 0.1, 1.0]), seed=st.integers(0, 2**16))
def test_crossing_bound_holds(net, eta, seed):
    x = np.linspace(0, 1, 64)
    step = gd_step(net, x, np.sin(3 * x), "auto")
    p, r, b = step.draws(eta, 20, seed=seed)
    assert np.all(p <= r)
    excess = r - b
    if eta == 0:
        assert np.all(excess <= 0)
    else:
        se = excess.std(ddof=1) / np.sqrt(excess.size)
        assert excess.mean() <= 4 * se + 1e-9


def test_draws_equal_the_slow_path():
    net = ReLUNet.random([8, 8, 8], seed=3)
    x = np.linspace(0, 1, 64)
    step = gd_step(net, x, x**2, "auto")
    p, r, b = step.draws(0.3, 5, seed=9)
    widths = [2 * 0.3 * np.abs(d) for d in step.bias_delta[:-1]]
    for d in range(5):
        after, _ = step.perturbed(0.3, seed=[9, d])
        c = count_pieces(after)
        assert (c.pieces, c.regions) == (p[d], r[d])
        assert crossing_bound(after, widths).bound == b[d]


# -- exact slopes and errors --------------------------------------------------------------


def test_max_input_derivative_is_exact_on_constructions():
    assert max_input_derivative(sawtooth(6)).tolist() == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    net = ReLUNet.random([7, 7], seed=4)
    g = np.linspace(0, 1, 400_001)
    _, slopes, _, _ = layer_slopes(net, 0.5 * (g[1:] + g[:-1]))
    assert max_input_derivative(net)[1] == pytest.approx(np.abs(slopes[1]).max(), rel=1e-9)


@pytest.mark.parametrize("net", [yarotsky_square(4), sawtooth(3), ReLUNet.random([8, 8], seed=5),
                                 ReLUNet.random([16, 16, 16], seed=6)])
def test_exact_sup_error_equals_a_dense_grid(net):
    g = np.linspace(0, 1, 10**6 + 1)
    grid = np.abs(net(g) - g**2).max()
    exact = sup_error_square(net)
    # the grid misses the maximum by at most (max |f' - 2x|) * spacing
    slope = max(np.abs(layer_slopes(net, g[::1000])[3]).max(), 1.0) + 2
    assert grid <= exact + 1e-12 and exact - grid <= slope * 1e-6


# -- survival depth -----------------------------------------------------------------------


def _survival_data(fail_at):
    import pandas as pd

    rows = []
    for seed, f in enumerate(fail_at):
        for L in range(1, 13):
            rows.append(dict(experiment="precision", init="sawtooth", precision="fp16", delta=2.0**-11, seed=seed,
                             depth=L, metric="survived", value=float(f is None or L < f), stage="trained"))
    from report.load import RunData

    return RunData(pd.DataFrame(rows), {}, ".")


def test_survival_depth_is_right_censored():
    from report.findings import lstar_text, survival_table

    (r,) = survival_table(_survival_data([None] * 10))
    assert r["median_censored"] and lstar_text(r).startswith("> 12")
    (r,) = survival_table(_survival_data([5] * 6 + [7] * 4))
    assert not r["median_censored"] and r["median"] == 4 and lstar_text(r).startswith("4 [4, 6]")
    # a failure at 3 ends the seed's survival even if deeper depths survive again
    (r,) = survival_table(_survival_data([3]))
    assert r["lstar"] == [2.0]
