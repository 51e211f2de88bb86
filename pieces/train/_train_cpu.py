"""Numba CPU kernels of training: forward, backprop and updates in any precision.

Parameters of one net live in one flat array ``theta``, layer after layer: the weight
matrix transposed, ``(n_in, n_out)`` row-major, then the bias. Arrays have the compute
dtype of the precision (see :attr:`pieces.precision.Format.compute_dtype`), and every
arithmetic result goes through ``rnd`` (a no-op for fp32/fp64): products, sums, the
loss, the gradient, the update. The Python entry points hand the kernels the dedicated
roundings of :func:`pieces.precision.kernel_rounding` (same bits, faster), and run
p9..p11 in float32 (:func:`pieces.precision.float32_rounding`: the arrays convert
exactly, products and quotients go through ``mul`` and ``div``). Loops run in a fixed
order, so results are bit for bit reproducible, and identical between ``train`` and
``train_batch``. Native precisions (fp32, fp64) take the same sums in the same orders
through the register-blocked products of :mod:`pieces.train._gemm_cpu`
(:mod:`pieces.train._train_passes`).

Loss: ``L = (1/N) sum_n (f(x_n) - y_n)**2``; ``dL/df(x_n) = (2 r_n) / N``.
"""

import numpy as np
from numba import njit, prange

from ._train_passes import _backward, _forward, _workspace
from ..precision import div, float32_rounding, kernel_rounding, mul, rnd

__all__ = ["OPTIMIZERS", "param_layout", "loss_grad", "run_steps_batch", "forward_loss", "evaluate_batch"]

#: Optimiser codes of the kernels.
OPTIMIZERS = {"gd": 0, "sgd": 1, "adam": 2}


def param_layout(sizes):
    """``(w_off, b_off, n_params)`` of the flat parameter vector for layer ``sizes``."""
    w_off, b_off = [], []
    p = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        w_off.append(p)
        p += n_in * n_out
        b_off.append(p)
        p += n_out
    return np.array(w_off, np.int64), np.array(b_off, np.int64), p


def counter_indices(sizes):
    """``(w_idx, b_idx)``: where the weights and the biases of the flat parameter vector
    lie, in the order the exact counter packs them (the training layout holds W
    transposed, as the counter wants it)."""
    w_off, b_off, _ = param_layout(sizes)
    w_idx = np.concatenate([np.arange(o, o + a * b) for o, a, b in zip(w_off, sizes[:-1], sizes[1:])])
    b_idx = np.concatenate([np.arange(o, o + b) for o, b in zip(b_off, sizes[1:])])
    return w_idx, b_idx

@njit(cache=True, error_model="numpy")
def forward_loss(theta, sizes, x, y, rs):
    """Loss of the net on (x, y), computed in the precision."""
    H, r, G, D, E, Dt = _workspace(theta, sizes, x.size)
    return _forward(theta, sizes, x, y, H, r, rs)


@njit(cache=True, error_model="numpy")
def _evaluate(theta, sizes, x, y, rs, out):
    H, r, G, D, E, Dt = _workspace(theta, sizes, x.size)
    loss = _forward(theta, sizes, x, y, H, r, rs)
    out[:] = H[H.shape[0] - 1]
    return loss


def evaluate_batch(thetas, sizes, x, y, rounding):
    """``(losses, outputs)`` of the nets ``thetas`` (one architecture) on (x, y),
    computed in the precision: the float64 losses and the ``(n_nets, x.size)`` outputs.
    One net per thread.
    """
    n = thetas.shape[0]
    losses = np.empty(n, np.float64)
    outputs = np.empty((n, x.size), thetas.dtype)
    narrow = float32_rounding(rounding)
    if narrow is not None:  # p9..p11: in float32, the same bits
        f32 = np.float32
        out32 = np.empty((n, x.size), f32)
        _evaluate_batch(thetas.astype(f32), sizes, x.astype(f32), y.astype(f32), narrow, losses, out32)
        outputs[:] = out32
        return losses, outputs
    _evaluate_batch(thetas, sizes, x, y, kernel_rounding(rounding, finite_inputs=True), losses, outputs)
    return losses, outputs


@njit(cache=True, parallel=True, error_model="numpy")
def _evaluate_batch(thetas, sizes, x, y, rs, losses, outputs):
    for i in prange(thetas.shape[0]):
        losses[i] = _evaluate(thetas[i], sizes, x, y, rs, outputs[i])


@njit(cache=True, error_model="numpy")
def loss_grad(theta, sizes, x, y, rs):
    """``(loss, gradient)`` on (x, y), computed in the precision."""
    H, r, G, D, E, Dt = _workspace(theta, sizes, x.size)
    loss = _forward(theta, sizes, x, y, H, r, rs)
    _backward(theta, sizes, H, r, G, D, E, Dt, rs)
    return loss, G


@njit(cache=True, error_model="numpy")
def _splitmix(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


def epoch_permutation_py(n, seed, epoch, perm):
    """Fisher-Yates shuffle of 0..n-1 from a splitmix64 stream of (seed, epoch).

    Plain Python, compiled twice: :func:`epoch_permutation` on the CPU and as a device
    function of the CUDA kernels, so that both draw the same minibatches."""
    state = np.uint64(seed) * np.uint64(0x100000001B3) + np.uint64(epoch)
    state, _ = _splitmix(state)
    state = np.uint64(state)  # a no-op compiled; in the CUDA simulator, undoes int
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        state, z = _splitmix(state)
        state = np.uint64(state)
        j = np.int64(np.uint64(z) % np.uint64(i + 1))
        perm[i], perm[j] = perm[j], perm[i]


epoch_permutation = njit(cache=True, error_model="numpy")(epoch_permutation_py)


@njit(cache=True, error_model="numpy")
def _run(theta, m, v, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, batch, seed, rs, cnt):
    # cnt (2, P): per parameter, the updates attempted (a non-zero direction: the
    # gradient for GD/SGD, Adam's first moment) and those absorbed (rounded to no change)
    N = X.size
    nb = N if (batch <= 0 or batch >= N) else batch
    H, r, G, D, E, Dt = _workspace(theta, sizes, nb)
    new = np.empty_like(theta)
    xb = np.empty(nb, X.dtype)
    yb = np.empty(nb, X.dtype)
    perm = np.empty(N, np.int64)
    spe = N // nb  # steps per epoch
    epoch_now = -1
    b1, omb1, b2, omb2, eps = hp[0], hp[1], hp[2], hp[3], hp[4]
    loss = theta[0] - theta[0]
    for s in range(step0, step0 + n_steps):
        if nb == N:
            xb[:] = X
            yb[:] = Y
        else:
            epoch = s // spe
            if epoch != epoch_now:
                epoch_permutation(N, seed, epoch, perm)
                epoch_now = epoch
            start = (s % spe) * nb
            for k in range(nb):
                xb[k] = X[perm[start + k]]
                yb[k] = Y[perm[start + k]]
        loss = _forward(theta, sizes, xb, yb, H, r, rs)
        if not np.isfinite(loss):
            return s - step0, loss, True
        _backward(theta, sizes, H, r, G, D, E, Dt, rs)
        rate = lr[s]
        ok = True
        if opt == 2:
            c1 = bc[s, 0]
            c2 = bc[s, 1]
            for k in range(theta.size):
                g = G[k]
                mk = rnd(mul(b1, m[k], rs) + mul(omb1, g, rs), rs)
                vk = rnd(mul(b2, v[k], rs) + mul(mul(omb2, g, rs), g, rs), rs)
                m[k] = mk
                v[k] = vk
                mh = div(mk, c1, rs)
                vh = div(vk, c2, rs)
                den = rnd(rnd(np.sqrt(vh), rs) + eps, rs)
                step = mul(rate, div(mh, den, rs), rs)
                new[k] = rnd(theta[k] - step, rs)
                ok = ok and np.isfinite(new[k])
                tried = mk != 0
                cnt[0, k] += tried
                cnt[1, k] += tried and new[k] == theta[k]
        else:
            for k in range(theta.size):
                new[k] = rnd(theta[k] - mul(rate, G[k], rs), rs)
                ok = ok and np.isfinite(new[k])
                tried = G[k] != 0
                cnt[0, k] += tried
                cnt[1, k] += tried and new[k] == theta[k]
        if not ok:
            return s - step0, loss, True
        theta[:] = new
    return n_steps, loss, False


@njit(cache=True, parallel=True, error_model="numpy")
def _run_batch(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, batch, seeds, active,
               rs, counts):
    n = thetas.shape[0]
    done = np.zeros(n, np.int64)
    losses = np.zeros(n, np.float64)
    diverged = np.zeros(n, np.bool_)
    for i in prange(n):
        if not active[i]:
            continue
        d, loss, div = _run(thetas[i], ms[i], vs[i], sizes, X, Y, lr, bc, hp, opt, step0, n_steps,
                            batch, seeds[i], rs, counts[i])
        done[i] = d
        losses[i] = loss
        diverged[i] = div
    return done, losses, diverged


def run_steps_batch(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, batch, seeds, active, rounding,
                    counts=None):
    """Run ``n_steps`` updates in place from global step ``step0`` for the rows of
    ``thetas`` (one architecture), one net per thread; ``train`` is a batch of one.

    ``counts`` (``(n, 2, P)`` int64, optional) accumulates per parameter the updates
    attempted (a non-zero direction: the gradient, or Adam's first moment) and those
    absorbed (``theta - step`` rounded back to ``theta`` in the format).

    Returns ``(steps_done, last_loss, diverged)`` per net; on divergence a row keeps
    its last finite parameters (the failing step is not applied).
    """
    if counts is None:
        counts = np.zeros((thetas.shape[0], 2, thetas.shape[1]), np.int64)
    narrow = float32_rounding(rounding)
    if narrow is not None:  # p9..p11: in float32, the same bits (values convert exactly)
        f32 = np.float32
        arrays = [a.astype(f32) for a in (thetas, ms, vs)]
        out = _run_batch(*arrays, sizes, X.astype(f32), Y.astype(f32), lr.astype(f32), bc.astype(f32),
                         hp.astype(f32), opt, step0, n_steps, batch, seeds, active, narrow, counts)
        for full, narrow_copy in zip((thetas, ms, vs), arrays):
            full[:] = narrow_copy
        return out
    return _run_batch(thetas, ms, vs, sizes, X, Y, lr, bc, hp, opt, step0, n_steps, batch, seeds,
                      active, kernel_rounding(rounding, finite_inputs=True), counts)
