"""The four sums of one segment of the certified sweep, register-blocked.

On a segment, layer ``l``'s input neuron ``i`` is ``a_i x + b_i``, known to within
``ea_i``, ``eb_i``. The next layer's slopes, intercepts and their error bounds are four
sums over the live inputs ``i`` (those not off on the segment)::

    s_j  = sum_i W[i, j] a_i          t_j  = b_j + sum_i W[i, j] b_i
    ea_j = sum_i |W[i, j]| qa_i        eb_j = sum_i |W[i, j]| qb_i

with ``qa_i = gamma |a_i| + ea_i`` (``_certified_bounds._bound_terms``). :func:`sums4`
computes all four with one fused multiply-add per term, each entry one chain over the
live inputs in order (any order is covered by the bound ``gamma_{n+1} sum |w| |a|``).

Speed: Numba's loops keep the four accumulator rows in memory and reload and store
them for every input; here a block of 8 columns of all four rows stays in registers
(8 AVX2 vectors) while the inputs stream past, each contributing one load of W, one
mask for ``|W|`` and four FMAs per vector. This is the same register blocking as
``_gemm_cpu``; the rows of W and the inputs' terms are gathered by the live list, so
inputs off on the segment cost nothing.

Example
-------
>>> import numpy as np
>>> W = np.arange(12.0).reshape(2, 6) - 5.0   # 2 inputs, 6 outputs
>>> a = np.array([1.0, 7.0]); b = np.array([2.0, 7.0])      # only input 0 live
>>> Q = np.array([0.5, 7.0, 0.25, 7.0])                      # qa = Q[0:2], qb = Q[2:4]
>>> C = np.zeros((4, 6)); C[1] = 1.0                         # intercepts start at b = 1
>>> sums4(W.ravel(), 0, 6, np.array([0]), 1, a, 0, b, 0, Q, 0, 2, C.ravel(), 0, 6, 6)
>>> C[:, 0].tolist()
[-5.0, -9.0, 2.5, 1.25]
"""

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .._jit.llvm import Simd, fma

__all__ = ["sums4"]


def _block(NV):
    """The kernel for ``NV`` vectors of columns: a Numba intrinsic taking the arguments
    of :func:`sums4` less ``n_out`` (one block, at ``w_off`` in W and ``c_off`` in C)."""

    @intrinsic
    def kernel(typingctx, W, w_off, ldw, live, n_live, A, a_off, B, b_off, Q, q_off, ldq, C, c_off, ldc):
        sig = types.void(W, w_off, ldw, live, n_live, A, a_off, B, b_off, Q, q_off, ldq, C, c_off, ldc)

        def codegen(context, builder, signature, args):
            simd = Simd(context, builder, signature, args)
            const, vptr, splat, vfma = simd.const, simd.ptr, simd.splat, simd.fma
            vty, esize, lanes = simd.vty, simd.esize, simd.lanes
            ivty = ir.VectorType(simd.i64, lanes)
            abs_mask = ir.Constant(ivty, [ir.Constant(simd.i64, (1 << 63) - 1)] * lanes)
            pw, pl, pa, pb, pq, pc = simd.arrays(0, 3, 5, 7, 9, 12)
            w_off_, ldw_, n_live_, a_off_, b_off_, q_off_, ldq_, c_off_, ldc_ = simd.ints(1, 2, 4, 6, 8, 10, 11, 13, 14)

            cptr = [[vptr(pc, builder.add(c_off_, builder.add(builder.mul(const(r), ldc_), const(v * lanes))))
                     for v in range(NV)] for r in range(4)]
            init = [builder.load(cptr[r][v], align=esize) for r in range(4) for v in range(NV)]
            pre = builder.block
            blk_loop = builder.append_basic_block("sums4.loop")
            blk_done = builder.append_basic_block("sums4.done")
            builder.cbranch(builder.icmp_signed(">", n_live_, const(0)), blk_loop, blk_done)
            builder.position_at_end(blk_loop)
            q = builder.phi(simd.i64)
            q.add_incoming(const(0), pre)
            acc = [builder.phi(vty) for _ in range(4 * NV)]
            i = builder.load(builder.gep(pl, [q]))
            qi = builder.add(q_off_, i)
            x = [splat(builder.load(builder.gep(p, [off]))) for p, off in
                 ((pa, builder.add(a_off_, i)), (pb, builder.add(b_off_, i)), (pq, qi), (pq, builder.add(qi, ldq_)))]
            row = builder.add(w_off_, builder.mul(i, ldw_))
            new = [None] * (4 * NV)
            for v in range(NV):
                w = simd.load(pw, builder.add(row, const(v * lanes)))
                wa = builder.bitcast(builder.and_(builder.bitcast(w, ivty), abs_mask), vty)
                for r, factor in enumerate((w, w, wa, wa)):
                    new[r * NV + v] = builder.call(vfma, [factor, x[r], acc[r * NV + v]])
            q_next = builder.add(q, const(1))
            q.add_incoming(q_next, blk_loop)
            for k in range(4 * NV):
                acc[k].add_incoming(init[k], pre)
                acc[k].add_incoming(new[k], blk_loop)
            builder.cbranch(builder.icmp_signed("<", q_next, n_live_), blk_loop, blk_done)
            builder.position_at_end(blk_done)
            out = [builder.phi(vty) for _ in range(4 * NV)]
            for k in range(4 * NV):
                out[k].add_incoming(init[k], pre)
                out[k].add_incoming(new[k], blk_loop)
            for r in range(4):
                for v in range(NV):
                    builder.store(out[r * NV + v], cptr[r][v], align=esize)
            return context.get_dummy_value()

        return sig, codegen

    return kernel


# 2 vectors: 8 accumulators, 4 broadcasts, W and |W|: AVX2's 16 registers
_b2 = _block(2)
_b1 = _block(1)


@njit(cache=True, inline="always")
def sums4(W, w_off, ldw, live, n_live, A, a_off, B, b_off, Q, q_off, ldq, C, c_off, ldc, n_out):
    """Add the four sums of a segment to ``C``, in place.

    Parameters
    ----------
    W : 1-D float64 array
        The layer's weights, ``W[i, j]`` at ``W[w_off + i*ldw + j]``.
    live : 1-D int64 array
        The live inputs' indices ``i``, ``n_live`` of them, in summation order.
    A, B, Q : 1-D float64 arrays
        Input ``i``'s ``a_i`` at ``A[a_off + i]``, ``b_i`` at ``B[b_off + i]``, ``qa_i`` at
        ``Q[q_off + i]`` and ``qb_i`` at ``Q[q_off + ldq + i]``.
    C : 1-D float64 array
        Rows ``s, t, ea, eb`` at ``C[c_off + r*ldc + j]``, holding the chains' starting
        values; each ends as ``start + sum over q in order`` of its terms, one FMA each.
    n_out : int
        Columns ``j`` (nothing is checked: the caller keeps every index inside).
    """
    j = 0
    while j + 8 <= n_out:
        _b2(W, w_off + j, ldw, live, n_live, A, a_off, B, b_off, Q, q_off, ldq, C, c_off + j, ldc)
        j += 8
    if j + 4 <= n_out:
        _b1(W, w_off + j, ldw, live, n_live, A, a_off, B, b_off, Q, q_off, ldq, C, c_off + j, ldc)
        j += 4
    for jj in range(j, n_out):
        s = C[c_off + jj]
        t = C[c_off + ldc + jj]
        ea = C[c_off + 2 * ldc + jj]
        eb = C[c_off + 3 * ldc + jj]
        for q in range(n_live):
            i = live[q]
            w = W[w_off + i * ldw + jj]
            wa = abs(w)
            s = fma(w, A[a_off + i], s)
            t = fma(w, B[b_off + i], t)
            ea = fma(wa, Q[q_off + i], ea)
            eb = fma(wa, Q[q_off + ldq + i], eb)
        C[c_off + jj] = s
        C[c_off + ldc + jj] = t
        C[c_off + 2 * ldc + jj] = ea
        C[c_off + 3 * ldc + jj] = eb
