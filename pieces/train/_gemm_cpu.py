"""Matrix products of native training: each entry one chain of multiply-adds, in order.

:func:`gemm` computes ``C[m, n] = c0 + A[m, 0] B[0, n] + A[m, 1] B[1, n] + ...``: every
entry is summed over k in order, starting from ``c0`` (the value in C, zero, or one
scalar per row such as a bias). Each step is one fused multiply-add (``FUSED``), or a
rounded product and a rounded sum, as Numba's own loops compute ``acc + a*b``. The fused
order is that of the CUDA twin, whose compiler contracts ``acc + w*h`` into the same
FMAs, and neither order depends on a BLAS library, its version or the CPU it dispatches
for. An epilogue may apply a ReLU, or zero the entries where a mask matrix is not
positive (``relu'`` of the backward pass), before C is stored.

Speed comes from a register-blocked micro-kernel written in LLVM IR (:func:`_kernel`):
a block of ``MR`` rows of C by ``NV`` vectors of 32 bytes (8 float32 or 4 float64
columns) stays in registers for the whole k loop; each step loads ``NV`` vectors of a
row of B, broadcasts ``MR`` entries of A and issues ``MR * NV`` vector FMAs. Numba's own
loops cannot express this: LLVM does not keep an accumulator array in registers across
a loop. Rows and columns left over by the blocks run through narrower kernels and
scalar loops with the same chains, so an entry's bits do not depend on where it falls.

Example
-------
>>> import numpy as np
>>> A = np.arange(6.0).reshape(2, 3); B = np.ones((3, 4)); C = np.zeros(8)
>>> gemm(A.ravel(), 0, 3, 1, B.ravel(), 0, 4, C, 0, 4, 2, 4, 3, C, 0, 0, FUSED)
>>> C.reshape(2, 4)[:, 0]
array([ 3., 12.])
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .._jit.llvm import VBYTES, Simd, fma

__all__ = ["gemm", "transpose", "FUSED", "INIT_ZERO", "INIT_ROW", "RELU", "MASK"]

#: ``mode`` bits of :func:`gemm`: fuse each step into one FMA (else product and sum)
FUSED = 1
#: start each chain at zero (default: at the value in C)
INIT_ZERO = 2
#: start row m's chains at ``V[v_off + m*ldv]``
INIT_ROW = 4
#: store ``max(c, 0)`` (``c if c > 0 else 0``, so NaN and -0 give +0)
RELU = 8
#: store ``c if V[v_off + m*ldv + n] > 0 else 0``
MASK = 16

def _kernel(MR, NV):
    """The micro-kernel of ``MR`` rows by ``NV`` vectors: a Numba intrinsic taking the
    arguments of :func:`gemm` less M and N (one block of C at ``c_off``).

    The mode's branches are taken once per block, outside the k loop, which exists
    twice (fused and not). The IR is emitted in three stages: the chains' starting
    values (:func:`_emit_init`), the k loops (:func:`_emit_k_loops`) and the epilogue
    with the stores (:func:`_emit_stores`)."""

    @intrinsic
    def kernel(typingctx, A, a_off, sam, sak, B, b_off, ldb, C, c_off, ldc, K, V, v_off, ldv, mode):
        sig = types.void(A, a_off, sam, sak, B, b_off, ldb, C, c_off, ldc, K, V, v_off, ldv, mode)

        def codegen(context, builder, signature, args):
            simd = Simd(context, builder, signature, args)
            pa, pb, pc, pv = simd.arrays(0, 4, 7, 11)
            a_off_, sam_, sak_, b_off_, ldb_, c_off_, ldc_, K_, v_off_, ldv_, mode_ = simd.ints(
                1, 2, 3, 5, 6, 8, 9, 10, 12, 13, 14)
            em = _Emitter(builder, simd, mode_, MR, NV)
            cptr = [[simd.ptr(pc, em.row_off(c_off_, ldc_, r, v)) for v in range(NV)] for r in range(MR)]
            init = _emit_init(em, cptr, pv, v_off_, ldv_)
            out = _emit_k_loops(em, init, pa, a_off_, sam_, sak_, pb, b_off_, ldb_, K_)
            _emit_stores(em, out, cptr, pv, v_off_, ldv_)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


class _Emitter:
    """What the stages of a micro-kernel's IR share: the builder, the vector type, the
    block's shape and the mode's bits."""

    def __init__(self, builder, simd, mode, MR, NV):
        self.builder, self.simd, self.mode, self.MR, self.NV = builder, simd, mode, MR, NV
        self.n_acc = MR * NV
        self.zero_v = ir.Constant(simd.vty, [ir.Constant(simd.vty.element, 0.0)] * simd.lanes)

    def bit(self, b):
        """Whether the mode has bit ``b``."""
        const = self.simd.const
        return self.builder.icmp_unsigned("!=", self.builder.and_(self.mode, const(b)), const(0))

    def row_off(self, base, ld, r, v):
        """The offset of row ``r``, vector ``v`` of a block at ``base`` (rows ``ld`` apart)."""
        b, const = self.builder, self.simd.const
        return b.add(base, b.add(b.mul(const(r), ld), const(v * self.simd.lanes)))

    def merge(self, *incoming):
        """One phi per accumulator over ``(values, block)`` pairs."""
        phis = [self.builder.phi(self.simd.vty) for _ in range(self.n_acc)]
        for values, blk in incoming:
            for phi, value in zip(phis, values):
                phi.add_incoming(value, blk)
        return phis


def _emit_init(em, cptr, pv, v_off_, ldv_):
    """The chains' starting values: C, zero or one scalar per row."""
    builder, simd, MR, NV = em.builder, em.simd, em.MR, em.NV
    blk_c = builder.append_basic_block("gemm.init_c")
    blk_row = builder.append_basic_block("gemm.init_row")
    blk_init = builder.append_basic_block("gemm.init")
    blk_not_c = builder.append_basic_block("gemm.init_not_c")
    builder.cbranch(builder.or_(em.bit(INIT_ZERO), em.bit(INIT_ROW)), blk_not_c, blk_c)
    builder.position_at_end(blk_not_c)
    from_zero = builder.block
    builder.cbranch(em.bit(INIT_ROW), blk_row, blk_init)
    builder.position_at_end(blk_c)
    init_c = [builder.load(cptr[r][v], align=simd.esize) for r in range(MR) for v in range(NV)]
    builder.branch(blk_init)
    builder.position_at_end(blk_row)
    rows = [simd.splat(builder.load(builder.gep(pv, [builder.add(v_off_, builder.mul(simd.const(r), ldv_))])))
            for r in range(MR)]
    init_row = [rows[r] for r in range(MR) for v in range(NV)]
    builder.branch(blk_init)
    builder.position_at_end(blk_init)
    return em.merge((init_c, blk_c), (init_row, blk_row), ([em.zero_v] * em.n_acc, from_zero))


def _emit_k_loops(em, init, pa, a_off_, sam_, sak_, pb, b_off_, ldb_, K_):
    """The k loop, fused or not; returns the chains' values after it."""
    builder, simd, MR, NV, const = em.builder, em.simd, em.MR, em.NV, em.simd.const
    blk_done = builder.append_basic_block("gemm.done")
    blk_pick = builder.append_basic_block("gemm.pick")
    builder.cbranch(builder.icmp_signed(">", K_, const(0)), blk_pick, blk_done)
    pre = builder.block
    builder.position_at_end(blk_pick)
    loops = [builder.append_basic_block("gemm.loop_fma"), builder.append_basic_block("gemm.loop_plain")]
    builder.cbranch(em.bit(FUSED), loops[0], loops[1])
    ends = []
    for fused, blk in zip((True, False), loops):
        builder.position_at_end(blk)
        k = builder.phi(simd.i64)
        k.add_incoming(const(0), blk_pick)
        acc = [builder.phi(simd.vty) for _ in range(em.n_acc)]
        brow = builder.add(b_off_, builder.mul(k, ldb_))
        b = [simd.load(pb, builder.add(brow, const(v * simd.lanes))) for v in range(NV)]
        acol = builder.add(a_off_, builder.mul(k, sak_))
        new = []
        for r in range(MR):
            a = simd.splat(builder.load(builder.gep(pa, [builder.add(acol, builder.mul(const(r), sam_))])))
            for v in range(NV):
                q = r * NV + v
                if fused:
                    new.append(builder.call(simd.fma, [a, b[v], acc[q]]))
                else:
                    new.append(builder.fadd(acc[q], builder.fmul(a, b[v])))
        k_next = builder.add(k, const(1))
        k.add_incoming(k_next, blk)
        for q in range(em.n_acc):
            acc[q].add_incoming(init[q], blk_pick)
            acc[q].add_incoming(new[q], blk)
        builder.cbranch(builder.icmp_signed("<", k_next, K_), blk, blk_done)
        ends.append((new, blk))
    builder.position_at_end(blk_done)
    return em.merge((init, pre), *ends)


def _emit_stores(em, out, cptr, pv, v_off_, ldv_):
    """The epilogue (ReLU, or the mask), then the stores."""
    builder, simd, MR, NV, zero_v = em.builder, em.simd, em.MR, em.NV, em.zero_v
    blk_relu = builder.append_basic_block("gemm.relu")
    blk_mask = builder.append_basic_block("gemm.mask")
    blk_test_mask = builder.append_basic_block("gemm.test_mask")
    blk_store = builder.append_basic_block("gemm.store")
    builder.cbranch(em.bit(RELU), blk_relu, blk_test_mask)
    builder.position_at_end(blk_test_mask)
    builder.cbranch(em.bit(MASK), blk_mask, blk_store)
    builder.position_at_end(blk_relu)
    relu = [builder.select(builder.fcmp_ordered(">", c, zero_v), c, zero_v) for c in out]
    builder.branch(blk_store)
    builder.position_at_end(blk_mask)
    masked = []
    for r in range(MR):
        for v in range(NV):
            m = simd.load(pv, em.row_off(v_off_, ldv_, r, v))
            masked.append(builder.select(builder.fcmp_ordered(">", m, zero_v), out[r * NV + v], zero_v))
    builder.branch(blk_store)
    builder.position_at_end(blk_store)
    final = em.merge((out, blk_test_mask), (relu, blk_relu), (masked, blk_mask))
    for r in range(MR):
        for v in range(NV):
            builder.store(final[r * NV + v], cptr[r][v], align=simd.esize)


# 4 x 2: 8 accumulators, 2 loads and a broadcast, 11 of AVX2's 16 registers. Rows left
# over: 1 x 8 and 1 x 4, whose independent chains hide the FMA latency, then 1 x 1.
_k4x2 = _kernel(4, 2)
_k4x1 = _kernel(4, 1)
_k1x8 = _kernel(1, 8)
_k1x4 = _kernel(1, 4)
_k1x1 = _kernel(1, 1)


@njit(cache=True)
def gemm(A, a_off, sam, sak, B, b_off, ldb, C, c_off, ldc, M, N, K, V, v_off, ldv, mode):
    """``C[m, n] = epilogue(c0 + sum over k in order of A[m, k] B[k, n])``, in place.

    Parameters
    ----------
    A, B, C, V : 1-D contiguous arrays of one float dtype (flat views of matrices)
    a_off, sam, sak : int
        ``A[m, k]`` is ``A[a_off + m*sam + k*sak]`` (any strides: A is read by scalars).
    b_off, ldb : int
        ``B[k, n]`` is ``B[b_off + k*ldb + n]`` (rows contiguous: B is read by vectors).
    c_off, ldc : int
        ``C[m, n]`` is ``C[c_off + m*ldc + n]``.
    M, N, K : int
        Sizes; nothing is checked, the caller keeps every index inside its array.
    V, v_off, ldv :
        The row scalars of ``INIT_ROW`` or the mask of ``MASK``; any array otherwise.
    mode : int
        ``FUSED``, one of ``INIT_ZERO`` and ``INIT_ROW`` (else ``c0`` is C's value),
        one of ``RELU`` and ``MASK``, or'ed together (V serves ``INIT_ROW`` or
        ``MASK``, not both).
    """
    lanes = VBYTES // A.itemsize
    zero = np.zeros(1, C.dtype)[0]
    n_pairs = N - N % (2 * lanes)  # columns in blocks of two vectors
    n_vecs = N - N % lanes  # ... and then one more vector, if it fits
    m_full = M - M % 4
    for n0 in range(0, n_vecs, 2 * lanes):  # a panel of B stays in L1 across the rows
        for m0 in range(0, m_full, 4):
            a, c, v = a_off + m0 * sam, c_off + m0 * ldc + n0, v_off + m0 * ldv
            if n0 < n_pairs:
                _k4x2(A, a, sam, sak, B, b_off + n0, ldb, C, c, ldc, K, V, v + _col(mode, n0), ldv, mode)
            else:
                _k4x1(A, a, sam, sak, B, b_off + n0, ldb, C, c, ldc, K, V, v + _col(mode, n0), ldv, mode)
    for m in range(m_full, M):
        a, n0 = a_off + m * sam, 0
        while n0 < n_vecs:
            c, v = c_off + m * ldc + n0, v_off + m * ldv + _col(mode, n0)
            if n0 + 8 * lanes <= n_vecs:
                _k1x8(A, a, sam, sak, B, b_off + n0, ldb, C, c, ldc, K, V, v, ldv, mode)
                n0 += 8 * lanes
            elif n0 + 4 * lanes <= n_vecs:
                _k1x4(A, a, sam, sak, B, b_off + n0, ldb, C, c, ldc, K, V, v, ldv, mode)
                n0 += 4 * lanes
            else:
                _k1x1(A, a, sam, sak, B, b_off + n0, ldb, C, c, ldc, K, V, v, ldv, mode)
                n0 += lanes
    # columns left over: eight rows' chains at a time, so that they overlap
    for n in range(n_vecs, N):
        m = 0
        while m + 8 <= M:
            _chains8(A, a_off + m * sam, sam, sak, B, b_off + n, ldb, C, c_off + m * ldc + n, ldc, K,
                     V, v_off + m * ldv + _col(mode, n), ldv, mode, zero)
            m += 8
        for m in range(m, M):
            c = _start(C[c_off + m * ldc + n], V, v_off + m * ldv, mode, zero)
            for k in range(K):
                c = _step(A[a_off + m * sam + k * sak], B[b_off + k * ldb + n], c, mode)
            C[c_off + m * ldc + n] = _finish(c, V, v_off + m * ldv + n, mode, zero)


@intrinsic
def _tile_transpose(typingctx, S, s_off, lds, T, t_off, ldt):
    """``T[t_off + b*ldt + a] = S[s_off + a*lds + b]`` for a square tile of one vector's
    lanes (8 float32 or 4 float64): the classic unpack / shuffle / lane-swap sequence."""
    sig = types.void(S, s_off, lds, T, t_off, ldt)

    def codegen(context, builder, signature, args):
        simd = Simd(context, builder, signature, args)
        lanes, shuf = simd.lanes, simd.shuffle
        ps, pt = simd.arrays(0, 3)
        s_off_, lds_, t_off_, ldt_ = simd.ints(1, 2, 4, 5)

        def row(off, ld, r):
            return builder.add(off, builder.mul(simd.const(r), ld))

        rows = [simd.load(ps, row(s_off_, lds_, a)) for a in range(lanes)]
        if lanes == 8:
            t = []
            for a in range(0, 8, 2):
                t.append(shuf(rows[a], rows[a + 1], [0, 8, 1, 9, 4, 12, 5, 13]))
                t.append(shuf(rows[a], rows[a + 1], [2, 10, 3, 11, 6, 14, 7, 15]))
            lo, hi = [0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]
            q = [shuf(t[0], t[2], lo), shuf(t[0], t[2], hi), shuf(t[1], t[3], lo), shuf(t[1], t[3], hi),
                 shuf(t[4], t[6], lo), shuf(t[4], t[6], hi), shuf(t[5], t[7], lo), shuf(t[5], t[7], hi)]
            first, second = [0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]
            cols = [shuf(q[b], q[b + 4], first) for b in range(4)] + [shuf(q[b], q[b + 4], second) for b in range(4)]
        else:
            t0 = shuf(rows[0], rows[1], [0, 4, 2, 6])
            t1 = shuf(rows[0], rows[1], [1, 5, 3, 7])
            t2 = shuf(rows[2], rows[3], [0, 4, 2, 6])
            t3 = shuf(rows[2], rows[3], [1, 5, 3, 7])
            cols = [shuf(t0, t2, [0, 1, 4, 5]), shuf(t1, t3, [0, 1, 4, 5]), shuf(t0, t2, [2, 3, 6, 7]),
                    shuf(t1, t3, [2, 3, 6, 7])]
        for b in range(lanes):
            builder.store(cols[b], simd.ptr(pt, row(t_off_, ldt_, b)), align=simd.esize)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def transpose(S, s_off, lds, T, t_off, ldt, rows, cols):
    """``T[t_off + n*ldt + j] = S[s_off + j*lds + n]`` for ``j < rows``, ``n < cols``:
    a (rows, cols) block of S transposed into T (flat arrays), in square tiles."""
    lanes = VBYTES // S.itemsize
    r_full = rows - rows % lanes
    c_full = cols - cols % lanes
    for n0 in range(0, c_full, lanes):
        for j0 in range(0, r_full, lanes):
            _tile_transpose(S, s_off + j0 * lds + n0, lds, T, t_off + n0 * ldt + j0, ldt)
        for j in range(r_full, rows):
            for n in range(n0, n0 + lanes):
                T[t_off + n * ldt + j] = S[s_off + j * lds + n]
    for n in range(c_full, cols):
        for j in range(rows):
            T[t_off + n * ldt + j] = S[s_off + j * lds + n]


@njit(inline="always")
def _col(mode, n):
    """The column offset into V: a mask has columns, row scalars do not."""
    return n if mode & MASK else 0


@njit(inline="always")
def _start(c, V, i, mode, zero):
    if mode & INIT_ZERO:
        return zero
    if mode & INIT_ROW:
        return V[i]
    return c


@njit(inline="always")
def _step(a, b, c, mode):
    return fma(a, b, c) if mode & FUSED else c + a * b


@njit(inline="always")
def _finish(c, V, i, mode, zero):
    if mode & RELU:
        return c if c > zero else zero
    if mode & MASK:
        return c if V[i] > zero else zero
    return c


@njit(inline="always")
def _chains8(A, a_off, sam, sak, B, b_off, ldb, C, c_off, ldc, K, V, v_off, ldv, mode, zero):
    """Eight scalar chains (rows ``0..7`` of one column), in eight registers."""
    c0 = _start(C[c_off], V, v_off, mode, zero)
    c1 = _start(C[c_off + ldc], V, v_off + ldv, mode, zero)
    c2 = _start(C[c_off + 2 * ldc], V, v_off + 2 * ldv, mode, zero)
    c3 = _start(C[c_off + 3 * ldc], V, v_off + 3 * ldv, mode, zero)
    c4 = _start(C[c_off + 4 * ldc], V, v_off + 4 * ldv, mode, zero)
    c5 = _start(C[c_off + 5 * ldc], V, v_off + 5 * ldv, mode, zero)
    c6 = _start(C[c_off + 6 * ldc], V, v_off + 6 * ldv, mode, zero)
    c7 = _start(C[c_off + 7 * ldc], V, v_off + 7 * ldv, mode, zero)
    for k in range(K):
        b = B[b_off + k * ldb]
        a = a_off + k * sak
        c0 = _step(A[a], b, c0, mode)
        c1 = _step(A[a + sam], b, c1, mode)
        c2 = _step(A[a + 2 * sam], b, c2, mode)
        c3 = _step(A[a + 3 * sam], b, c3, mode)
        c4 = _step(A[a + 4 * sam], b, c4, mode)
        c5 = _step(A[a + 5 * sam], b, c5, mode)
        c6 = _step(A[a + 6 * sam], b, c6, mode)
        c7 = _step(A[a + 7 * sam], b, c7, mode)
    C[c_off] = _finish(c0, V, v_off, mode, zero)
    C[c_off + ldc] = _finish(c1, V, v_off + ldv, mode, zero)
    C[c_off + 2 * ldc] = _finish(c2, V, v_off + 2 * ldv, mode, zero)
    C[c_off + 3 * ldc] = _finish(c3, V, v_off + 3 * ldv, mode, zero)
    C[c_off + 4 * ldc] = _finish(c4, V, v_off + 4 * ldv, mode, zero)
    C[c_off + 5 * ldc] = _finish(c5, V, v_off + 5 * ldv, mode, zero)
    C[c_off + 6 * ldc] = _finish(c6, V, v_off + 6 * ldv, mode, zero)
    C[c_off + 7 * ldc] = _finish(c7, V, v_off + 7 * ldv, mode, zero)
