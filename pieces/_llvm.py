"""LLVM pieces shared by the Numba CPU kernels: the fused multiply-add, and the
argument handling of intrinsics that work on flat arrays through SIMD vectors.

Example
-------
>>> from numba import njit
>>> njit(lambda a, b, c: fma(a, b, c))(1.0 + 2.0**-30, 1.0 - 2.0**-30, -1.0) == -(2.0**-60)
True
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["fma", "int_arg", "data_arg", "simd_type", "VBYTES"]

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
