"""Nets from R^d to R^k (issue 27): exact counts along segments and of several outputs,
the rational fold as the oracle; the restriction; refusals."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pieces import ReLUNet, count_pieces, sawtooth, train, TrainConfig
from pieces.count._rational_line import count_line_rational


@st.composite
def dnets(draw, max_depth=3, max_width=6):
    """Random nets from R^d to R^k with degenerate first-layer rows: duplicated, zero,
    cancelling (a row and its negative), scaled by powers of two."""
    d = draw(st.integers(1, 8))
    k = draw(st.integers(1, 3))
    depth = draw(st.integers(1, max_depth))
    widths = draw(st.lists(st.integers(1, max_width), min_size=depth, max_size=depth))
    seed = draw(st.integers(0, 2**32 - 1))
    dyadic = draw(st.booleans())
    rng = np.random.default_rng(seed)
    sizes = [d] + widths + [k]
    ws, bs = [], []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        if dyadic:
            ws.append(rng.integers(-4, 5, (n_out, n_in)) / 4.0)
            bs.append(rng.integers(-4, 5, n_out) / 4.0)
        else:
            ws.append(rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in)))
            bs.append(rng.normal(0, 0.5, n_out))
    W, b = ws[0], bs[0]
    for op in draw(st.lists(st.sampled_from(["dup", "zero", "cancel", "scale"]), max_size=3)):
        n = W.shape[0]
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        if op == "dup":
            W[j], b[j] = W[i], b[i]
        elif op == "zero":
            W[i] = 0.0
        elif op == "cancel":
            W[j], b[j] = -W[i], -b[i]
        else:
            W[j], b[j] = 2.0 * W[i], 2.0 * b[i]
    return ReLUNet(ws, bs)


ends = st.sampled_from(["gauss", "thirds", "axis", "same_sign", "zero_coord"])


def segment(net, kind, seed):
    rng = np.random.default_rng(seed)
    d = net.in_dim
    if kind == "thirds":  # non-dyadic ends: folded coefficients no float represents
        return np.full(d, 1 / 3) * rng.choice([-1, 1], d), np.full(d, 2 / 3) + 1 / 7
    if kind == "axis":
        x0 = np.zeros(d)
        x1 = np.zeros(d)
        x1[seed % d] = 1.5
        return x0 - 0.1, x1
    if kind == "same_sign":
        return rng.random(d), rng.random(d) + 0.5
    if kind == "zero_coord":
        x0, x1 = rng.normal(size=d), rng.normal(size=d)
        x0[0] = x1[0] = 0.0
        return x0, x1
    return rng.normal(size=d) * 2, rng.normal(size=d) * 2


@settings(max_examples=80, deadline=None)
@given(net=dnets(), kind=ends, seed=st.integers(0, 1000))
def test_exact_segment_count_equals_the_rational_fold(net, kind, seed):
    x0, x1 = segment(net, kind, seed)
    e = count_pieces(net, segment=(x0, x1))
    r = count_pieces(net, segment=(x0, x1), method="rational")
    assert (e.pieces, e.regions, e.per_output) == (r.pieces, r.regions, r.per_output)
    assert e.breakpoints.size == e.pieces - 1
    np.testing.assert_allclose(e.breakpoints, r.breakpoints, rtol=1e-9, atol=1e-12)
    if net.out_dim > 1:
        assert max(e.per_output) <= e.pieces <= e.regions
        for j in range(net.out_dim):  # each output alone, as a net of its own
            assert count_pieces(net.output(j), segment=(x0, x1)).pieces == e.per_output[j]
    else:
        assert e.per_output is None


def test_non_dyadic_ends_are_folded_exactly():
    # relu(3x - 1) along x from 0 to x1, the float just above 1/3: 3 x1 > 1 exactly, so
    # the crossing lies inside, at t = 1 / (3 x1) < 1; but 3 * x1 rounds to 1.0, and a
    # rounded fold puts the crossing at the end t = 1: one piece instead of two
    net = ReLUNet([[[3.0]], [[1.0]]], [[-1.0], [0.0]])
    x1 = float(np.nextafter(1 / 3, 1.0))
    assert 3.0 * x1 == 1.0 and 3 * Fraction(x1) > 1
    p, r, bps, _ = count_line_rational(net, [0.0], [x1], 0.0, 1.0)
    assert p == 2 and bps == [1 / (3 * Fraction(x1))]
    assert count_pieces(net, segment=([0.0], [x1])).pieces == 2
    assert count_pieces(net, segment=([0.0], [1 / 3])).pieces == 1  # 3 float(1/3) < 1: no crossing


def test_restriction_is_the_line_on_0_1():
    net = ReLUNet.random([7, 5], seed=3, in_dim=4, out_dim=3)
    rng = np.random.default_rng(0)
    x0, x1 = rng.normal(size=4), rng.normal(size=4)
    x0[1] = 0.0  # a coordinate of one sign and one that changes sign
    g = net.restrict(x0, x1)
    assert (g.in_dim, g.out_dim) == (1, 3)
    t = np.linspace(0, 1, 101)
    np.testing.assert_allclose(g(t), net(x0 + t[:, None] * (x1 - x0)), atol=1e-12)
    # the lift's weights are the ends' coordinates and the net's weights, not products
    lifted = set(np.concatenate([w.ravel() for w in g.weights[1:3]]).tolist())
    assert set(x0.tolist()) - {0.0} <= lifted | {-v for v in lifted}


def test_segment_of_a_net_from_R_is_a_subinterval():
    net = sawtooth(4)  # 16 pieces on [0, 1]
    c = count_pieces(net, segment=([0.25], [0.75]))
    assert c.pieces == 8 and np.allclose(c.breakpoints, np.arange(1, 8) / 8)


def test_wide_layers_are_exact():
    net = ReLUNet.random([100, 72], seed=5, in_dim=6, out_dim=2)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x0, x1 = rng.normal(size=6), rng.normal(size=6)
        e = count_pieces(net, segment=(x0, x1))
        r = count_pieces(net, segment=(x0, x1), method="rational")
        assert (e.pieces, e.regions, e.per_output) == (r.pieces, r.regions, r.per_output) and e.pieces > 20


def test_several_outputs_on_an_interval():
    net = ReLUNet.random([8, 8], seed=2, out_dim=3)
    e = count_pieces(net, (-3.0, 3.0))
    r = count_pieces(net, (-3.0, 3.0), method="rational")
    assert (e.pieces, e.regions, e.per_output) == (r.pieces, r.regions, r.per_output)
    assert e.as_dict()["per_output"] == list(e.per_output)
    x = np.linspace(-1, 1, 5)
    assert net(x).shape == (5, 3) and net(0.5).shape == (3,)


def test_r_to_r_unchanged():
    net = ReLUNet.random([6, 6], seed=0)
    assert net(np.array([0.1, 0.2])).shape == (2,) and np.ndim(net(0.3)) == 0
    assert (net.in_dim, net.out_dim) == (1, 1) and repr(net) == "ReLUNet(widths=[6, 6])"
    assert count_pieces(net, (-3.0, 3.0)).per_output is None


@pytest.mark.parametrize("call,text", [
    (lambda n: count_pieces(n), "segment"),
    (lambda n: count_pieces(n, segment=([0.0], [1.0, 2.0])), "coordinates"),
    (lambda n: count_pieces(n, segment=([0.0, np.nan], [1.0, 2.0])), "finite"),
    (lambda n: count_pieces(n, (0.0, 2.0), segment=([0.0, 0.0], [1.0, 2.0])), "interval"),
    (lambda n: count_pieces(n, segment=([0.0, 0.0], [1.0, 2.0]), method="tolerance"), "one output"),
    (lambda n: n(np.zeros((3, 3))), "dimension 2"),
    (lambda n: n.packed(), "R to R"),
    (lambda n: train(n, TrainConfig(steps=1)), "R to R"),
])
def test_refusals(call, text):
    net = ReLUNet.random([4], seed=0, in_dim=2, out_dim=2)
    with pytest.raises(ValueError, match=text):
        call(net)
