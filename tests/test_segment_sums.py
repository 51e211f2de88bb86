"""The certified sweep's register-blocked segment sums against a scalar reference."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from pieces._jit.llvm import fma
from pieces.count._segment_sums import sums4


@njit(cache=True)
def _reference(W, n_out, live, a, b, qa, qb, c0):
    """Each entry one chain of FMAs over the live inputs in order, from ``c0``."""
    C = c0.copy()
    for j in range(n_out):
        for i in live:
            w = W[i, j]
            C[0, j] = fma(w, a[i], C[0, j])
            C[1, j] = fma(w, b[i], C[1, j])
            C[2, j] = fma(abs(w), qa[i], C[2, j])
            C[3, j] = fma(abs(w), qb[i], C[3, j])
    return C


def _run(W, live, a, b, qa, qb, c0, pad=3):
    """sums4 on copies placed at offsets inside larger arrays, so offsets and strides
    are exercised; returns C."""
    n_in, n_out = W.shape
    ldw = n_out + pad
    Wf = np.full(pad + n_in * ldw, np.nan)
    Wf[pad:].reshape(n_in, ldw)[:, :n_out] = W
    A = np.concatenate((np.full(pad, np.nan), a))
    B = np.concatenate((np.full(2 * pad, np.nan), b))
    ldq = n_in + pad
    Q = np.full(pad + 2 * ldq, np.nan)
    Q[pad : pad + n_in] = qa
    Q[pad + ldq : pad + ldq + n_in] = qb
    ldc = n_out + pad
    Cf = np.full(pad + 4 * ldc, np.nan)
    Cf[pad:].reshape(4, ldc)[:, :n_out] = c0
    sums4(Wf, pad, ldw, np.asarray(live, np.int64), len(live), A, pad, B, 2 * pad, Q, pad, ldq, Cf, pad, ldc, n_out)
    C = Cf[pad:].reshape(4, ldc)
    assert np.isnan(C[:, n_out:]).all(), "wrote outside its columns"
    return C[:, :n_out]


@settings(max_examples=60, deadline=None)
@given(n_in=st.integers(1, 20), n_out=st.integers(1, 37), seed=st.integers(0, 2**32 - 1), frac=st.floats(0.0, 1.0))
def test_sums4_equals_fma_chains(n_in, n_out, seed, frac):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n_in, n_out)) * 2.0 ** rng.integers(-30, 30, (n_in, n_out))
    W[rng.random((n_in, n_out)) < 0.2] = 0.0
    a, b = rng.standard_normal(n_in), rng.standard_normal(n_in)
    qa, qb = np.abs(rng.standard_normal(n_in)) * 1e-15, np.abs(rng.standard_normal(n_in)) * 1e-15
    live = [i for i in range(n_in) if rng.random() < frac]
    c0 = rng.standard_normal((4, n_out))
    got = _run(W, live, a, b, qa, qb, c0)
    want = _reference(W, n_out, np.asarray(live, np.int64), a, b, qa, qb, c0)
    np.testing.assert_array_equal(got, want)  # bit for bit, every column block


def test_sums4_within_the_bound():
    """The slope sums are within gamma_n sum |w| |a| of the exact sums (the bound the
    certified sweep relies on), checked in rationals."""
    rng = np.random.default_rng(1)
    n_in, n_out = 33, 21
    W = rng.standard_normal((n_in, n_out))
    a = rng.standard_normal(n_in) * 1e3
    live = list(range(0, n_in, 2))
    c0 = np.zeros((4, n_out))
    got = _run(W, live, a, a, np.abs(a), np.abs(a), c0)
    gamma = len(live) * 2.0**-53 / (1 - len(live) * 2.0**-53)
    for j in range(n_out):
        exact = sum(Fraction(W[i, j]) * Fraction(a[i]) for i in live)
        mag = sum(abs(W[i, j] * a[i]) for i in live)
        assert abs(Fraction(got[0, j]) - exact) <= Fraction(gamma * mag)
        assert got[2, j] == np.float64(got[2, j]) and abs(got[2, j] - mag) <= 1e-12 * mag


def test_sums4_no_live_inputs_keeps_the_start():
    W = np.ones((3, 9))
    c0 = np.arange(36.0).reshape(4, 9)
    got = _run(W, [], np.ones(3), np.ones(3), np.ones(3), np.ones(3), c0)
    np.testing.assert_array_equal(got, c0)
