"""The FMA-chain products of native training against a plain reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from pieces.train._gemm_cpu import FUSED, INIT_ROW, INIT_ZERO, MASK, RELU, gemm, transpose
from pieces._jit.llvm import fma

MODES = [m | f for f in (0, FUSED) for m in (0, INIT_ZERO, INIT_ROW, INIT_ZERO | RELU, INIT_ROW | RELU,
                                              INIT_ZERO | MASK, MASK)]


@njit
def reference(A, B, C, V, mode):
    """Each entry its own chain, in k order, one element at a time."""
    M, K = A.shape
    N = B.shape[1]
    zero = np.zeros(1, C.dtype)[0]
    for m in range(M):
        for n in range(N):
            if mode & INIT_ZERO:
                c = zero
            elif mode & INIT_ROW:
                c = V[m, 0]
            else:
                c = C[m, n]
            for k in range(K):
                if mode & FUSED:
                    c = fma(A[m, k], B[k, n], c)
                else:
                    p = A[m, k] * B[k, n]
                    c = c + p
            if mode & RELU:
                c = c if c > zero else zero
            if mode & MASK:
                c = c if V[m, n] > zero else zero
            C[m, n] = c


def _case(rng, dtype, M, K, N, special):
    def draw(shape):
        x = rng.standard_normal(shape) * 2.0 ** rng.integers(-3, 4, shape)
        if special:  # zeros, signed zeros and non-finite values, where the rules differ
            pick = rng.random(shape)
            x[pick < 0.1] = 0.0
            x[(pick >= 0.1) & (pick < 0.15)] = -0.0
            x[(pick >= 0.15) & (pick < 0.17)] = np.inf
            x[(pick >= 0.17) & (pick < 0.19)] = np.nan
        return x.astype(dtype)
    return draw((M, K)), draw((K, N)), draw((M, N)), draw((M, N))


def _same(got, want):
    """Equal values, NaN where NaN, and equal signs of zeros (a NaN's sign and payload
    mean nothing: the hardware picks either operand's)."""
    np.testing.assert_array_equal(got, want)
    num = ~np.isnan(want)
    assert (np.signbit(got[num]) == np.signbit(want[num])).all()


def _run(A, B, C, V, mode, transposed_a):
    M, K = A.shape
    N = B.shape[1]
    if transposed_a:  # A stored (K, M): the forward pass reads theta's W this way
        a, sam, sak = np.ascontiguousarray(A.T).ravel(), 1, M
    else:
        a, sam, sak = A.ravel(), K, 1
    # B, C and V inside larger arrays, at offsets, with leading dimensions above N
    pad = 3
    Bbig = np.full((K + 1, N + pad), 7.0, A.dtype)
    Bbig[1:, :N] = B
    Cbig = np.full((M + 1, N + pad), 5.0, A.dtype)
    Cbig[1:, :N] = C
    Vbig = np.full((M + 1, N + pad), -1.0, A.dtype)
    Vbig[1:, :N] = V
    ld = N + pad
    gemm(a, 0, sam, sak, Bbig.ravel(), ld, ld, Cbig.ravel(), ld, ld, M, N, K, Vbig.ravel(), ld, ld, mode)
    assert (Cbig[0] == 5.0).all() and (Cbig[1:, N:] == 5.0).all()  # nothing outside C written
    return Cbig[1:, :N]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", MODES)
def test_blocked_kernels_equal_the_reference_bit_for_bit(dtype, mode):
    rng = np.random.default_rng(mode)
    # sizes around every block edge: 4 rows, 1, 2, 4 and 8 vectors, scalar columns
    for M, K, N in [(32, 32, 64), (33, 7, 35), (1, 5, 70), (4, 1, 16), (9, 40, 1), (7, 3, 9), (2, 0, 20),
                    (17, 1024, 3), (12, 2, 72)]:
        for special in (False, True):
            A, B, C, V = _case(rng, dtype, M, K, N, special)
            want = C.copy()
            reference(A, B, want, V, mode)
            for transposed_a in (False, True):
                got = _run(A, B, C, V, mode, transposed_a)
                _same(got, want)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 40), st.integers(1, 80), st.sampled_from(MODES),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**32 - 1))
def test_any_shape_equals_the_reference(M, K, N, mode, dtype, seed):
    A, B, C, V = _case(np.random.default_rng(seed), dtype, M, K, N, seed % 3 == 0)
    want = C.copy()
    reference(A, B, want, V, mode)
    got = _run(A, B, C, V, mode, seed % 2 == 0)
    _same(got, want)


def test_fused_and_plain_chains_differ():
    """The test can fail: a product that FMA keeps exact and a rounded product loses."""
    A = np.array([[1.0 + 2.0**-30]])
    B = np.array([[1.0 - 2.0**-30]])
    C = np.array([[-1.0]])
    plain, fused = C.copy(), C.copy()
    gemm(A.ravel(), 0, 1, 1, B.ravel(), 0, 1, plain.ravel(), 0, 1, 1, 1, 1, C.ravel(), 0, 0, 0)
    gemm(A.ravel(), 0, 1, 1, B.ravel(), 0, 1, fused.ravel(), 0, 1, 1, 1, 1, C.ravel(), 0, 0, FUSED)
    assert plain[0, 0] == 0.0 and fused[0, 0] == -(2.0**-60)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([np.float32, np.float64]), st.integers(0, 3))
def test_transpose(rows, cols, dtype, pad):
    S = np.arange((rows + 1) * (cols + pad), dtype=dtype).reshape(rows + 1, cols + pad)
    T = np.full((cols + 2, rows + pad), -1.0, dtype)
    transpose(S.ravel(), cols + pad, cols + pad, T.ravel(), rows + pad, rows + pad, rows, cols)
    np.testing.assert_array_equal(T[1 : cols + 1, :rows], S[1:, :cols].T)
    assert (T[0] == -1).all() and (T[cols + 1] == -1).all() and (T[:, rows:] == -1).all()


@njit
def reference_loss_grad(theta, sizes, x, y):
    """Native forward and backward one scalar at a time, in the documented orders: each
    preactivation ``b_j + w_0j h_0 + ...``, each gradient over the samples in order,
    each delta over the next layer's neurons in order; a step is one FMA where the
    layer is at least 8 wide and the batch at least 8 samples, else product and sum."""
    nb = x.size
    L = sizes.size - 1
    zero = np.zeros(1, theta.dtype)[0]
    acts = []
    h = np.empty((1, nb), theta.dtype)
    h[0] = x
    acts.append(h)
    p = 0
    offs = []
    for l in range(L):
        n_in, n_out = sizes[l], sizes[l + 1]
        fused = n_in >= 8 and nb >= 8
        W = theta[p : p + n_in * n_out].reshape((n_in, n_out))
        b = theta[p + n_in * n_out : p + n_in * n_out + n_out]
        offs.append(p)
        p += n_in * n_out + n_out
        z = np.empty((n_out, nb), theta.dtype)
        for j in range(n_out):
            for n in range(nb):
                c = b[j]
                for i in range(n_in):
                    c = fma(W[i, j], h[i, n], c) if fused else c + W[i, j] * h[i, n]
                z[j, n] = c if (l == L - 1 or c > zero) else zero
        h = z
        acts.append(h)
    r = np.empty(nb, theta.dtype)
    loss = zero
    for n in range(nb):
        r[n] = h[0, n] - y[n]
        loss = loss + r[n] * r[n]
    G = np.empty_like(theta)
    D = np.empty((1, nb), theta.dtype)
    for n in range(nb):
        D[0, n] = (r[n] + r[n]) / nb
    for l in range(L - 1, -1, -1):
        n_in, n_out = sizes[l], sizes[l + 1]
        fused = n_in >= 8 and nb >= 8
        p = offs[l]
        W = theta[p : p + n_in * n_out].reshape((n_in, n_out))
        hin = acts[l]
        for j in range(n_out):
            c = zero
            for n in range(nb):
                c = c + D[j, n]
            G[p + n_in * n_out + j] = c
            for i in range(n_in):
                c = zero
                for n in range(nb):
                    c = fma(hin[i, n], D[j, n], c) if fused else c + hin[i, n] * D[j, n]
                G[p + i * n_out + j] = c
        if l == 0:
            break
        E = np.empty((n_in, nb), theta.dtype)
        for i in range(n_in):
            for n in range(nb):
                c = zero
                for j in range(n_out):
                    c = fma(W[i, j], D[j, n], c) if fused else c + W[i, j] * D[j, n]
                E[i, n] = c if hin[i, n] > zero else zero
        D = E
    return loss / nb, G


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_training_kernels_equal_the_reference(dtype):
    from pieces import ReLUNet
    from pieces.train._train_cpu import loss_grad
    from pieces.train import net_to_theta

    rng = np.random.default_rng(3)
    for widths, nb in [([32] * 3, 1024), ([8, 3, 12], 40), ([16, 16], 5), ([9, 40, 7], 33), ([7, 8], 8),
                       ([64, 5], 100), ([12] * 4, 3)]:
        theta = net_to_theta(ReLUNet.random(widths, seed=int(rng.integers(1000)))).astype(dtype)
        sizes = np.array([1] + widths + [1], np.int64)
        x = rng.uniform(-2, 2, nb).astype(dtype)
        y = np.sin(3 * x).astype(dtype)
        loss, grad = loss_grad(theta, sizes, x, y, ())
        want_loss, want_grad = reference_loss_grad(theta, sizes, x, y)
        assert loss == want_loss
        np.testing.assert_array_equal(grad, want_grad)
        assert np.abs(grad).max() > 0
