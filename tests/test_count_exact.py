"""The float64 exact counter against the rational oracle, invariances and known laws."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pieces import ReLUNet, count_pieces, count_pieces_batch, sawtooth
from strategies import intervals, nets


def assert_same_count(net, interval):
    e = count_pieces(net, interval, method="exact")
    r = count_pieces(net, interval, method="rational")
    assert (e.pieces, e.regions) == (r.pieces, r.regions)
    assert e.breakpoints.shape == r.breakpoints.shape
    np.testing.assert_allclose(e.breakpoints, r.breakpoints, rtol=1e-9, atol=1e-12)
    assert e.pieces <= e.regions
    assert e.pieces == len(e.breakpoints) + 1
    assert np.all(np.diff(e.breakpoints) > 0)
    return e


@settings(max_examples=150)
@given(net=nets(), interval=intervals)
def test_exact_equals_rational(net, interval):
    assert_same_count(net, interval)


@settings(max_examples=60)
@given(net=nets(degenerate=False), interval=intervals)
def test_exact_equals_rational_plain_random(net, interval):
    assert_same_count(net, interval)


@settings(max_examples=60)
@given(net=nets(max_depth=5, max_width=8), c=st.sampled_from([-4.0, -1.0, 0.5, 2.0, 1024.0]))
def test_scaling_output_keeps_counts(net, c):
    """c * f has f's pieces. The scaled weights must be exact for that (c a power of
    two): with c = 0.1 the rounded weights define another function, whose exactly
    equal slopes may split (test_scaling_output_by_a_non_dyadic_factor)."""
    e = count_pieces(net, (-3.0, 3.0))
    ws, bs = net.weights, net.biases
    ws[-1] = c * ws[-1]
    bs[-1] = c * bs[-1]
    scaled = count_pieces(ReLUNet(ws, bs), (-3.0, 3.0))
    assert (scaled.pieces, scaled.regions) == (e.pieces, e.regions)
    np.testing.assert_array_equal(scaled.breakpoints, e.breakpoints)


@settings(max_examples=40)
@given(net=nets(max_depth=4, max_width=6), c=st.sampled_from([-3.0, 0.1, 1e3]))
def test_scaling_output_by_a_non_dyadic_factor(net, c):
    ws, bs = net.weights, net.biases
    ws[-1] = c * ws[-1]
    bs[-1] = c * bs[-1]
    assert_same_count(ReLUNet(ws, bs), (-3.0, 3.0))


@settings(max_examples=60)
@given(net=nets(max_depth=5, max_width=8), seed=st.integers(0, 2**31))
def test_permuting_hidden_neurons_keeps_counts(net, seed):
    rng = np.random.default_rng(seed)
    ws, bs = [w.copy() for w in net.weights], [b.copy() for b in net.biases]
    for layer in range(net.depth):
        perm = rng.permutation(ws[layer].shape[0])
        ws[layer] = ws[layer][perm]
        bs[layer] = bs[layer][perm]
        ws[layer + 1] = ws[layer + 1][:, perm]
    e = count_pieces(net, (-3.0, 3.0))
    p = count_pieces(ReLUNet(ws, bs), (-3.0, 3.0))
    assert (p.pieces, p.regions) == (e.pieces, e.regions)
    np.testing.assert_allclose(p.breakpoints, e.breakpoints, rtol=1e-12)


@settings(max_examples=100)
@given(net=nets(max_depth=1, max_width=16), interval=intervals)
def test_one_hidden_layer_has_at_most_w_plus_1_pieces(net, interval):
    e = count_pieces(net, interval)
    assert e.regions <= net.widths[0] + 1
    assert e.pieces <= e.regions


def test_batch_equals_one_by_one():
    nets_ = [ReLUNet.random([w] * d, seed=s) for s, (w, d) in enumerate([(4, 2), (16, 8), (1, 1), (8, 12)] * 5)]
    nets_.append(sawtooth(12))
    for interval in [(-3.0, 3.0), (float("-inf"), float("inf"))]:
        p, r = count_pieces_batch(nets_, interval)
        one = [count_pieces(n, interval) for n in nets_]
        assert p.tolist() == [c.pieces for c in one]
        assert r.tolist() == [c.regions for c in one]


def test_batch_empty_and_bad_device():
    p, r = count_pieces_batch([], (0.0, 1.0))
    assert p.size == r.size == 0
    with pytest.raises(ValueError, match="unknown device"):
        count_pieces_batch([sawtooth(2)], (0, 1), device="tpu")


def test_random_he_regions_law():
    """Mean regions over R of He-initialised nets ≈ hidden neurons + 1.

    Known law for random 1-D ReLU nets (Chen et al. 2018; Kogan et al. 2025): each
    neuron adds on average about one breakpoint on the whole line. Tolerance: the mean
    over 300 seeds must lie within 4 standard errors + 2% of N + 1. Four standard errors
    bound the sampling noise (false alarm < 1e-4); the 2% allows the law's finite-width
    bias, measured here at 0.6% for widths [8, 8] and 3.6% for [8]*8 (narrow deep nets
    lose crossings behind dead neurons; [4]*4 is 10% low, so it is not tested).
    """
    for widths in ([8, 8], [16, 16, 16], [32] * 4):
        nets_ = [ReLUNet.random(widths, init="he", seed=s) for s in range(300)]
        _, regions = count_pieces_batch(nets_, (float("-inf"), float("inf")))
        n1 = sum(widths) + 1
        mean, se = regions.mean(), regions.std(ddof=1) / np.sqrt(regions.size)
        assert abs(mean - n1) <= 4 * se + 0.02 * n1, (widths, mean, se, n1)


@settings(max_examples=40)
@given(net=nets(max_depth=6, max_width=8), c=st.sampled_from([0.5, 3.0, 1e-3, 7.25]))
def test_bias_scaling_is_input_scaling_on_the_line(net, c):
    """f(x; W, c·b) = c·f(x/c; W, b) for c > 0, so over R the counts do not change and
    the breakpoints scale by c."""
    e = count_pieces(net, (float("-inf"), float("inf")))
    scaled = ReLUNet(net.weights, [c * b for b in net.biases])
    s = count_pieces(scaled, (float("-inf"), float("inf")))
    assert (s.pieces, s.regions) == (e.pieces, e.regions)
    np.testing.assert_allclose(s.breakpoints, c * e.breakpoints, rtol=1e-9, atol=1e-300)


def test_rational_sweeps_of_the_same_net_are_kept_and_equal_a_fresh_one():
    # the study counts a trained net, then takes its regions twice: one sweep serves all
    from pieces.count import _rational

    net = ReLUNet.random([5, 5, 5], seed=11)
    _rational._segments_of.cache_clear()
    first = count_pieces(net, (-2.0, 2.0), method="rational")
    ends = _rational.rational_region_ends(net, -2.0, 2.0)
    info = _rational._segments_of.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    w0 = net.weights[0].copy()
    w0[0, 0] = np.nextafter(w0[0, 0], np.inf)  # another net: not served from the cache
    count_pieces(ReLUNet([w0, *net.weights[1:]], net.biases), (-2.0, 2.0), method="rational")
    assert _rational._segments_of.cache_info().misses == 2
    _rational._segments_of.cache_clear()
    fresh = count_pieces(net, (-2.0, 2.0), method="rational")
    assert (first.pieces, first.regions, list(first.breakpoints)) == (fresh.pieces, fresh.regions,
                                                                      list(fresh.breakpoints))
    assert len(ends) == first.regions + 1
