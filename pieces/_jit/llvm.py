"""LLVM pieces shared by the Numba CPU kernels: the fused multiply-add, and the
vocabulary of intrinsics that work on flat arrays through SIMD vectors (:class:`Simd`:
their arguments, vector pointers, loads, broadcasts, shuffles and FMAs).

Example
-------
>>> from numba import njit
>>> njit(lambda a, b, c: fma(a, b, c))(1.0 + 2.0**-30, 1.0 - 2.0**-30, -1.0) == -(2.0**-60)
True
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["fma", "Simd", "VBYTES"]

#: bytes of one SIMD vector (AVX2: 8 float32 or 4 float64 lanes)
VBYTES = 32


@intrinsic
def fma(typingctx, a, b, c):
    """``a*b + c`` rounded once, in the type of ``a`` (LLVM's ``llvm.fma``: the FMA
    instruction, or libm's correctly rounded ``fma`` where the CPU has none)."""
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        t = context.get_value_type(signature.return_type)
        fn = builder.module.declare_intrinsic("llvm.fma", [t], ir.FunctionType(t, [t, t, t]))
        return builder.call(fn, args)

    return sig, codegen


class Simd:
    """The SIMD vocabulary of one intrinsic's codegen: its arguments, and ``VBYTES``
    vectors of the dtype of its first argument (an array).

    Attributes ``vty`` (the vector type), ``esize`` (element bytes) and ``lanes``;
    ``fma`` is the declared vector ``llvm.fma``. Offsets are LLVM int64 values, in
    elements.
    """

    def __init__(self, context, builder, signature, args):
        self.context, self.builder, self.signature, self.args = context, builder, signature, args
        dtype = signature.args[0].dtype
        self.esize = dtype.bitwidth // 8
        self.lanes = VBYTES // self.esize
        self.vty = ir.VectorType(context.get_value_type(dtype), self.lanes)
        self.i32 = ir.IntType(32)
        self.i64 = ir.IntType(64)
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.vty, [self.vty] * 3),
                                                  f"llvm.fma.v{self.lanes}f{self.esize * 8}")

    def arrays(self, *ks):
        """The data pointers of array arguments ``ks``."""
        return [self.context.make_array(self.signature.args[k])(self.context, self.builder, self.args[k]).data
                for k in ks]

    def ints(self, *ks):
        """Integer arguments ``ks``, as LLVM int64 values."""
        return [self.context.cast(self.builder, self.args[k], self.signature.args[k], types.int64) for k in ks]

    def const(self, v):
        """``v`` as an LLVM int64 constant."""
        return ir.Constant(self.i64, v)

    def ptr(self, p, off):
        """A vector pointer to ``p[off]``."""
        return self.builder.bitcast(self.builder.gep(p, [off]), self.vty.as_pointer())

    def load(self, p, off):
        """The vector at ``p[off]`` (element-aligned)."""
        return self.builder.load(self.ptr(p, off), align=self.esize)

    def splat(self, x):
        """The scalar ``x`` in every lane."""
        undef = ir.Constant(self.vty, ir.Undefined)
        x = self.builder.insert_element(undef, x, ir.Constant(self.i32, 0))
        return self.builder.shuffle_vector(x, undef, ir.Constant(ir.VectorType(self.i32, self.lanes), [0] * self.lanes))

    def shuffle(self, x, y, idx):
        """Lanes ``idx`` of the concatenation of ``x`` and ``y``."""
        return self.builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(self.i32, len(idx)), idx))
