"""Training: gradients against finite differences and exact arithmetic, determinism,
batch = one by one, divergence, precision, perturbed steps, bad input."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pieces import (
    ReLUNet, TrainConfig, backprop_error, initial_net, perturbed_step, sawtooth, train,
    train_batch, yarotsky_square,
)
from pieces.perturb import gradient, rational_gradient
from pieces.precision import round_array
from pieces.train import net_to_theta, theta_to_net


def central_fd(net, x, y, h=1e-6):
    theta = net_to_theta(net)
    sizes = [1, *net.widths, 1]
    g = np.empty_like(theta)
    for k in range(theta.size):
        e = np.zeros_like(theta)
        e[k] = h
        lp = np.mean((theta_to_net(theta + e, sizes)(x) - y) ** 2)
        lm = np.mean((theta_to_net(theta - e, sizes)(x) - y) ** 2)
        g[k] = (lp - lm) / (2 * h)
    return g


@settings(max_examples=25)
@given(widths=st.lists(st.integers(1, 6), min_size=1, max_size=4), seed=st.integers(0, 10**6))
def test_fp64_gradient_matches_finite_differences(widths, seed):
    net = ReLUNet.random(widths, seed=seed, bias_std=0.5)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, 23)
    y = np.sin(3 * x)
    _, g = gradient(net, x, y, "fp64")
    fd = central_fd(net, x, y)
    # a kink within h of a sample makes the central difference one-sided: skip those
    z = net.preactivations(x)
    if min(np.abs(zl).min() for zl in z) < 1e-4:
        return
    scale = max(np.abs(fd).max(), 1e-8)
    assert np.abs(g - fd).max() <= 1e-6 * scale + 1e-9


def test_gradient_matches_exact_rational():
    net = ReLUNet.random([3, 4], seed=5, bias_std=0.3)
    x = np.linspace(-1, 1, 11)
    y = x**2
    _, g = gradient(net, x, y, "fp64")
    exact = np.array([float(v) for v in rational_gradient(net, x, y)])
    np.testing.assert_allclose(g, exact, rtol=1e-13, atol=1e-15)


def test_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    net = ReLUNet.random([7, 5, 6], seed=3)
    x = np.linspace(-1, 1, 40)
    y = np.cos(2 * x)
    _, g = gradient(net, x, y, "fp64")
    params = []
    h = torch.tensor(x.reshape(-1, 1))
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        W = torch.tensor(np.array(w), requires_grad=True)
        B = torch.tensor(np.array(b), requires_grad=True)
        params += [W, B]
        h = h @ W.T + B
        if i < net.depth:
            h = torch.relu(h)
    loss = ((h[:, 0] - torch.tensor(y)) ** 2).mean()
    loss.backward()
    tg = np.concatenate([np.concatenate([p.grad.numpy().T.ravel(), q.grad.numpy()]) for p, q in zip(params[::2], params[1::2])])
    np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("L", [2, 5, 8])
def test_construction_on_its_own_target_has_zero_gradient(L):
    x = np.linspace(0, 1, 2**6 + 1)  # dyadic points: everything is exact
    net = sawtooth(L)
    y = np.array([float(v) for v in 1 - np.abs(2 * ((2 ** (L - 1) * x) % 1) - 1)])
    assert all(v == 0 for v in rational_gradient(net, x, y))
    assert not np.any(gradient(net, x, y, "fp64")[1])
    m = min(L, 5)
    ym = np.interp(x, np.arange(2**m + 1) / 2**m, (np.arange(2**m + 1) / 2**m) ** 2)
    assert all(v == 0 for v in rational_gradient(yarotsky_square(m), x, ym))


def test_construction_start_keeps_its_pieces_when_trained_on_itself():
    L = 6
    cfg = TrainConfig(steps=50, record_every=25, n_samples=2**7 + 1, lr=0.1)
    res = train(sawtooth(L), f"sawtooth:{2 ** (L - 1)}", cfg)
    assert res.history["pieces"].tolist() == [2**L] * 3
    assert res.history["loss"].max() == 0.0
    assert res.net == sawtooth(L)


@pytest.mark.parametrize("precision", ["fp64", "fp32", "fp16", "bf16", "p7"])
@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_same_seed_same_history_bit_for_bit(precision, optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=0.01, steps=60, record_every=20, precision=precision,
                      sampling="random", seed=4, n_samples=64, batch_size=None if optimizer == "gd" else 16,
                      adam_eps=1e-3)
    net = ReLUNet.random([6, 6], seed=1)
    a = train(net, "sine", cfg)
    b = train(net, "sine", cfg)
    assert a.history.tobytes() == b.history.tobytes()
    assert a.net == b.net
    assert a.steps_done == 60 and not a.diverged
    assert list(a.history["step"]) == [0, 20, 40, 60]


def test_train_batch_equals_one_by_one():
    nets = [ReLUNet.random([5, 5], seed=s) for s in range(5)] + [ReLUNet.random([3, 7, 2], seed=9)]
    for precision in ("fp32", "fp16"):
        cfg = TrainConfig(optimizer="sgd", lr=0.05, steps=40, record_every=10, precision=precision,
                          n_samples=50, batch_size=8)
        seeds = [11, 12, 13, 14, 15, 16]
        batch = train_batch(nets, "square", cfg, seeds=seeds)
        for net, s, res in zip(nets, seeds, batch):
            one = train(net, "square", TrainConfig(**{**cfg.__dict__, "seed": s}))
            assert res.history.tobytes() == one.history.tobytes()
            assert res.net == one.net


def test_training_reduces_loss_and_records_exact_counts():
    res = train(ReLUNet.random([16, 16], seed=0), "square",
                TrainConfig(optimizer="adam", lr=0.01, steps=400, record_every=100))
    h = res.history
    assert h["loss"][-1] < 0.01 * h["loss"][0]
    from pieces import count_pieces
    c = count_pieces(res.net, (0.0, 1.0))
    assert (h["pieces"][-1], h["regions"][-1]) == (c.pieces, c.regions)
    assert np.isclose(h["loss"][-1], np.mean((res.net(np.linspace(0, 1, 256)) - np.linspace(0, 1, 256) ** 2) ** 2))


@pytest.mark.parametrize("precision", ["fp16", "bf16", "p5"])
def test_emulated_training_keeps_weights_in_the_format(precision):
    res = train(ReLUNet.random([8, 8], seed=2), "sine",
                TrainConfig(optimizer="gd", lr=0.05, steps=30, record_every=30, precision=precision))
    theta = net_to_theta(res.net)
    np.testing.assert_array_equal(round_array(theta, precision), theta)
    fp64 = train(ReLUNet.random([8, 8], seed=2), "sine", TrainConfig(optimizer="gd", lr=0.05, steps=30, record_every=30))
    assert not np.array_equal(net_to_theta(fp64.net), theta)


@pytest.mark.parametrize("precision", ["fp64", "fp32", "fp16"])
def test_divergence_stops_cleanly(precision):
    res = train(ReLUNet.random([8, 8, 8], seed=0), "sine:3",
                TrainConfig(optimizer="gd", lr=1e6, steps=500, record_every=50, precision=precision))
    assert res.diverged
    assert res.steps_done < 500
    assert np.all(np.isfinite(res.history["loss"][:1]))
    assert res.history["pieces"].dtype == np.int64 and np.all(res.history["pieces"] >= 1)
    assert all(np.isfinite(w).all() for w in res.net.weights)


def test_adam_matches_a_reference_implementation():
    net = ReLUNet.random([4, 4], seed=3)
    cfg = TrainConfig(optimizer="adam", lr=0.01, steps=5, record_every=5, n_samples=32)
    res = train(net, "square", cfg)
    x = np.linspace(0, 1, 32)
    theta = net_to_theta(net)
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    sizes = [1, 4, 4, 1]
    for t in range(1, 6):
        _, g = gradient(theta_to_net(theta, sizes), x, x**2)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        theta = theta - 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(net_to_theta(res.net), theta, rtol=1e-12, atol=1e-14)


def test_perturbed_step():
    net = ReLUNet.random([6, 6], seed=0)
    x = np.linspace(0, 1, 40)
    y = x**2
    plain = perturbed_step(net, x, y, lr=0.1, eta=0.0)
    gd = train(net, "square", TrainConfig(optimizer="gd", lr=0.1, steps=1, record_every=1, n_samples=40))
    np.testing.assert_allclose(net_to_theta(plain), net_to_theta(gd.net), rtol=1e-14, atol=1e-16)
    noisy, db = perturbed_step(net, x, y, lr=0.1, eta=0.5, seed=3, return_updates=True)
    _, db0 = perturbed_step(net, x, y, lr=0.1, eta=0.0, return_updates=True)
    for w1, w2 in zip(noisy.weights, plain.weights):
        np.testing.assert_array_equal(w1, w2)  # weights carry no noise
    for d, d0 in zip(db, db0):
        nz = d0 != 0
        assert np.all(d[~nz] == 0)
        rel = d[nz] / d0[nz] - 1
        assert np.all(np.abs(rel) <= 0.5) and np.any(rel != 0)
    assert perturbed_step(net, x, y, lr=0.1, eta=0.5, seed=3) == noisy


def test_backprop_error():
    net = ReLUNet.random([3, 3], seed=2)
    x = np.linspace(0, 1, 9)
    e64 = backprop_error(net, x, x**2, "fp64", reference="exact")
    assert e64.total < 1e-14
    e16 = backprop_error(net, x, x**2, "fp16", reference="exact")
    e32 = backprop_error(net, x, x**2, "fp32")
    assert e32.total < 1e-5 < e16.total < 1e-1
    assert e16.per_layer.shape == (3,)


def test_learning_rate_schedules():
    for s in ("constant", "cosine", "linear", "exp"):
        lr = TrainConfig(lr=0.1, steps=11, schedule=s, lr_final=0.1).learning_rates()
        assert lr[0] == pytest.approx(0.1)
        assert lr[-1] == pytest.approx(0.1 if s == "constant" else 0.01)
        assert np.all(np.diff(lr) <= 1e-15)


def test_initial_nets():
    assert initial_net("yarotsky_square", depth=3) == yarotsky_square(3)
    p = initial_net("sawtooth", depth=4, perturb=0.01, seed=1)
    assert p != sawtooth(4) and p.widths == (2, 2, 2, 2)
    assert p == initial_net("sawtooth", depth=4, perturb=0.01, seed=1)
    with pytest.raises(ValueError, match="unknown init"):
        initial_net("zeros", widths=[2])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(optimizer="lbfgs"), "unknown optimizer"),
        (dict(precision="fp8"), "unknown precision"),
        (dict(precision="p30"), "K must be in 2..24"),
        (dict(lr=0.0), "lr must be"),
        (dict(lr=-1.0), "lr must be"),
        (dict(steps=0), "steps must be"),
        (dict(n_samples=1), "n_samples must be"),
        (dict(record_every=0), "record_every"),
        (dict(optimizer="gd", batch_size=4), "full-batch"),
        (dict(interval=(1.0, 0.0)), "reversed"),
        (dict(schedule="warmup"), "unknown schedule"),
        (dict(device="tpu"), "unknown device"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_target():
    with pytest.raises(ValueError, match="unknown target"):
        train(sawtooth(2), "cube", TrainConfig(steps=1))
    with pytest.raises(ValueError, match="takes no parameter"):
        train(sawtooth(2), "square:3", TrainConfig(steps=1))
