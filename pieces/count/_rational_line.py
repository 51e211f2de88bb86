"""The rational fold of a net from R^d to R^k along a line: the oracle of segment and
multi-output counts.

The line t -> x0 + t (x1 - x0) is folded into the first layer in Fractions, W (x1 - x0)
and W x0 + b exactly, from the floats of the net and the ends; then the sweep of
``_rational`` runs layer by layer. A piece is a maximal interval on which every output
is affine; each output's own pieces are counted too.

Examples
--------
>>> from pieces import ReLUNet
>>> net = ReLUNet([[[1.0, 1.0], [1.0, -1.0]], [[1.0, 0.0], [0.0, 1.0]]], [[0.0, 0.0], [0.0, 0.0]])
>>> p, r, bps, per = count_line_rational(net, [-1.0, 0.0], [1.0, 0.5], 0, 1)
>>> p, r, per, [str(x) for x in bps]
(3, 3, [2, 2], ['2/5', '2/3'])
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._rational import _inside, _interior

__all__ = ["count_line_rational"]


def _frac(a):
    return [Fraction(float(v)) for v in np.asarray(a, dtype=np.float64).reshape(-1)]


def count_line_rational(net, x0, x1, a, b):
    """``(pieces, regions, breakpoints, per_output)`` of t -> net(x0 + t (x1 - x0)) on
    [a, b] (``±inf`` allowed), exactly; breakpoints as Fractions of t.

    For a net from R, ``x0 = [0]`` and ``x1 = [1]`` give the net itself.
    """
    X0, X1 = _frac(x0), _frac(x1)
    V = [u1 - u0 for u0, u1 in zip(X0, X1)]
    Ws = [[[Fraction(float(v)) for v in row] for row in w] for w in net.weights]
    Bs = [[Fraction(float(v)) for v in bias] for bias in net.biases]
    lo0 = None if a == float("-inf") else Fraction(a)
    hi0 = None if b == float("inf") else Fraction(b)
    # the first layer's preactivations along the line: s t + u
    s1 = [sum((w * v for w, v in zip(row, V)), Fraction(0)) for row in Ws[0]]
    t1 = [sum((w * v for w, v in zip(row, X0)), Fraction(0)) + bj for row, bj in zip(Ws[0], Bs[0])]
    segs = _first_layer(s1, t1, lo0, hi0, len(Ws) == 1)
    for W, bias in zip(Ws[1:-1], Bs[1:-1]):
        segs = _layer(segs, W, bias)
    if len(Ws) == 1:  # an affine net: its one "segment" is the output itself
        affine = [tuple(zip(s1, t1))]
        segs = [(lo0, hi0, None, None, ())]
    else:
        W, bias = Ws[-1], Bs[-1]
        affine = [tuple((sum((w * x for w, x in zip(row, A)), Fraction(0)),
                         sum((w * x for w, x in zip(row, B)), Fraction(0)) + bj) for row, bj in zip(W, bias))
                  for _, _, A, B, _ in segs]
    regions = 1 + sum(1 for p, q in zip(segs[:-1], segs[1:]) if p[4] != q[4])
    bps = [segs[k][0] for k in range(1, len(segs)) if affine[k] != affine[k - 1]]
    per = [1 + sum(1 for k in range(1, len(segs)) if affine[k][j] != affine[k - 1][j])
           for j in range(len(affine[0]))]
    return len(bps) + 1, regions, bps, per


def _split(s, t, lo, hi, A0, B0, pat):
    """The children of the segment (lo, hi) at the crossings of the rows s t + u."""
    cuts = sorted({-tj / sj for sj, tj in zip(s, t) if sj != 0 and _inside(-tj / sj, lo, hi)})
    ends = [lo] + cuts + [hi]
    out = []
    for u, v in zip(ends[:-1], ends[1:]):
        x = _interior(u, v)
        act = [sj * x + tj > 0 for sj, tj in zip(s, t)]
        out.append((u, v, [sj if on else Fraction(0) for sj, on in zip(s, act)],
                    [tj if on else Fraction(0) for tj, on in zip(t, act)], pat + tuple(act)))
    return out


def _first_layer(s, t, lo, hi, affine):
    return [] if affine else _split(s, t, lo, hi, None, None, ())


def _layer(segs, W, bias):
    new = []
    for lo, hi, A, B, pat in segs:
        s = [sum((w * x for w, x in zip(row, A)), Fraction(0)) for row in W]
        t = [sum((w * x for w, x in zip(row, B)), Fraction(0)) + bj for row, bj in zip(W, bias)]
        new += _split(s, t, lo, hi, A, B, pat)
    return new
