"""The certified sweep's workspace: its buffers, kept across the nets of a batch, and how
they grow (see :mod:`pieces.count._certified_cpu`)."""

import numpy as np
from numba import njit

__all__ = ["new_workspace", "_grow"]


@njit(cache=True)
def new_workspace(capacity, wmax):
    """Buffers of the sweep, reused across the nets of a batch.

    Two segment sets, each: the ends and their error bounds; per segment its flags
    (_FLAT: every slope is exactly 0; _EXACT: every A and B is exact, and the error
    bounds are not stored; _KNOWN: its DIFF mask is valid); per segment and neuron A, B
    and the error bounds of A and B. Then the output's slope, its error bound and
    intercept per segment, per-neuron scratch, and (both sets) per segment the bitmasks
    DIFF (the neurons in which its exact A, B may differ from its left neighbour's) and
    ACT (its active neurons), and per input neuron the bitmask of the neurons its
    weights reach; per segment whether its output is structurally its left
    neighbour's (SAME); last, how many segments had their input maps, and how many
    output slopes, recomputed in double-double by the last sweep (see ``sweep``), and
    the most segments a layer may hold (0: no limit; a chunked count sets it).
    """
    capacity = max(capacity, 1)
    wmax = max(wmax, 1)
    return (
        np.empty(capacity + 1), np.empty(capacity + 1), np.empty(capacity, np.int8),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity + 1), np.empty(capacity + 1), np.empty(capacity, np.int8),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity), np.empty(capacity), np.empty(capacity),
        np.empty((8, wmax)), np.empty((6, wmax), np.int64),
        np.empty(capacity, np.uint64), np.empty(capacity, np.uint64),
        np.empty(capacity, np.uint64), np.empty(capacity, np.uint64), np.empty(wmax, np.uint64),
        np.empty(capacity, np.bool_), np.zeros(3, np.int64),
    )


@njit(cache=True)
def _grow2(n_keep, grown, arr):
    o = np.empty((grown, arr.shape[1]))
    o[:n_keep] = arr[:n_keep]
    return o


@njit(cache=True)
def _grow(n_keep, grown, xs, ex, F, A, B, EA, EB, DIFF, ACT):
    out_x = np.empty(grown + 1)
    out_x[:n_keep] = xs[:n_keep]
    out_ex = np.empty(grown + 1)
    out_ex[:n_keep] = ex[:n_keep]
    out_F = np.empty(grown, np.int8)
    out_F[:n_keep] = F[:n_keep]
    out_D = np.empty(grown, np.uint64)
    out_D[:n_keep] = DIFF[:n_keep]
    out_act = np.empty(grown, np.uint64)
    out_act[:n_keep] = ACT[:n_keep]
    return (out_x, out_ex, out_F, _grow2(n_keep, grown, A), _grow2(n_keep, grown, B),
            _grow2(n_keep, grown, EA), _grow2(n_keep, grown, EB), out_D, out_act)
