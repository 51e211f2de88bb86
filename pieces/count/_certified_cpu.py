"""Numba CPU kernels of the certified piece counter: every decision proved in float64.

The sweep is the exact counter's (``_count_cpu``): layer by layer, each segment's
preactivations are affine in x and split it where they cross zero. Here every float64
quantity carries a rigorous bound on its distance to the exact value that the same
algorithm computes in rational arithmetic (``_rational``), and every decision is taken
only when the bound proves it:

- the sign of a preactivation at a segment end (which also says whether a crossing lies
  strictly inside: exactly when the signs at both ends are strictly opposite);
- whether two crossings are one point;
- whether neighbouring output slopes are equal.

Bounds: a sum of n products computed in float64 is within ``gamma_{n+1} * sum |w| |a|``
of the exact sum of the same floats (Higham, Thm 3.1); the inputs' own errors pass
through ``|W|``. So a neuron's slope A and intercept B carry bounds ``eA``, ``eB``, and
its value at an end x (error ``ex``) is within ``eA |x| + eB + (|s| + eA) ex`` plus the
rounding of ``s*x + t``. A crossing ``c = -t/s`` is within ``(eA |c| + eB)/(|s| - eA)``
plus its rounding. Where the bounds are zero (dyadic constructions: every term a
multiple of 2**q and every partial sum below 2**(q + 53), checked per segment from the
grains of weights and values), decisions are exact: the sign of ``s*x + t`` by one
fused multiply-add (exact in sign for factors in [2**-450, 2**450]), equality of
crossings and of slopes by ``==``. A segment whose sums were proved exact passes to its
children bounds on their inputs' grains and sizes (the sums' grains are at least
``gW + ga``, their sizes at most ``Cw * MA``), so a child checks those first and reads
its own values' grains only where they do not prove its sums exact.

The modules: this one holds the counts (per net, per batch, the pieces from the
segments); the sweep is ``_certified_sweep`` (the loop over layers and segments), run in
named stages: a segment's sums, bounds and grains in ``_certified_sums``, its signs,
crossings, boundaries and children in ``_certified_stages``; its buffers are
``_certified_workspace``, the decisions and bounds ``_certified_bounds``, the local
double-double recomputation ``_certified_refresh``. The stages are inlined by Numba
(``inline="always"``) and the sweep compiles with :class:`pieces._jit.staged.StagedCompiler`,
whose copy propagation removes the atomic reference counts that inlining otherwise
leaves on every stage's array arguments, per segment (without it the split sweep ran
3.5-10x slower: sawtooth(16) 6.5 -> 66 ms).

Speed (``benchmarks/bench_count.py`` measures it against the tolerance counter): a
segment's four sums (slopes, intercepts and their bounds) run in a register-blocked FMA
kernel over its live inputs (``_segment_sums``; any summation order is covered by the
bound); the end signs are first tested in a loop without branches, and only the neurons
it leaves open take the full test; the children's rows are written without branches,
every load before its select (a branch, or a load in one arm, becomes AVX2's masked
loads and stores, microcoded on AMD); narrow exact layers (constructions) keep their
sums in registers. Arrays grow between runs of the segment loop, never inside it (an
array variable reassigned in a Numba loop costs two atomic reference counts per pass).

Equal slopes of neighbouring segments are also decided by structure, with no bound:
each segment keeps the set of neurons in which its exact slopes and intercepts may
differ from its left neighbour's (a 64-bit mask, for layers up to 64 wide). Siblings
differ in the neurons that switch between them; the next layer's maps can differ only
in the neurons that those reach through nonzero weights, and its rows only in those
that are on in either segment or switch. Where the output is reached by none, the two
segments are one affine piece: a switch behind a dead neuron or a zero weight.

Bounds grow with depth as ``sum |W||a| / |W a|`` per layer, so deep wide nets leave
decisions open more often (see ``benchmarks/bench_count.py``). When a bound cannot
decide, the segment's input maps are recomputed from the weights in double-double
(:func:`_refresh_rows`) and the segment is decided again; open equalities of output
slopes likewise (:func:`_output_slope_dd`). Only where that cannot decide either does
the kernel return status 1, and the caller sweeps the net again in double-double
(``_certified_dd``), then in rationals (``count.py``).
"""

import numpy as np
from numba import njit, prange

from ._certified_bounds import AMBIGUOUS, _pair_decision, exact_sign, sign_beyond
from ._count_cpu import breakpoints_of
from ._certified_sweep import sweep
from ._certified_workspace import new_workspace

__all__ = ["sweep", "merge_pieces", "open_pairs", "segments", "count_one", "count_in", "count_batch", "exact_sign",
           "sign_beyond", "AMBIGUOUS", "new_workspace"]


@njit(cache=True)
def merge_pieces(slope, serr, same):
    """``(new, status)``: ``new[k]`` is True where segment k starts a new affine piece.

    Neighbouring slopes are equal when ``same`` says so (the segment's exact affine
    map is its left neighbour's by structure: see ``sweep``) or both are exact and
    equal, different when they differ by more than their error bounds; otherwise
    ``status`` is 1 (undecided; :func:`open_pairs` says which pairs).
    """
    new, undecided = open_pairs(slope, serr, same)
    for k in range(undecided.size):
        if undecided[k]:
            return new, 1
    return new, 0


@njit(cache=True)
def open_pairs(slope, serr, same):
    """``(new, open)``: as :func:`merge_pieces`, with ``open[k]`` True (and ``new[k]``
    False) where the equality of the slopes of segments k-1 and k is undecided; the
    caller decides those pairs exactly."""
    n = slope.size
    new = np.zeros(n, np.bool_)
    undecided = np.zeros(n, np.bool_)
    if n > 0:
        new[0] = True
    for k in range(1, n):
        d = _pair_decision(slope, serr, same, k)
        if d == AMBIGUOUS:
            undecided[k] = True
        else:
            new[k] = d == 1
    return new, undecided


@njit(cache=True)
def segments(wt, bf, sizes, a, b, capacity):
    """``(status, xs, ex, slope, serr, same)`` of the sweep alone: the segment ends and
    their error bounds, per segment the output's slope, its bound and whether it is
    structurally its left neighbour's; ``status`` 1 (and empty arrays) where a decision
    of the sweep could not be certified."""
    ws = new_workspace(capacity, sizes.max())
    nseg, ws, status = sweep(wt, bf, sizes, a, b, ws)
    if status != 0:
        z = np.empty(0)
        return status, z, z, z, z, np.empty(0, np.bool_)
    return (0, ws[0][: nseg + 1].copy(), ws[1][: nseg + 1].copy(), ws[14][:nseg].copy(), ws[15][:nseg].copy(),
            ws[24][:nseg].copy())


@njit(cache=True)
def count_one(wt, bf, sizes, a, b, capacity):
    """``(pieces, regions, breakpoints, status)`` of one packed net; ``status`` 1 means
    a decision of the sweep was undecided, 2 that only the equality of some
    neighbouring slopes was (the segments are right: :func:`open_pairs`); the counts are
    then 0 and the caller decides the net exactly."""
    p, r, bps, status, _, _ = count_in(wt, bf, sizes, a, b, new_workspace(capacity, sizes.max()))
    return p, r, bps, status


@njit(cache=True, nogil=True)
def count_in(wt, bf, sizes, a, b, ws):
    """:func:`count_one` in the workspace ``ws`` (see :func:`new_workspace`), which it
    returns, grown where it had to: a caller that keeps it counts the next net without
    allocating (fresh pages cost about a sixth of a count). Returns
    ``(pieces, regions, breakpoints, status, ws, nseg)``; where ``status`` is 2, the
    sweep's ``nseg`` segments are in ``ws`` (ends ``ws[0]``, their bounds ``ws[1]``,
    slopes ``ws[14]``, bounds ``ws[15]``, structural equality ``ws[24]``)."""
    nseg, ws, status = sweep(wt, bf, sizes, a, b, ws)
    if status == 0:
        new, status = merge_pieces(ws[14][:nseg], ws[15][:nseg], ws[24][:nseg])
        status *= 2
    if status != 0:
        return 0, 0, np.empty(0), status, ws, nseg
    bps = breakpoints_of(new, ws[0][: nseg + 1])
    return bps.size + 1, nseg, bps, 0, ws, nseg


@njit(cache=True, parallel=True)
def count_batch(wt, bf, sizes, w_off, b_off, s_off, a, b, capacity, n_workers, limit=0):
    """``(pieces, regions, status)`` of every net of a packed batch, one workspace per
    worker as in ``_count_cpu.count_batch``; ``status[i]`` is nonzero where net i is
    undecided in float64, as :func:`count_one` says, or 3 where a layer of it needs
    more than ``limit`` segments (0: no limit); its counts are then 0 and the caller
    decides it (in chunks, for status 3)."""
    n = w_off.size - 1
    pieces = np.zeros(n, np.int64)
    regions = np.zeros(n, np.int64)
    status = np.zeros(n, np.int64)
    wmax = sizes.max() if sizes.size else 1
    for r in prange(n_workers):
        ws = new_workspace(capacity, wmax)
        ws[25][2] = limit
        for i in range(r, n, n_workers):
            nseg, ws, st = sweep(wt[w_off[i] : w_off[i + 1]], bf[b_off[i] : b_off[i + 1]],
                                 sizes[s_off[i] : s_off[i + 1]], a, b, ws)
            if st == 0:
                new, st = merge_pieces(ws[14][:nseg], ws[15][:nseg], ws[24][:nseg])
                st *= 2
            if st == 0:
                pieces[i] = breakpoints_of(new, ws[0][: nseg + 1]).size + 1
                regions[i] = nseg
            status[i] = st
    return pieces, regions, status
