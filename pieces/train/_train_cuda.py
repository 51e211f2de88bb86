"""CUDA twins of the training kernels (numba-cuda): one thread block trains one net.

Same public signatures as :mod:`pieces.train._train_cpu`, same parameter layout, same
operations in the same order: the block's threads split the samples for the forward
pass and the deltas (each sample's sums run over the neurons in order, as on the CPU),
then split the parameters for the gradient sums (each runs over the samples in order,
as on the CPU), the loss is summed over the samples in order by one thread, and each
thread updates its share of the parameters. So emulated precisions (fp16, bf16, pK)
give the CPU's results bit for bit. Native fp32/fp64 differ in the last bits: both fuse
the sums of layers at least 8 wide into FMAs in this order, but the GPU's compiler also
contracts narrower layers and the update, which the CPU rounds twice.

A net's parameters stay in shared memory for the whole launch when they fit in
``config.CUDA_SHARED_BYTES``; activations and deltas live in device memory. Each thread
accumulates small register tiles (``config.CUDA_TILE_OUT``, ``config.CUDA_TILE_GRAD``),
so that a value loaded from memory serves several products; every tile keeps each
sum's order. All steps of a launch run inside the kernel, with barriers between the
phases; batches whose workspaces exceed ``config.CUDA_WORKSPACE_BYTES`` run in chunks.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, from_dtype

from .. import config
from .._jit.cuda import _FP16, device_rounding, rnd, to_device, workspace_budget
from ._train_passes import _layout as _layout_host
from ._train_cpu import epoch_permutation_py

__all__ = ["run_steps_batch", "evaluate_batch"]

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

    return forward, deltas, gradient


def _build_train_kernel(dtype, shared, tiles):
    DT = from_dtype(np.dtype(dtype))
    forward, deltas, gradient = _build_device_functions(DT, *tiles)

    @cuda.jit
    def kernel(thetas, ms, vs, news, sizes, w_off, b_off, h_off, X, Y, lr, bc, hp, opt, step0,
               n_steps, seeds, active, rs, nbf, Hs, Rs, Gs, Ds, Es, Dts, perms, xbs, ybs, lossw,
               bad, done, losses, diverged, counts, first):
        r = cuda.blockIdx.x
        i = first + r
        tid = cuda.threadIdx.x
        T = cuda.blockDim.x
        if i >= thetas.shape[0] or not active[i]:
            return
        P = thetas.shape[1]
        if shared:
            th = cuda.shared.array(0, DT)
            for k in range(tid, P, T):
                th[k] = thetas[i, k]
            cuda.syncthreads()
        else:
            th = thetas[i]
        m = ms[i]
        v = vs[i]
        new = news[r]
        H = Hs[r]
        R = Rs[r]
        G = Gs[r]
        D = Ds[r]
        E = Es[r]
        Dt = Dts[r]
        perm = perms[r]
        xb = xbs[r]
        yb = ybs[r]
        nb = xb.size
        N = X.size
        n_layers = sizes.size - 1
        zero = th[0] - th[0]
        b1 = hp[0]
        omb1 = hp[1]
        b2 = hp[2]
        omb2 = hp[3]
        eps = hp[4]
        spe = N // nb
        epoch_now = -1
        n_done = n_steps
        last = zero
        div = False
        if nb == N:
            for n in range(tid, nb, T):
                xb[n] = X[n]
                yb[n] = Y[n]
            cuda.syncthreads()
        for s in range(step0, step0 + n_steps):
            if nb != N:
                epoch = s // spe
                if epoch != epoch_now:
                    if tid == 0:
                        epoch_permutation(N, seeds[i], epoch, perm)
                    epoch_now = epoch
                    cuda.syncthreads()
                start = (s % spe) * nb
                for n in range(tid, nb, T):
                    xb[n] = X[perm[start + n]]
                    yb[n] = Y[perm[start + n]]
                cuda.syncthreads()  # forward's sample pairs are not the gather's
            forward(th, sizes, w_off, b_off, h_off, xb, yb, H, R, rs, zero)
            cuda.syncthreads()
            if tid == 0:
                lossw[r] = _loss_serial(R, nbf, rs, zero)
                bad[r] = 0
            cuda.syncthreads()
            last = lossw[r]
            if not math.isfinite(last):
                n_done = s - step0
                div = True
                break
            # backward: dL/df = 2 r / N
            for n in range(tid, nb, T):
                D[0, n] = rnd((R[n] + R[n]) / nbf, rs)
            for l in range(n_layers - 1, -1, -1):
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
            cuda.syncthreads()
            rate = lr[s]
            for k in range(tid, P, T):
                g = G[k]
                if opt == 2:
                    c1 = bc[s, 0]
                    c2 = bc[s, 1]
                    mk = rnd(rnd(b1 * m[k], rs) + rnd(omb1 * g, rs), rs)
                    vk = rnd(rnd(b2 * v[k], rs) + rnd(rnd(omb2 * g, rs) * g, rs), rs)
                    m[k] = mk
                    v[k] = vk
                    mh = rnd(mk / c1, rs)
                    vh = rnd(vk / c2, rs)
                    den = rnd(rnd(zero + math.sqrt(vh), rs) + eps, rs)
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
            cuda.syncthreads()
            if bad[r] != 0:
                n_done = s - step0
                div = True
                break
            for k in range(tid, P, T):
                th[k] = new[k]
            cuda.syncthreads()
        if shared:
            for k in range(tid, P, T):
                thetas[i, k] = th[k]
        if tid == 0:
            done[i] = n_done
            losses[i] = last
            diverged[i] = div

    return kernel


def _build_eval_kernel(dtype, shared, tiles):
    DT = from_dtype(np.dtype(dtype))
    forward = _build_device_functions(DT, *tiles)[0]

    @cuda.jit
    def kernel(thetas, sizes, w_off, b_off, h_off, x, y, rs, nbf, Hs, Rs, losses, outputs, first):
        r = cuda.blockIdx.x
        i = first + r
        tid = cuda.threadIdx.x
        if i >= thetas.shape[0]:
            return
        P = thetas.shape[1]
        if shared:
            th = cuda.shared.array(0, DT)
            for k in range(tid, P, cuda.blockDim.x):
                th[k] = thetas[i, k]
            cuda.syncthreads()
        else:
            th = thetas[i]
        zero = th[0] - th[0]
        H = Hs[r]
        R = Rs[r]
        forward(th, sizes, w_off, b_off, h_off, x, y, H, R, rs, zero)
        cuda.syncthreads()
        out = h_off[sizes.size - 1]
        for n in range(tid, x.size, cuda.blockDim.x):
            outputs[i, n] = H[out, n]
        if tid == 0:
            losses[i] = _loss_serial(R, nbf, rs, zero)

    return kernel


_KERNELS = {}


def _kernel(kind, dtype, shared):
    tiles = (config.CUDA_TILE_OUT, *config.CUDA_TILE_GRAD)
    key = (kind, np.dtype(dtype).str, bool(shared), tiles)
    if key not in _KERNELS:
        build = _build_train_kernel if kind == "train" else _build_eval_kernel
        _KERNELS[key] = build(dtype, bool(shared), tiles)
    return _KERNELS[key]


def _shared_bytes(n_params, dtype):
    """Dynamic shared memory for a net's parameters, or 0 when they do not fit."""
    nbytes = n_params * np.dtype(dtype).itemsize
    return nbytes if nbytes <= config.CUDA_SHARED_BYTES else 0


def _chunk(n, per_net_bytes):
    return max(1, min(n, workspace_budget() // max(per_net_bytes, 1)))


#: fp16 integers are exact up to 2**11: the batch size divides in native half only then.
_FP16_EXACT_INT = 2048


def _native_half(rounding, nb):
    return (config.CUDA_NATIVE_HALF and len(rounding) == 4 and tuple(rounding[:3]) == _FP16
            and nb <= _FP16_EXACT_INT)


def run_steps_batch(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, batch, seeds, active, rounding,
                    counts=None):
    """The twin of :func:`pieces.train._train_cpu.run_steps_batch`, one thread block per net.

    Updates ``thetas``, ``ms`` and ``vs`` (and the attempted / absorbed update
    ``counts``, ``(n, 2, P)``) in place (through the device and back) and
    returns ``(steps_done, last_loss, diverged)`` per net. With
    ``config.CUDA_NATIVE_HALF``, fp16 runs in the GPU's half arithmetic instead of the
    exact emulation (every value is already an fp16 number, so the arrays convert
    exactly both ways).
    """
    N = X.size
    nb = N if (batch <= 0 or batch >= N) else int(batch)
    if counts is None:
        counts = np.zeros((thetas.shape[0], 2, thetas.shape[1]), np.int64)
    if _native_half(rounding, nb):
        half = [np.asarray(a, np.float16) for a in (thetas, ms, vs, X, Y, lr, bc, hp)]
        out = _run_steps(*half[:3], sizes, *half[3:], opt, step0, n_steps, nb, seeds, active, (), counts)
        for dst, src in zip((thetas, ms, vs), half[:3]):
            dst[...] = src
        return out
    return _run_steps(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, nb, seeds, active, rounding,
                      counts)


def _run_steps(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, nb, seeds, active, rounding, counts):
    n, P = thetas.shape
    dt = thetas.dtype
    N = X.size
    w_off, b_off, h_off, h_tot = _layout_host(sizes)
    wmax = int(sizes.max())
    per_net = dt.itemsize * (h_tot * nb + nb + 2 * P + 3 * wmax * nb + 2 * nb + 2) + 8 * N
    chunk = _chunk(n, per_net)
    rs = device_rounding(rounding, dt)
    nbf = dt.type(nb)
    d_thetas, d_ms, d_vs = to_device(thetas), to_device(ms), to_device(vs)
    consts = [to_device(a) for a in (sizes, w_off, b_off, h_off, X, Y, lr, bc, hp)]
    d_seeds, d_active = to_device(seeds), to_device(active)
    d_counts = cuda.to_device(np.ascontiguousarray(counts))
    ws = dict(
        news=cuda.device_array((chunk, P), dt), Hs=cuda.device_array((chunk, h_tot, nb), dt),
        Rs=cuda.device_array((chunk, nb), dt), Gs=cuda.device_array((chunk, P), dt),
        Ds=cuda.device_array((chunk, wmax, nb), dt), Es=cuda.device_array((chunk, wmax, nb), dt),
        Dts=cuda.device_array((chunk, nb, wmax), dt), perms=cuda.device_array((chunk, N), np.int64),
        xbs=cuda.device_array((chunk, nb), dt), ybs=cuda.device_array((chunk, nb), dt),
        lossw=cuda.device_array(chunk, dt), bad=cuda.device_array(chunk, np.int32),
    )
    d_done = cuda.to_device(np.zeros(n, np.int64))
    d_losses = cuda.to_device(np.zeros(n, np.float64))
    d_div = cuda.to_device(np.zeros(n, np.bool_))
    shm = _shared_bytes(P, dt)
    kernel = _kernel("train", dt, shm > 0)
    threads = config.CUDA_TRAIN_THREADS
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        kernel[m, threads, 0, shm](
            d_thetas, d_ms, d_vs, ws["news"], *consts, int(opt), int(step0),
            int(n_steps), d_seeds, d_active, rs, nbf, ws["Hs"], ws["Rs"], ws["Gs"], ws["Ds"],
            ws["Es"], ws["Dts"], ws["perms"], ws["xbs"], ws["ybs"], ws["lossw"], ws["bad"],
            d_done, d_losses, d_div, d_counts, first,
        )
    counts[...] = d_counts.copy_to_host()
    d_thetas.copy_to_host(thetas)
    d_ms.copy_to_host(ms)
    d_vs.copy_to_host(vs)
    return d_done.copy_to_host(), d_losses.copy_to_host(), d_div.copy_to_host()


def evaluate_batch(thetas, sizes, x, y, rounding):
    """The twin of :func:`pieces.train._train_cpu.evaluate_batch`: ``(losses, outputs)``."""
    n, P = thetas.shape
    dt = thetas.dtype
    N = x.size
    w_off, b_off, h_off, h_tot = _layout_host(sizes)
    chunk = _chunk(n, dt.itemsize * (h_tot + 1) * N)
    rs = device_rounding(rounding, dt)
    d_thetas = to_device(thetas)
    consts = [to_device(a) for a in (sizes, w_off, b_off, h_off, x, y)]
    Hs = cuda.device_array((chunk, h_tot, N), dt)
    Rs = cuda.device_array((chunk, N), dt)
    d_losses = cuda.device_array(n, np.float64)
    d_out = cuda.device_array((n, N), dt)
    shm = _shared_bytes(P, dt)
    kernel = _kernel("eval", dt, shm > 0)
    threads = config.CUDA_TRAIN_THREADS
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        kernel[m, threads, 0, shm](d_thetas, *consts, rs, dt.type(N), Hs, Rs, d_losses, d_out, first)
    return d_losses.copy_to_host(), d_out.copy_to_host()
