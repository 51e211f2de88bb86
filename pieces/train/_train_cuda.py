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
from .._jit.cuda import _FP16, device_rounding, to_device, workspace_budget
from ._train_passes import _layout as _layout_host
from ._train_cuda_passes import _build_device_functions, _build_step_functions, _loss_serial, epoch_permutation

__all__ = ["run_steps_batch", "evaluate_batch"]

def _build_train_kernel(dtype, shared, tiles):
    DT = from_dtype(np.dtype(dtype))
    forward, deltas, gradient = _build_device_functions(DT, *tiles)
    backward, update = _build_step_functions(deltas, gradient)

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
        zero = th[0] - th[0]
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
            backward(th, sizes, w_off, b_off, h_off, H, R, D, E, Dt, G, nb, nbf, rs, zero, tid, T)
            cuda.syncthreads()
            update(th, m, v, new, G, lr[s], opt, bc, s, hp, counts, i, bad, r, P, rs, zero, tid, T)
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
