"""Device functions of the CUDA training kernel: the forward pass, the deltas and the
gradient sums of one thread block, register-tiled, every sum in the CPU's order; the
serial loss and the epoch permutation. Twin of :mod:`pieces.train._train_passes`.
"""

from __future__ import annotations

import math

from numba import cuda

from .._jit.cuda import rnd
from ._train_cpu import epoch_permutation_py

__all__ = ["epoch_permutation", "_loss_serial", "_build_device_functions", "_build_step_functions"]

epoch_permutation = cuda.jit(device=True)(epoch_permutation_py)


@cuda.jit(device=True)
def _loss_serial(R, nbf, rs, zero):
    """Mean of the squared residuals, summed in sample order (one thread)."""
    loss = zero
    for n in range(R.size):
        loss = rnd(loss + rnd(R[n] * R[n], rs), rs)
    return rnd(loss / nbf, rs)


def _build_device_functions(DT, TO, TK, TJ):
    """The per-dtype device functions. ``TO``: outputs a thread accumulates at once in
    the forward pass and the deltas (two samples each); ``TK x TJ``: the gradient tile
    of a thread. Tiles are small constant-size local arrays, which the compiler keeps
    in registers (the loops over them unroll), so that each loaded activation serves
    ``2 * TO`` products and each loaded delta ``TK * TJ``."""
    return _build_forward(DT, TO), _build_deltas(DT, TO), _build_gradient(DT, TK, TJ)


def _build_forward(DT, TO):
    @cuda.jit(device=True)
    def forward(th, sizes, w_off, b_off, h_off, xb, yb, H, R, rs, zero):
        """Forward pass of this thread's samples: activations into ``H`` (h_tot, nb),
        rounded residuals into ``R``. Sums run ``b_j + w_0j h_0 + w_1j h_1 + ...``."""
        acc = cuda.local.array(TO, DT)
        acc2 = cuda.local.array(TO, DT)
        n_layers = sizes.size - 1
        out = h_off[n_layers]
        nb = xb.size
        T = cuda.blockDim.x
        for n in range(cuda.threadIdx.x, nb, 2 * T):
            n2 = n + T if n + T < nb else n  # the second sample (or n again)
            H[0, n] = xb[n]
            H[0, n2] = xb[n2]
            for l in range(n_layers):
                n_in = sizes[l]
                n_out = sizes[l + 1]
                i0 = h_off[l]
                j0 = h_off[l + 1]
                wo = w_off[l]
                bo = b_off[l]
                relu = l < n_layers - 1
                for jt in range(0, n_out, TO):
                    for t in range(TO):
                        if jt + t < n_out:
                            acc[t] = th[bo + jt + t]
                            acc2[t] = acc[t]
                    for k in range(n_in):
                        h1 = H[i0 + k, n]
                        h2 = H[i0 + k, n2]
                        base = wo + k * n_out + jt
                        for t in range(TO):
                            if jt + t < n_out:
                                w = th[base + t]
                                acc[t] = rnd(acc[t] + rnd(w * h1, rs), rs)
                                acc2[t] = rnd(acc2[t] + rnd(w * h2, rs), rs)
                    for t in range(TO):
                        if jt + t < n_out:
                            z1 = acc[t]
                            z2 = acc2[t]
                            if relu and not z1 > zero:
                                z1 = zero
                            if relu and not z2 > zero:
                                z2 = zero
                            H[j0 + jt + t, n] = z1
                            H[j0 + jt + t, n2] = z2
            R[n] = rnd(H[out, n] - yb[n], rs)
            R[n2] = rnd(H[out, n2] - yb[n2], rs)

    return forward


def _build_deltas(DT, TO):
    @cuda.jit(device=True)
    def deltas(th, wo, n_in, n_out, i0, H, D, E, zero, rs):
        """``E[k, n] = relu'(z_k) * sum_j w_kj D[j, n]``, summed over j in order, for
        this thread's samples."""
        acc = cuda.local.array(TO, DT)
        acc2 = cuda.local.array(TO, DT)
        nb = H.shape[1]
        T = cuda.blockDim.x
        for n in range(cuda.threadIdx.x, nb, 2 * T):
            n2 = n + T if n + T < nb else n
            for kt in range(0, n_in, TO):
                for t in range(TO):
                    acc[t] = zero
                    acc2[t] = zero
                for j in range(n_out):
                    d1 = D[j, n]
                    d2 = D[j, n2]
                    for t in range(TO):
                        if kt + t < n_in:
                            w = th[wo + (kt + t) * n_out + j]
                            acc[t] = rnd(acc[t] + rnd(w * d1, rs), rs)
                            acc2[t] = rnd(acc2[t] + rnd(w * d2, rs), rs)
                for t in range(TO):
                    if kt + t < n_in:
                        k = kt + t
                        E[k, n] = acc[t] if H[i0 + k, n] > zero else zero
                        E[k, n2] = acc2[t] if H[i0 + k, n2] > zero else zero

    return deltas


def _build_gradient(DT, TK, TJ):
    @cuda.jit(device=True)
    def gradient(wo, bo, n_in, n_out, i0, H, Dt, G, zero, rs):
        """Weight and bias gradients of one layer, each summed over the samples in
        order. A thread owns tiles of TK x TJ weights; the tiles of the first rows also
        sum the biases of their columns (from the deltas they load anyway)."""
        acc = cuda.local.array((TK, TJ), DT)
        accb = cuda.local.array(TJ, DT)
        nb = H.shape[1]
        n_jt = (n_out + TJ - 1) // TJ
        n_tiles = ((n_in + TK - 1) // TK) * n_jt
        for tile in range(cuda.threadIdx.x, n_tiles, cuda.blockDim.x):
            kt = (tile // n_jt) * TK
            jt = (tile % n_jt) * TJ
            for a in range(TK):
                for t in range(TJ):
                    acc[a, t] = zero
            for t in range(TJ):
                accb[t] = zero
            for n in range(nb):
                if kt == 0:
                    for t in range(TJ):
                        if jt + t < n_out:
                            accb[t] = rnd(accb[t] + Dt[n, jt + t], rs)
                for a in range(TK):
                    if kt + a < n_in:
                        h = H[i0 + kt + a, n]
                        if h != zero:  # a zero activation adds exactly nothing
                            for t in range(TJ):
                                if jt + t < n_out:
                                    acc[a, t] = rnd(acc[a, t] + rnd(h * Dt[n, jt + t], rs), rs)
            for a in range(TK):
                if kt + a < n_in:
                    for t in range(TJ):
                        if jt + t < n_out:
                            G[wo + (kt + a) * n_out + jt + t] = acc[a, t]
            if kt == 0:
                for t in range(TJ):
                    if jt + t < n_out:
                        G[bo + jt + t] = accb[t]

    return gradient


def _build_step_functions(deltas, gradient):
    """``(backward, update)``: the rest of one training step, after the forward pass and
    the loss, as device functions over the block's threads."""

    @cuda.jit(device=True)
    def backward(th, sizes, w_off, b_off, h_off, H, R, D, E, Dt, G, nb, nbf, rs, zero, tid, T):
        """The gradient ``G`` from the residuals ``R``: dL/df = 2 r / N, then layer by
        layer from the output down (D and E are the deltas, swapped per layer)."""
        for n in range(tid, nb, T):
            D[0, n] = rnd((R[n] + R[n]) / nbf, rs)
        for l in range(sizes.size - 2, -1, -1):
            n_in = sizes[l]
            n_out = sizes[l + 1]
            cuda.syncthreads()
            for n in range(tid, nb, T):
                for j in range(n_out):
                    Dt[n, j] = D[j, n]
            cuda.syncthreads()
            gradient(w_off[l], b_off[l], n_in, n_out, h_off[l], H, Dt, G, zero, rs)
            if l > 0:
                deltas(th, w_off[l], n_in, n_out, h_off[l], H, D, E, zero, rs)
                D, E = E, D

    @cuda.jit(device=True)
    def update(th, m, v, new, G, rate, opt, bc, s, hp, counts, i, bad, r, P, rs, zero, tid, T):
        """GD/SGD or Adam (``opt`` 2) on this thread's share of the ``P`` parameters, into
        ``new``; counts the attempted and absorbed updates, flags a non-finite one."""
        for k in range(tid, P, T):
            g = G[k]
            if opt == 2:
                mk = rnd(rnd(hp[0] * m[k], rs) + rnd(hp[1] * g, rs), rs)
                vk = rnd(rnd(hp[2] * v[k], rs) + rnd(rnd(hp[3] * g, rs) * g, rs), rs)
                m[k] = mk
                v[k] = vk
                mh = rnd(mk / bc[s, 0], rs)
                vh = rnd(vk / bc[s, 1], rs)
                den = rnd(rnd(zero + math.sqrt(vh), rs) + hp[4], rs)
                step = rnd(rate * rnd(mh / den, rs), rs)
                nk = rnd(th[k] - step, rs)
                tried = mk != zero
            else:
                nk = rnd(th[k] - rnd(rate * g, rs), rs)
                tried = g != zero
            new[k] = nk
            if tried:  # this thread owns parameter k: no race
                counts[i, 0, k] += 1
                if nk == th[k]:
                    counts[i, 1, k] += 1
            if not math.isfinite(nk):
                bad[r] = 1

    return backward, update
