"""The certified counter equals the rational count at every scale (issue 16). It is
``method="exact"``; ``"certified"`` is its other name, ``"tolerance"`` the counter it
replaced."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from numba import njit

from pieces import ReLUNet, count_pieces, count_pieces_batch, sawtooth, yarotsky_square
from pieces.count import _certified_bounds, _certified_cpu, _certified_refresh, _count_cpu
from pieces.count._certified_dd import count_one_dd
from pieces.count._rational import slope_at
from strategies import intervals, nets


def status(net, interval):
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    return int(_certified_cpu.count_one(wt, bf, sizes, *interval, 64)[3])


def status_dd(net, interval):
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    return int(count_one_dd(wt, bf, sizes, *interval, 64)[3])


def same(c, r):
    return (c.pieces, c.regions) == (r.pieces, r.regions)


def scaled(net, s):
    """Biases times s: the net s*f(x/s), whose pieces on s*I are f's on I."""
    return ReLUNet(net.weights, [s * b for b in net.biases])


@settings(max_examples=120)
@given(net=nets(), interval=intervals, k=st.integers(-40, 40))
def test_certified_equals_rational_at_every_power_of_two_scale(net, interval, k):
    s = 2.0**k
    big = scaled(net, s)
    iv = (s * interval[0], s * interval[1])
    c = count_pieces(big, iv, method="certified")
    r = count_pieces(net, interval, method="rational")
    assert same(c, r)
    base = count_pieces(net, interval, method="certified")
    assert same(base, r)
    # power-of-two scaling is exact in float64: the breakpoints scale exactly
    np.testing.assert_array_equal(c.breakpoints, s * base.breakpoints)


@settings(max_examples=60)
@given(net=nets(max_depth=4, max_width=8), interval=intervals)
def test_scaled_rational_counts_agree(net, interval):
    """The oracle itself on a scaled net (exact arithmetic: no scale can matter)."""
    s = 2.0**-37
    r = count_pieces(net, interval, method="rational")
    rs = count_pieces(scaled(net, s), (s * interval[0], s * interval[1]), method="rational")
    assert same(r, rs)


def test_he_nets_on_a_wide_interval():
    """Issue 16's first case: He nets on [-1e9, 1e9]. The tolerance counter (the old
    "exact") merges real breakpoints on many of them; the certified one never differs."""
    wrong_tolerance = wrong_certified = undecided = 0
    for seed in range(40):
        net = ReLUNet.random([8] * 4, init="he", seed=seed)
        iv = (-1e9, 1e9)
        r = count_pieces(net, iv, method="rational")
        wrong_tolerance += not same(count_pieces(net, iv, method="tolerance"), r)
        wrong_certified += not same(count_pieces(net, iv, method="certified"), r)
        undecided += status(net, iv)
    assert wrong_certified == 0
    assert wrong_tolerance >= 10  # the control: this test sees the tolerance's error
    assert undecided <= 4


def test_tiny_biases_on_unit_intervals():
    """Issue 16's second case: biases times 1e-9 on intervals of size 1 to 4."""
    rng = np.random.default_rng(0)
    wrong_tolerance = wrong_certified = 0
    for seed in range(120):
        net = ReLUNet.random([8] * 3, init="he", seed=seed)
        net = ReLUNet(net.weights, [1e-9 * b for b in net.biases])
        a = rng.uniform(-2, 0) * 1e-9
        iv = (a, a + rng.uniform(1, 4))
        r = count_pieces(net, iv, method="rational")
        wrong_tolerance += not same(count_pieces(net, iv, method="tolerance"), r)
        wrong_certified += not same(count_pieces(net, iv, method="certified"), r)
    assert wrong_certified == 0
    assert wrong_tolerance >= 3


@pytest.mark.parametrize("interval", [(0.0, 1.0), (-1.0, 2.0), (float("-inf"), float("inf"))])
def test_constructions_are_decided_exactly_in_float64(interval):
    for L in (1, 5, 12):
        for net in (sawtooth(L), yarotsky_square(L)):
            assert status(net, interval) == 0
            c = count_pieces(net, interval, method="certified")
            e = count_pieces(net, interval, method="tolerance")
            assert (c.pieces, c.regions) == (e.pieces, e.regions)
    assert count_pieces(sawtooth(14), (0.0, 1.0), method="certified").pieces == 2**14


def test_one_ulp_apart_is_decided_in_double_double():
    """Two neurons crossing one ulp apart, with inexact values: float64 bounds cannot
    tell them apart, double-double ones can, and the count is the rational one (which
    sees a tiny region)."""
    base_w, base_b = 0.7, -0.2345678
    w = np.array([[base_w], [3.7 * base_w]])
    b = np.array([base_b, 3.7 * base_b])
    net = ReLUNet([w, [[1.0, 1.0]]], [b, [0.0]])
    iv = (-1.0, 1.0)
    assert status(net, iv) == 1
    assert status_dd(net, iv) == 0
    c = count_pieces(net, iv, method="certified")
    assert same(c, count_pieces(net, iv, method="rational"))
    assert c.regions == 3 and c.method == "certified"


def test_exact_coincidence_of_inexact_values_falls_back_to_rational():
    """A duplicated neuron behind an inexact layer: its two crossings are one point in
    exact arithmetic, which no error bound can prove; the net is counted in rationals."""
    net = ReLUNet([[[1.0]], [[0.7], [0.7]], [[1.0, 1.0]]], [[0.3], [-0.1, -0.1], [0.0]])
    iv = (-1.0, 1.0)
    assert status(net, iv) == 1 and status_dd(net, iv) == 1
    assert same(count_pieces(net, iv, method="certified"), count_pieces(net, iv, method="rational"))


@settings(max_examples=150)
@given(net=nets(max_depth=5, max_width=8), interval=intervals, k=st.integers(-40, 40))
def test_double_double_stage_equals_rational_where_it_decides(net, interval, k):
    s = 2.0**k
    big = scaled(net, s)
    iv = (s * interval[0], s * interval[1])
    wt, bf, sizes, *_ = _count_cpu.pack([big])
    p, r, bps, st_ = count_one_dd(wt, bf, sizes, *iv, 64)
    if st_ == 0:
        exact = count_pieces(net, interval, method="rational")
        assert (p, r) == (exact.pieces, exact.regions)


def test_deep_wide_he_nets_are_decided_with_local_double_double():
    """Width 64, depth 16: float64 bounds reach ~1e-3 relative and leave decisions open;
    the segments concerned are recomputed in double-double (_refresh_rows,
    _output_slope_dd), so the float64 stage decides the net. The whole double-double
    sweep decides it too, and both agree with the tolerance counter on these generic
    nets (whose crossings are far apart)."""
    for seed in range(2):
        net = ReLUNet.random([64] * 16, init="he", seed=seed)
        iv = (-3.0, 3.0)
        assert status(net, iv) == 0
        assert status_dd(net, iv) == 0
        c = count_pieces(net, iv, method="certified")
        e = count_pieces(net, iv, method="tolerance")
        assert (c.pieces, c.regions) == (e.pieces, e.regions)
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        assert count_one_dd(wt, bf, sizes, *iv, 64)[:2] == (c.pieces, c.regions)


def cancelling_net(n, depth, k, delta, seed):
    """Width 2n: neuron j+n nearly duplicates neuron j (relative change ``delta``), and
    the next layer weighs the pair ``k*v`` and ``-(k-1)*v``: each sum cancels about
    2k-fold, so float64 bounds grow about k-fold per layer while the crossings stay
    apart."""
    rng = np.random.default_rng(seed)
    ws, bs = [], []
    for layer in range(depth):
        if layer == 0:
            w = rng.standard_normal((n, 1))
        else:
            v = rng.standard_normal((n, n)) / np.sqrt(n)
            w = np.hstack([k * v, -(k - 1) * v])
        b = 0.5 * rng.standard_normal(n)
        ws.append(np.vstack([w, w * (1 + delta * rng.standard_normal(w.shape))]))
        bs.append(np.concatenate([b, b * (1 + delta * rng.standard_normal(n))]))
    v = rng.standard_normal((1, n)) / np.sqrt(n)
    ws.append(np.hstack([k * v, -(k - 1) * v]))
    bs.append(np.zeros(1))
    return ReLUNet(ws, bs)


CANCELLING = [(3, 6, 1024.0, 1e-3), (4, 6, 1024.0, 1e-3), (3, 8, 256.0, 1e-2), (4, 5, 4096.0, 1e-3)]


def test_cancelling_nets_equal_rational_and_local_refresh_decides_them():
    """Nets whose float64 bounds grow too wide: the exact count equals the rational
    one on all 40, and the float64 stage decides more than half of them itself (11
    without the local double-double recomputation, 23 with it)."""
    decided = 0
    for n, depth, k, delta in CANCELLING:
        for seed in range(10):
            net = cancelling_net(n, depth, k, delta, seed)
            iv = (-3.0, 3.0)
            decided += status(net, iv) == 0
            assert same(count_pieces(net, iv), count_pieces(net, iv, method="rational"))
    assert decided >= 20


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 4), depth=st.integers(3, 6), e=st.integers(4, 12), delta=st.sampled_from([1e-1, 1e-2, 1e-3]),
       seed=st.integers(0, 2**16), k=st.integers(-30, 30), unbounded=st.booleans())
def test_cancelling_nets_equal_rational_at_every_scale(n, depth, e, delta, seed, k, unbounded):
    """Random cancelling nets, whose decisions often need the local double-double
    recomputation, at power-of-two scales, on [-3, 3] and on R: exact equals rational."""
    net = cancelling_net(n, depth, 2.0**e, delta, seed)
    s = 2.0**k
    iv = (-np.inf, np.inf) if unbounded else (-3.0, 3.0)
    c = count_pieces(scaled(net, s), (s * iv[0], s * iv[1]))
    assert same(c, count_pieces(net, iv, method="rational"))


@settings(max_examples=80, deadline=None)
@given(net=nets(), x=st.floats(-1e6, 1e6, allow_nan=False), k=st.integers(-60, 60))
def test_dyadic_slope_equals_the_fraction_slope(net, x, k):
    """slope_at in scaled integers (dyadic points) equals forward differentiation in
    Fractions, on random and degenerate nets, at points of every scale; a point that is
    not dyadic takes the Fraction path."""
    from pieces.count._rational import _slope_fractions

    xf = Fraction(x) * Fraction(2) ** k
    assert slope_at(net, xf) == _slope_fractions(net, xf)
    assert slope_at(net, Fraction(1, 3)) == _slope_fractions(net, Fraction(1, 3))


def exact_rows(net, layer, x):
    """The exact slopes and intercepts of the inputs of ``layer`` at the rational x."""
    h, dh = [Fraction(x)], [Fraction(1)]
    for w, b in list(zip(net.weights, net.biases))[:layer]:
        z = [sum((Fraction(wij) * v for wij, v in zip(row, h)), Fraction(0)) + Fraction(bj) for row, bj in zip(w, b)]
        dz = [sum((Fraction(wij) * v for wij, v in zip(row, dh)), Fraction(0)) for row in w]
        h = [zj if zj > 0 else Fraction(0) for zj in z]
        dh = [dj if zj > 0 else Fraction(0) for zj, dj in zip(z, dz)]
    return dh, [hj - dj * Fraction(x) for hj, dj in zip(h, dh)]


@pytest.mark.parametrize("case", range(4))
def test_refreshed_rows_and_slopes_bound_the_exact_ones(case):
    """_refresh_rows: on every segment of the float64 sweep, the recomputed maps of
    each layer's inputs are within their bounds of the exact maps (rational forward
    differentiation at the same interior point); _output_slope_dd likewise for the
    output's slope. Bounds are far below the float64 sweep's on these nets."""
    net = cancelling_net(*CANCELLING[case], seed=1)
    iv = (-3.0, 3.0)
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    st_, xs, ex, slope, serr, _ = _certified_cpu.segments(wt, bf, sizes, *iv, 64)
    if st_ != 0:  # the rows are tested on the nets the float64 stage decides
        pytest.skip("undecided in float64")
    n_layers = sizes.size - 1
    wmax = sizes.max()
    checked = 0
    for k in range(0, xs.size - 1, max(1, (xs.size - 1) // 12)):
        lo, hi = xs[k], xs[k + 1]
        xm = Fraction(0.5 * lo + 0.5 * hi)
        for layer in (1, n_layers // 2, n_layers - 1):
            rows = np.zeros((4, 1, wmax))
            if not _certified_refresh._refresh_rows(wt, bf, sizes, layer, lo, hi, ex[k], ex[k + 1], *rows, 0):
                continue
            A, B = exact_rows(net, layer, xm)
            for i in range(sizes[layer]):
                assert abs(Fraction(rows[0, 0, i]) - A[i]) <= Fraction(rows[2, 0, i])
                assert abs(Fraction(rows[1, 0, i]) - B[i]) <= Fraction(rows[3, 0, i])
            checked += 1
        sl, e = _certified_refresh._output_slope_dd(wt, bf, sizes, lo, hi, ex[k], ex[k + 1])
        if np.isfinite(e):
            assert abs(Fraction(sl) - slope_at(net, xm)) <= Fraction(e)
            assert e <= serr[k] or serr[k] == 0.0
    assert checked > 0


def test_refresh_refuses_a_point_outside_the_exact_segment():
    """The pattern is read at the segment's midpoint only where that point is certified
    inside it: ends whose errors reach the midpoint are refused (False)."""
    net = cancelling_net(3, 4, 16.0, 1e-2, 0)
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    rows = np.zeros((4, 1, sizes.max()))
    assert _certified_refresh._refresh_rows(wt, bf, sizes, 2, 0.0, 1.0, 0.0, 0.0, *rows, 0)
    assert not _certified_refresh._refresh_rows(wt, bf, sizes, 2, 0.0, 1.0, 0.5, 0.0, *rows, 0)
    assert not _certified_refresh._refresh_rows(wt, bf, sizes, 2, 0.0, 1.0, 0.0, 0.5, *rows, 0)
    # an infinite end is exact: the segments at both ends of R are refreshed
    assert _certified_refresh._refresh_rows(wt, bf, sizes, 2, -np.inf, -1e3, 0.0, 1e-9, *rows, 0)
    assert _certified_refresh._refresh_rows(wt, bf, sizes, 2, 1e3, np.inf, 1e-9, 0.0, *rows, 0)


def test_wide_deep_net_on_the_real_line_is_decided_in_float64():
    """w64 L16 on R: an open slope pair next to the unbounded first segment is decided
    by its slopes recomputed in double-double (it was sent to rationals, 100x slower,
    before infinite ends counted as exact)."""
    net = ReLUNet.random([64] * 16, seed=0)
    iv = (-np.inf, np.inf)
    assert status(net, iv) == 0
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    assert count_one_dd(wt, bf, sizes, *iv, 64)[:2] == (count_pieces(net, iv).pieces, count_pieces(net, iv).regions)


finite = st.floats(-1e30, 1e30, allow_nan=False, allow_infinity=False)


@settings(max_examples=300)
@given(s=finite, x=finite, t=finite)
def test_exact_sign_is_the_sign_of_the_exact_value(s, x, t):
    r = _certified_cpu.exact_sign(s, x, t)
    v = Fraction(s) * Fraction(x) + Fraction(t)
    if r != _certified_cpu.AMBIGUOUS:
        assert r == (v > 0) - (v < 0)


@settings(max_examples=200)
@given(m=st.integers(-(2**52), 2**52), e=st.integers(-60, 60), n=st.integers(-(2**52), 2**52))
def test_exact_sign_on_near_cancellations(m, e, n):
    """s*x + t with t = -(s*x rounded) +- tiny: the cases where the fast filter fails."""
    s = float(m) * 2.0**e
    x = float(n) * 2.0**-e / 3.0
    t = -(s * x)
    r = _certified_cpu.exact_sign(s, x, t)
    v = Fraction(s) * Fraction(x) + Fraction(t)
    assert r == (v > 0) - (v < 0)


@njit
def _grain_of(v):
    return _certified_bounds._grain(v, 99999)


@settings(max_examples=300)
@given(v=st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: v != 0.0))
def test_grain_is_the_lowest_set_bit(v):
    """_grain reads the bits (subnormals included); the oracle is the exact rational."""
    grain = _grain_of
    f = Fraction(abs(v))
    num = f.numerator
    assert grain(v) == (num & -num).bit_length() - 1 - (f.denominator.bit_length() - 1)


def test_grain_of_zero_is_the_given_value():
    assert _grain_of(0.0) == 99999 and _grain_of(-0.0) == 99999


def test_kept_workspace_counts_like_a_fresh_one():
    """count_pieces keeps its buffers between nets: a big net, then smaller and wider
    ones, each count equals a count in fresh buffers."""
    for net, iv in [(sawtooth(12), (0.0, 1.0)), (ReLUNet.random([3] * 2, seed=1), (-2.0, 2.0)),
                    (ReLUNet.random([40] * 3, init="he", seed=2), (-np.inf, np.inf)), (sawtooth(4), (0.0, 1.0))]:
        c = count_pieces(net, iv, method="certified")
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        p, r, bps, st_ = _certified_cpu.count_one(wt, bf, sizes, *iv, 1)
        assert st_ == 0 and (c.pieces, c.regions) == (p, r)
        assert np.array_equal(c.breakpoints, bps)


def test_batch_equals_one_by_one_including_undecided_nets():
    nets_ = [ReLUNet.random([w] * d, init="he", seed=s) for s, (w, d) in enumerate([(4, 2), (16, 8), (1, 1), (8, 6)] * 3)]
    nets_ += [sawtooth(10), yarotsky_square(6)]
    nets_.append(ReLUNet([[[0.7], [3.7 * 0.7]], [[1.0, 1.0]]], [[-0.2345678, 3.7 * -0.2345678], [0.0]]))  # dd
    nets_.append(ReLUNet([[[1.0]], [[0.7], [0.7]], [[1.0, 1.0]]], [[0.3], [-0.1, -0.1], [0.0]]))  # rational
    for interval in [(-1e9, 1e9), (-1.0, 1.0), (float("-inf"), float("inf"))]:
        p, r = count_pieces_batch(nets_, interval, method="certified")
        one = [count_pieces(n, interval, method="certified") for n in nets_]
        assert p.tolist() == [c.pieces for c in one]
        assert r.tolist() == [c.regions for c in one]
    with pytest.raises(ValueError, match="'exact' or 'tolerance'"):
        count_pieces_batch(nets_[:1], method="rational")


def test_switch_behind_a_zero_weight_is_one_piece_by_structure():
    """A neuron whose output weight is 0 splits a region but not a piece. The slopes on
    both sides are inexact and equal; no bound can prove that, the structure does
    (without a fallback)."""
    w = np.array([[0.7], [1.3], [-0.9]])
    b = np.array([-0.1, 0.2, 0.35])
    net = ReLUNet([w, [[1.1, 0.0, -0.6]]], [b, [0.05]])
    assert status(net, (-3.0, 3.0)) == 0
    c = count_pieces(net, (-3.0, 3.0), method="certified")
    assert same(c, count_pieces(net, (-3.0, 3.0), method="rational"))
    assert c.regions == c.pieces + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_construction_perturbed_by_1e_12_has_more_pieces_than_the_tolerances_see(seed):
    """sawtooth(8) with weights and biases moved by ~1e-12: its coincident breakpoints
    split. The certified count (double-double) equals the rational one; the tolerance
    counter merges the split breakpoints and reports nearly 2^8."""
    rng = np.random.default_rng(seed)
    base = sawtooth(8)
    net = ReLUNet([w * (1 + 1e-12 * rng.standard_normal(w.shape)) for w in base.weights],
                  [v + 1e-12 * rng.standard_normal(v.shape) for v in base.biases])
    assert status(net, (0.0, 1.0)) == 1 and status_dd(net, (0.0, 1.0)) == 0
    c = count_pieces(net, (0.0, 1.0), method="certified")
    assert same(c, count_pieces(net, (0.0, 1.0), method="rational"))
    assert c.pieces > count_pieces(net, (0.0, 1.0), method="tolerance").pieces


def test_exact_is_the_certified_counter():
    """The default method is the certified one: on the perturbed construction, where the
    tolerance counter is wrong, "exact", "certified" and the batch all give the rational
    count."""
    rng = np.random.default_rng(5)
    base = sawtooth(6)
    net = ReLUNet([w * (1 + 1e-12 * rng.standard_normal(w.shape)) for w in base.weights],
                  [v + 1e-12 * rng.standard_normal(v.shape) for v in base.biases])
    r = count_pieces(net, (0.0, 1.0), method="rational")
    assert not same(count_pieces(net, (0.0, 1.0), method="tolerance"), r)
    for c in (count_pieces(net, (0.0, 1.0)), count_pieces(net, (0.0, 1.0), method="certified")):
        assert same(c, r)
    p, q = count_pieces_batch([net, sawtooth(3)], (0.0, 1.0))
    assert (p[0], q[0]) == (r.pieces, r.regions) and p[1] == 8


@pytest.mark.parametrize("seed", [0, 1])
def test_undecided_slope_pair_is_decided_alone_without_rationals(seed):
    """Yarotsky's construction moved by one ulp: both sweeps decide its regions, but one
    pair of neighbouring slopes is equal in exact arithmetic and inexact in floats. That
    pair alone is decided by exact slopes inside each region; the count equals the
    rational one (and is not the tolerance counter's)."""
    from pieces.count._beyond_float64 import exact_segments as _exact_segments
    from pieces.init import initial_net

    net = initial_net("yarotsky_square", depth=6, seed=seed, perturb=2.0**-53)
    from pieces.count._certified_dd import sweep_dd

    wt, bf, sizes, *_ = _count_cpu.pack([net])
    *_, slope, serr, structural, st_ = sweep_dd(wt, bf, sizes, 0.0, 1.0, 64)
    assert st_ == 0 and _certified_cpu.open_pairs(slope, serr, structural)[1].any()
    found = _exact_segments(net, 0.0, 1.0)
    assert found is not None
    r = count_pieces(net, (0.0, 1.0), method="rational")
    assert (int(found[1].sum()), found[0].size - 1) == (r.pieces, r.regions)
    assert same(count_pieces(net, (0.0, 1.0)), r)


def test_open_slope_pairs_are_decided_from_the_float64_segments_already_swept():
    """A net whose float64 sweep decides every region but leaves neighbouring slopes
    open (status 2): ``count_pieces`` decides those pairs from the segments it has,
    without sweeping again, and equals the rational count; a net whose sweep is
    undecided (status 1) goes straight to double-double."""
    from pieces.count._chunked import _certified_float64
    from pieces.count._beyond_float64 import exact_segments as _exact_segments

    net = ReLUNet([[[-0.5], [0.3], [-0.7]], [[0.7, -0.7, -0.5], [0.1, 1.0, 0.7], [-0.7, -0.5, -0.5]],
                   [[0.7, 0.5, -0.7]]], [[-1.0, 1.0, 0.3], [1.0, -0.7, -0.5], [1.0]])
    iv = (-1.0, 1.0)
    assert status(net, iv) == 2
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    *_, st_, segs = _certified_float64(wt, bf, sizes, *iv)
    assert st_ == 2 and segs[0].size == segs[2].size + 1
    kept, swept = _exact_segments(net, *iv, segs), _exact_segments(net, *iv)
    assert np.array_equal(kept[0], swept[0]) and np.array_equal(kept[1], swept[1])
    assert same(count_pieces(net, iv), count_pieces(net, iv, method="rational"))
    assert count_pieces_batch([net], iv)[0][0] == count_pieces(net, iv, method="rational").pieces
    base_w, base_b = 0.7, -0.2345678  # two crossings one ulp apart: the sweep is undecided
    close = ReLUNet([np.array([[base_w], [3.7 * base_w]]), [[1.0, 1.0]]], [np.array([base_b, 3.7 * base_b]), [0.0]])
    assert status(close, iv) == 1 and _certified_float64(*_count_cpu.pack([close])[:3], *iv)[4] is False
    assert same(count_pieces(close, iv), count_pieces(close, iv, method="rational"))
    from pieces.pwl import draw_measures  # the perturbation draws take the same two paths

    for n in (net, close):
        wt, bf, sizes, *_ = _count_cpu.pack([n])
        drawn = draw_measures(wt, bf, sizes, np.ones(int(sizes[1:-1].sum())), *iv)
        r = count_pieces(n, iv, method="rational")
        assert drawn[:2] == (r.pieces, r.regions)
