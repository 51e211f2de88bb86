"""LLVM pieces shared by the Numba CPU kernels: the fused multiply-add, the argument
handling of intrinsics that work on flat arrays through SIMD vectors, and those
intrinsics' vector vocabulary (:class:`Simd`).

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

__all__ = ["fma", "int_arg", "data_arg", "simd_type", "Simd", "VBYTES"]

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


def int_arg(context, builder, signature, args, k):
    """Argument ``k`` of an intrinsic as an LLVM int64."""
    return context.cast(builder, args[k], signature.args[k], types.int64)


def data_arg(context, builder, signature, args, k):
    """The data pointer of array argument ``k`` of an intrinsic."""
    return context.make_array(signature.args[k])(context, builder, args[k]).data


def simd_type(context, dtype):
    """``(vector type, element bytes, lanes)`` of one ``VBYTES`` vector of ``dtype``."""
    esize = dtype.bitwidth // 8
    lanes = VBYTES // esize
    return ir.VectorType(context.get_value_type(dtype), lanes), esize, lanes


class Simd:
    """The SIMD vocabulary of one intrinsic's codegen: ``VBYTES`` vectors of ``dtype``.

    Attributes ``vty``, ``esize`` and ``lanes`` are :func:`simd_type`'s; ``fma`` is the
    declared vector ``llvm.fma``. Offsets are LLVM int64 values, in elements.
    """

    def __init__(self, context, builder, dtype):
        self.builder = builder
        self.vty, self.esize, self.lanes = simd_type(context, dtype)
        self.i32 = ir.IntType(32)
        self.i64 = ir.IntType(64)
        self.fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(self.vty, [self.vty] * 3),
                                                  f"llvm.fma.v{self.lanes}f{self.esize * 8}")

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
