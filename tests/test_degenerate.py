"""Hand-built degenerate networks with known counts, and what peers' methods get wrong."""

import numpy as np
import pytest

from pieces import ReLUNet, count_pieces, sawtooth
from pieces.count._grid import count_walk


def both(net, interval):
    e = count_pieces(net, interval)
    r = count_pieces(net, interval, method="rational")
    assert (e.pieces, e.regions) == (r.pieces, r.regions)
    np.testing.assert_allclose(e.breakpoints, r.breakpoints, rtol=1e-12)
    return e


def test_affine_net_without_hidden_layer():
    c = both(ReLUNet([[[2.0]]], [[1.0]]), (-1.0, 1.0))
    assert (c.pieces, c.regions, c.breakpoints.size) == (1, 1, 0)


def test_dead_layer_gives_one_piece():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(4, 1)), np.zeros((4, 4)), rng.normal(size=(4, 4)), rng.normal(size=(1, 4))]
    bs = [rng.normal(size=4), -np.ones(4), rng.normal(size=4), rng.normal(size=1)]
    c = both(ReLUNet(ws, bs), (-3.0, 3.0))
    assert c.pieces == 1
    assert c.regions == 1 + 4 - int(np.sum(-bs[0] / ws[0][:, 0] <= -3) + np.sum(-bs[0] / ws[0][:, 0] >= 3))


def test_identically_zero_preactivation_is_inactive():
    # neuron 2 has zero weights and bias: identically 0, never active, adds no region
    net = ReLUNet([[[1.0], [0.0]], [[1.0, 5.0]]], [[-0.5, 0.0], [0.0]])
    c = both(net, (0.0, 1.0))
    assert (c.pieces, c.regions) == (2, 2)
    assert c.breakpoints.tolist() == [0.5]


def test_duplicated_negated_and_scaled_neurons_share_a_breakpoint():
    # relu(x - .3), relu(2x - .6), relu(-x + .3), relu(x - .3): one crossing at 0.3
    w = np.array([[1.0], [2.0], [-1.0], [1.0]])
    b = np.array([-0.3, -0.6, 0.3, -0.3])
    net = ReLUNet([w, [[1.0, 1.0, 1.0, -2.0]]], [b, [0.0]])
    c = both(net, (0.0, 1.0))
    assert (c.pieces, c.regions) == (2, 2)


def test_non_dyadic_scaling_splits_a_breakpoint_that_tolerances_merge():
    """A neuron scaled by 3.7: its rounded weights cross zero a tiny distance from the
    original neuron in exact arithmetic, although both crossings round to the same
    float. The tolerance counter merges the two (config.MERGE_RTOL); the exact counter,
    like the rational oracle, sees the region between them."""
    from fractions import Fraction

    base_w, base_b = 0.7, -0.2345678
    w = np.array([[base_w], [3.7 * base_w]])
    b = np.array([base_b, 3.7 * base_b])
    net = ReLUNet([w, [[1.0, 1.0]]], [b, [0.0]])
    t = count_pieces(net, (-1.0, 1.0), method="tolerance")
    assert (t.pieces, t.regions) == (2, 2)
    assert Fraction(-b[0]) / Fraction(w[0, 0]) != Fraction(-b[1]) / Fraction(w[1, 0])
    e = both(net, (-1.0, 1.0))
    assert (e.pieces, e.regions) == (3, 3)


def test_crossing_on_interval_end_adds_nothing():
    net = ReLUNet([[[1.0], [1.0]], [[1.0, -1.0]]], [[0.0, -1.0], [0.0]])  # kinks at 0 and 1
    c = both(net, (0.0, 1.0))
    assert (c.pieces, c.regions) == (1, 1)
    c = both(net, (-1.0, 2.0))
    assert (c.pieces, c.regions) == (3, 3)


def test_linear_on_whole_interval():
    net = ReLUNet([[[1.0], [-1.0]], [[1.0, -1.0]]], [[0.0, 0.0], [0.0]])  # relu(x)-relu(-x) = x
    c = both(net, (-2.0, 2.0))
    assert c.pieces == 1 and c.regions == 2  # the pattern changes at 0, f does not


def test_zero_column_removes_piece_not_region():
    net = ReLUNet([[[1.0], [1.0]], [[1.0, 0.0]]], [[0.0, -0.5], [0.0]])
    c = both(net, (-1.0, 1.0))
    assert (c.pieces, c.regions) == (2, 3)


def test_deeper_crossing_on_segment_end():
    # layer 2 neuron relu(h - 0.5) with h = relu(x): crossing at 0.5, and layer-1 kink 0
    net = ReLUNet([[[1.0]], [[1.0]], [[1.0]]], [[0.0], [-0.5], [0.0]])
    c = both(net, (0.0, 0.5))
    assert (c.pieces, c.regions) == (1, 1)
    c = both(net, (-1.0, 1.0))
    assert (c.pieces, c.regions) == (2, 3)


def test_grid_merges_close_breakpoints_and_misses_narrow_pieces():
    net = ReLUNet([[[1.0], [1.0], [1.0]], [[1.0, -2.0, 1.0]]], [[-0.5, -0.5001, -0.5002], [0.0]])
    e = both(net, (0.0, 1.0))
    g = count_pieces(net, (0.0, 1.0), method="grid", n=1001)
    assert (e.pieces, e.regions) == (4, 4)  # a tiny bump of width 2e-4
    assert g.pieces < e.pieces and g.regions < e.regions


def test_grid_adds_a_region_for_an_end_on_a_breakpoint():
    net = ReLUNet([[[1.0], [1.0]], [[1.0, -1.0]]], [[0.0, -0.5], [0.0]])  # kinks at 0, 0.5
    assert both(net, (0.0, 1.0)).regions == 2
    assert count_pieces(net, (0.0, 1.0), method="grid", n=1001).regions == 3  # relu(0) reads inactive
    # a sawtooth on a dyadic grid: both ends and every valley where a neuron touches 0
    # without changing sign read as extra regions
    assert count_pieces(sawtooth(3), (0.0, 1.0), method="grid", n=4097).regions > 2**3


@pytest.mark.parametrize("L", [3, 6, 9])
def test_walker_started_on_a_boundary_skips_half_a_sawtooth(L):
    assert count_walk(sawtooth(L), 0.0, 1.0, eps=1e-9) == 2 ** (L - 1) + 1
    assert count_pieces(sawtooth(L), (0.0, 1.0)).regions == 2**L


def test_walker_steps_over_narrow_regions():
    net = ReLUNet([[[1.0], [1.0]], [[1.0, -1.0]]], [[-0.5, -0.5 - 1e-7], [0.0]])
    assert count_pieces(net, (0.0, 1.0)).regions == 3
    assert count_walk(net, 0.0, 1.0, eps=1e-6) == 2
