"""The forward and backward passes of the CPU training kernels, emulated (every result
through ``rnd``) and native (fp32, fp64: the register-blocked products of
:mod:`pieces.train._gemm_cpu`), and their workspace. See :mod:`pieces.train._train_cpu` for the
layout and the loss.
"""

import numpy as np
from numba import njit

from ._gemm_cpu import FUSED, INIT_ROW, INIT_ZERO, MASK, RELU, gemm, transpose
from ..precision import mul, rnd

__all__ = ["_layout", "_forward", "_backward", "_workspace"]

#: Native precisions fuse each multiply-add of a sum into one FMA in layers at least
#: this wide (with batches at least this large); narrower layers round the product and
#: the sum, as the emulated loops do.
_GEMM_MIN = 8


@njit(cache=True, error_model="numpy")
def _layout(sizes):
    n = sizes.size - 1
    w_off = np.empty(n, np.int64)
    b_off = np.empty(n, np.int64)
    h_off = np.empty(n + 1, np.int64)
    p = 0
    h = 0
    for l in range(n):
        w_off[l] = p
        p += sizes[l] * sizes[l + 1]
        b_off[l] = p
        p += sizes[l + 1]
    for l in range(n + 1):
        h_off[l] = h
        h += sizes[l]
    return w_off, b_off, h_off, h


@njit(cache=True, error_model="numpy")
def _forward(theta, sizes, xb, yb, H, r, rs):
    """Forward pass of the batch ``xb``; activations into ``H`` (row: a neuron of some
    layer, column: a sample), residuals into ``r``; returns the loss.

    Preactivations are summed in layer order, ``b_j + w_j0 h_0 + w_j1 h_1 + ...``, each
    product and sum rounded. Loops over samples are innermost, so they vectorise.
    """
    if len(rs) == 0:
        return _forward_native(theta, sizes, xb, yb, H, r)
    nb = xb.size
    n_layers = sizes.size - 1
    w_off, b_off, h_off, h_tot = _layout(sizes)
    zero = theta[0] - theta[0]
    for n in range(nb):
        H[0, n] = xb[n]
    for l in range(n_layers):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        Wt = theta[w_off[l] : w_off[l] + n_in * n_out].reshape((n_in, n_out))
        i0 = h_off[l]
        for j in range(n_out):
            row = h_off[l + 1] + j
            bj = theta[b_off[l] + j]
            for n in range(nb):
                H[row, n] = bj
            # one term per pass: the sum goes through memory, so the samples' roundings
            # are independent and pipeline; carrying z through several terms made every
            # term wait for the previous rounding (slower with F16C's latency)
            for i in range(n_in):
                w = Wt[i, j]
                h = H[i0 + i]
                z = H[row]
                for n in range(nb):
                    z[n] = rnd(z[n] + mul(w, h[n], rs), rs)
            if l < n_layers - 1:
                for n in range(nb):
                    z = H[row, n]
                    H[row, n] = z if z > zero else zero
    loss = zero
    out = h_off[n_layers]
    for n in range(nb):
        rn = rnd(H[out, n] - yb[n], rs)
        r[n] = rn
        loss = rnd(loss + mul(rn, rn, rs), rs)
    return rnd(loss / nb, rs)


@njit(cache=True, error_model="numpy")
def _backward(theta, sizes, H, r, G, D, E, Dt, rs):
    """Gradient of the loss into ``G`` (same layout as theta). ``D``, ``E``: (wmax, nb)
    scratch for the deltas; ``Dt``: (nb, wmax) for the deltas sample-major."""
    if len(rs) == 0:
        _backward_native(theta, sizes, H, r, G, D, E, Dt)
        return
    nb = r.size
    n_layers = sizes.size - 1
    w_off, b_off, h_off, h_tot = _layout(sizes)
    zero = theta[0] - theta[0]
    # dL/df = 2 r / N
    for n in range(nb):
        D[0, n] = rnd((r[n] + r[n]) / nb, rs)
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        i0 = h_off[l]
        Gw = G[w_off[l] : w_off[l] + n_in * n_out].reshape((n_in, n_out))
        for j in range(n_out):
            for n in range(nb):
                Dt[n, j] = D[j, n]
        # sums over the samples, in sample order; the inner loops run over j
        Gb = G[b_off[l] : b_off[l] + n_out]
        for j in range(n_out):
            Gw[:, j] = zero
            Gb[j] = zero
        for n in range(nb):
            for j in range(n_out):
                Gb[j] = rnd(Gb[j] + Dt[n, j], rs)
            for i in range(n_in):
                h = H[i0 + i, n]
                if h == zero:
                    continue  # adds exactly nothing
                for j in range(n_out):
                    Gw[i, j] = rnd(Gw[i, j] + mul(h, Dt[n, j], rs), rs)
        if l == 0:
            break
        Wt = theta[w_off[l] : w_off[l] + n_in * n_out].reshape((n_in, n_out))
        for i in range(n_in):
            for n in range(nb):
                E[i, n] = zero
            Ei = E[i]
            for j in range(n_out):  # one term per pass, as in the forward pass
                w = Wt[i, j]
                d = D[j]
                for n in range(nb):
                    Ei[n] = rnd(Ei[n] + mul(w, d[n], rs), rs)
            for n in range(nb):  # ReLU'(z) = 1 where z > 0, else 0
                E[i, n] = E[i, n] if H[i0 + i, n] > zero else zero
        D, E = E, D


@njit(cache=True, error_model="numpy")
def _forward_native(theta, sizes, xb, yb, H, r):
    """:func:`_forward` in a native precision, through the products of ``_gemm_cpu``.

    Each preactivation is the chain ``b_j + w_0j h_0 + w_1j h_1 + ...`` in layer order,
    as in the emulated loops; layers at least ``_GEMM_MIN`` wide (with batches as
    large) fuse each step into one FMA, narrower ones round product and sum.
    """
    nb = xb.size
    n_layers = sizes.size - 1
    w_off, b_off, h_off, h_tot = _layout(sizes)
    zero = theta[0] - theta[0]
    Hf = H.reshape(H.size)
    H[0] = xb
    for l in range(n_layers):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        # Z[j, n] = b_j + sum_i W[i, j] H[i, n], W = theta's (n_in, n_out) block
        mode = INIT_ROW | (RELU if l < n_layers - 1 else 0) | _fused(n_in, nb)
        gemm(theta, w_off[l], 1, n_out, Hf, h_off[l] * nb, nb, Hf, h_off[l + 1] * nb, nb, n_out, nb, n_in,
             theta, b_off[l], 1, mode)
    loss = zero
    out = h_off[n_layers]
    for n in range(nb):
        rn = H[out, n] - yb[n]
        r[n] = rn
        loss = loss + rn * rn
    return loss / nb


@njit(cache=True, error_model="numpy")
def _backward_native(theta, sizes, H, r, G, D, E, Dt):
    """:func:`_backward` in a native precision, through the products of ``_gemm_cpu``.

    The sums are the emulated loops': bias and weight gradients over the samples in
    order, the deltas over the next layer's neurons in order, each step fused into an
    FMA where the layer is at least ``_GEMM_MIN`` wide. (The loops skip a zero
    activation, which adds exactly nothing to a finite sum; the products do not.)
    """
    nb = r.size
    n_layers = sizes.size - 1
    w_off, b_off, h_off, h_tot = _layout(sizes)
    wmax = Dt.shape[1]
    Hf = H.reshape(H.size)
    Dtf = Dt.reshape(Dt.size)
    one = np.ones(1, theta.dtype)
    for n in range(nb):
        D[0, n] = (r[n] + r[n]) / nb
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        fused = _fused(n_in, nb)
        transpose(D.reshape(D.size), 0, nb, Dtf, 0, wmax, n_out, nb)  # D sample-major
        # Gb[j] = sum_n D[n, j] (as 1 * D[n, j]: exact, so an FMA adds it unchanged)
        gemm(one, 0, 0, 0, Dtf, 0, wmax, G, b_off[l], 0, 1, n_out, nb, G, 0, 0, INIT_ZERO | fused)
        # Gw[i, j] = sum_n H[i, n] D[n, j]
        gemm(Hf, h_off[l] * nb, nb, 1, Dtf, 0, wmax, G, w_off[l], n_out, n_in, n_out, nb, G, 0, 0,
             INIT_ZERO | fused)
        if l == 0:
            break
        # E[i, n] = sum_j W[i, j] D[j, n], zeroed where the layer's activation is not > 0
        gemm(theta, w_off[l], n_out, 1, D.reshape(D.size), 0, nb, E.reshape(E.size), 0, nb, n_in, nb, n_out,
             Hf, h_off[l] * nb, nb, INIT_ZERO | MASK | fused)
        D, E = E, D


@njit(cache=True, inline="always")
def _fused(n_in, nb):
    return FUSED if n_in >= _GEMM_MIN and nb >= _GEMM_MIN else 0


@njit(cache=True, error_model="numpy")
def _workspace(theta, sizes, nb):
    w_off, b_off, h_off, h_tot = _layout(sizes)
    wmax = sizes.max()
    dt = theta.dtype
    return (
        np.empty((h_tot, nb), dt), np.empty(nb, dt), np.empty(theta.size, dt),
        np.empty((wmax, nb), dt), np.empty((wmax, nb), dt), np.empty((nb, wmax), dt),
    )
