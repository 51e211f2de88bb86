"""The counter in rational arithmetic: the test oracle of ``method="exact"``, and its last
fallback.

Floats are dyadic rationals, so ``Fraction(w)`` is the weight exactly and every step
below is exact: no tolerance anywhere. Regions are counted independently of pieces, by
comparing the full activation pattern of neighbouring segments. Infinite interval ends
are ``None`` internally.
"""

import functools
from fractions import Fraction

import numpy as np

__all__ = ["count_rational", "rational_region_ends", "slope_at"]


def _interior(lo, hi):
    if lo is None and hi is None:
        return Fraction(0)
    if lo is None:
        return hi - max(Fraction(1), abs(hi))
    if hi is None:
        return lo + max(Fraction(1), abs(lo))
    return (lo + hi) / 2


def _fractions(weights, biases):
    """The weight matrices and bias vectors as nested lists of exact Fractions."""
    return ([[[Fraction(float(v)) for v in row] for row in w] for w in weights],
            [[Fraction(float(v)) for v in bias] for bias in biases])


def _inside(c, lo, hi):
    return (lo is None or c > lo) and (hi is None or c < hi)


def count_rational(net, a, b):
    """``(pieces, regions, breakpoints)`` of ``net`` on [a, b], exactly.

    ``breakpoints`` is a list of ``Fraction``; ``a`` and ``b`` may be ``±inf``.
    """
    segs, affine = _segments(net, a, b)
    regions = 1 + sum(1 for p, q in zip(segs[:-1], segs[1:]) if p[4] != q[4])
    breakpoints = [segs[k][0] for k in range(1, len(segs)) if affine[k] != affine[k - 1]]
    return len(breakpoints) + 1, regions, breakpoints


def rational_region_ends(net, a, b):
    """The ends of the activation regions of ``net`` on [a, b] (a list of Fraction,
    ``None`` for an infinite end), exactly."""
    segs, _ = _segments(net, a, b)
    ends = [segs[0][0]]
    for p, q in zip(segs[:-1], segs[1:]):
        if p[4] != q[4]:
            ends.append(q[0])
    return ends + [segs[-1][1]]


def _segments(net, a, b):
    """The segments ``(lo, hi, A, B, pattern)`` of the sweep and the output's
    ``(slope, intercept)`` on each (shared: callers must not change them).

    The last few nets' sweeps are kept (keyed by their parameters' bytes): a study
    counts a trained net, then takes its regions for the sup error and for the input
    derivatives, and where floats cannot decide, each was a sweep of seconds.
    """
    return _segments_of(_params_key(net), len(net._weights), float(a), float(b))


@functools.lru_cache(maxsize=4)
def _segments_of(params, n_layers, a, b):
    lo0 = None if a == float("-inf") else Fraction(a)
    hi0 = None if b == float("inf") else Fraction(b)
    arrays = _arrays(params)
    Ws, Bs = _fractions(arrays[:n_layers], arrays[n_layers:])
    # segment: (lo, hi, A, B, pattern)
    segs = [(lo0, hi0, [Fraction(1)], [Fraction(0)], ())]
    for W, bias in zip(Ws[:-1], Bs[:-1]):
        new = []
        for lo, hi, A, B, pat in segs:
            s = [sum((w * x for w, x in zip(row, A)), Fraction(0)) for row in W]
            t = [sum((w * x for w, x in zip(row, B)), Fraction(0)) + bj for row, bj in zip(W, bias)]
            cuts = sorted({-tj / sj for sj, tj in zip(s, t) if sj != 0 and _inside(-tj / sj, lo, hi)})
            ends = [lo] + cuts + [hi]
            for u, v in zip(ends[:-1], ends[1:]):
                x = _interior(u, v)
                act = [sj * x + tj > 0 for sj, tj in zip(s, t)]
                nA = [sj if on else Fraction(0) for sj, on in zip(s, act)]
                nB = [tj if on else Fraction(0) for tj, on in zip(t, act)]
                new.append((u, v, nA, nB, pat + tuple(act)))
        segs = new
    W, bias = Ws[-1], Bs[-1]
    affine = []
    for lo, hi, A, B, pat in segs:
        s = sum((w * x for w, x in zip(W[0], A)), Fraction(0))
        t = sum((w * x for w, x in zip(W[0], B)), Fraction(0)) + bias[0]
        affine.append((s, t))
    return segs, affine


def slope_at(net, x):
    """The exact slope of ``net`` at the rational ``x``, where x is no crossing of any
    neuron (inside an activation region): forward-mode differentiation, exact.

    Where ``x`` is dyadic (a float, or a Fraction whose denominator is a power of two,
    as the midpoints of float ends are), in integers scaled by one power of two per
    vector (:func:`_dyadic_slope`): floats are dyadic, so no step needs a gcd, and it
    is ~10x faster than Fractions (Yarotsky depth 12: 0.34 against 3.4 ms); elsewhere in Fractions (:func:`_slope_fractions`).
    Both return the slope as a Fraction.
    """
    num, den = Fraction(x).as_integer_ratio()
    if den & (den - 1):
        return _slope_fractions(net, x)
    layers = _dyadic_layers(_params_key(net), len(net._weights))
    return _dyadic_slope(layers, num, -(den.bit_length() - 1))


def _slope_fractions(net, x):
    """:func:`slope_at` in Fractions (any rational x; the oracle of the dyadic one)."""
    h, dh = [Fraction(x)], [Fraction(1)]
    Ws, Bs = _fractions(net._weights, net._biases)
    for W, bias in zip(Ws[:-1], Bs[:-1]):
        z = [sum((w * v for w, v in zip(row, h)), Fraction(0)) + bj for row, bj in zip(W, bias)]
        dz = [sum((w * v for w, v in zip(row, dh)), Fraction(0)) for row in W]
        h = [zj if zj > 0 else Fraction(0) for zj in z]
        dh = [dj if zj > 0 else Fraction(0) for zj, dj in zip(z, dz)]
    return sum((w * v for w, v in zip(Ws[-1][0], dh)), Fraction(0))


def _params_key(net):
    """The net's weights and biases as a hashable key: ``(shape, bytes)`` per array."""
    return tuple((w.shape, w.tobytes()) for w in (np.ascontiguousarray(v, dtype=np.float64)
                                                  for v in (*net._weights, *net._biases)))


def _arrays(params):
    """The float64 arrays of a :func:`_params_key`."""
    return [np.frombuffer(buf, np.float64).reshape(shape) for shape, buf in params]


def _dyadic_array(a):
    """``(M, e)``: integers M (nested lists, the shape of ``a``) with ``a == M * 2**e``
    exactly, e the lowest exponent over the nonzero entries."""
    frac, exp = np.frexp(a)  # a = frac * 2**exp, |frac| in [0.5, 1): frac * 2**53 is an integer
    mant = (frac * 2.0**53).astype(np.int64)
    nz = mant != 0
    e = int((exp[nz] - 53).min()) if nz.any() else 0
    shift = np.where(nz, exp - 53 - e, 0)
    M = [[int(m) << int(k) for m, k in zip(mr, kr)] for mr, kr in zip(mant.reshape(-1, a.shape[-1]),
                                                                     shift.reshape(-1, a.shape[-1]))]
    return (M if a.ndim == 2 else M[0]), e


@functools.lru_cache(maxsize=8)
def _dyadic_layers(params, n_layers):
    arrays = _arrays(params)
    return [(_dyadic_array(w), _dyadic_array(b)) for w, b in zip(arrays[:n_layers], arrays[n_layers:])]


def _dyadic_slope(layers, xm, xe):
    """The exact slope at x = xm * 2**xe: values and slopes are integer vectors with one
    exponent each, ``h = H * 2**eh``, ``dh = D * 2**ed``."""
    H, eh = [xm], xe
    D, ed = [1], 0
    for (W, ew), (bias, eb) in layers[:-1]:
        ez = min(ew + eh, eb)
        su = ew + eh - ez
        sb = eb - ez
        Z = [(sum(w * v for w, v in zip(row, H)) << su) + (bj << sb) for row, bj in zip(W, bias)]
        dZ = [sum(w * v for w, v in zip(row, D)) for row in W]
        H = [zj if zj > 0 else 0 for zj in Z]
        D = [dj if zj > 0 else 0 for zj, dj in zip(Z, dZ)]
        eh, ed = ez, ew + ed
    (W, ew), _ = layers[-1]
    n = sum(w * v for w, v in zip(W[0], D))
    e = ew + ed
    return Fraction(n << e) if e >= 0 else Fraction(n, 1 << -e)
