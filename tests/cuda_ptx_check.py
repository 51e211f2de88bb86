"""Compile every CUDA kernel variant to PTX for a Hopper GPU (sm_90), without a GPU.

The CUDA simulator runs kernels as Python, so it never type-checks them for the real
target. This script does: it runs the real host wrappers with numpy arrays standing in
for device arrays, and compiles each kernel launch's Python function with the argument
types of that launch. Kernels that compute in float32 (fp32, fp16, bf16) must contain
no float64 arithmetic, or the emulation would round at the wrong precision; the
counter must contain no fused multiply-add, or its breakpoints would not be the CPU's. It needs
NVVM and NVRTC (the ``test`` extra installs them) and runs without the simulator::

    python tests/cuda_ptx_check.py

It prints one line per kernel variant and exits 1 if any fails. Everything happens in
``main()``: importing this module (pytest's doctest collection does) changes nothing.
"""

import os
import re
import sys
import time

CC = (9, 0)

#: float64 arithmetic in PTX
_F64_OP = re.compile(r"\b(?:add|sub|mul|fma|div|sqrt)(?:\.[a-z]+)*\.f64\b")


def main():
    os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
    if "numba.cuda" in sys.modules:
        raise SystemExit("cuda_ptx_check: run it in a fresh process (numba.cuda is imported already)")
    import numba
    import numba.cuda.dispatcher as dispatcher
    import numpy as np
    from numba import cuda

    class Device:
        compute_capability = CC

    # device functions compile for "the current device": say it is a Hopper
    dispatcher.get_current_device = lambda: Device()

    class HostArray(np.ndarray):
        def copy_to_host(self, out=None):
            if out is None:
                return np.array(self)
            out[...] = self
            return out

    def dev(a):
        return np.array(a).view(HostArray)

    cuda.to_device = dev
    cuda.device_array = lambda shape, dtype: np.zeros(shape, dtype).view(HostArray)

    from pieces import ReLUNet, config
    from pieces.count import _certified_cuda, _count_cpu, _count_cuda
    from pieces.train import _train_cuda
    from pieces.train._train_cpu import param_layout
    from pieces.precision import parse_precision

    _count_cuda.to_device = _train_cuda.to_device = _certified_cuda.to_device = lambda a: dev(np.ascontiguousarray(a))
    config.CUDA_WORKSPACE_BYTES = 2**31  # no device to ask for its free memory
    results = []

    class Compiler:
        """Stands in for a kernel: ``k[launch](*args)`` compiles ``k`` for ``args``' types."""

        def __init__(self, kernel, name, f32_only=False, no_fma=False, needs=None):
            self.kernel, self.name, self.f32_only, self.no_fma = kernel, name, f32_only, no_fma
            self.needs = needs  # a PTX instruction the kernel must contain

        def __getitem__(self, launch):
            def compile_for(*args):
                sig = tuple(numba.typeof(np.asarray(a) if isinstance(a, np.ndarray) else a) for a in args)
                t0 = time.perf_counter()
                try:
                    ptx, _ = cuda.compile_ptx(self.kernel.py_func, sig, cc=CC)
                except Exception as exc:  # report every failure, then exit 1
                    results.append((self.name, False, f"{type(exc).__name__}: {str(exc).splitlines()[0:1]}"))
                    print(exc, file=sys.stderr)
                    return
                f64 = len(_F64_OP.findall(ptx)) if self.f32_only else 0
                fused = len(re.findall(r"\bfma\.", ptx)) if self.no_fma else 0
                local = len(re.findall(r"\b(?:ld|st)\.local\b", ptx))
                what = (f"{len(ptx.splitlines())} PTX lines, {local} local-memory accesses, "
                        f"{time.perf_counter() - t0:.1f} s")
                if f64:
                    what += f"; {f64} float64 operations in a float32 kernel"
                if fused:
                    what += f"; {fused} fused multiply-adds where the CPU rounds twice"
                missing = self.needs is not None and self.needs not in ptx
                if missing:
                    what += f"; no {self.needs}"
                results.append((self.name, f64 == 0 and fused == 0 and not missing, what))

            return compile_for

    nets = [ReLUNet.random([3, 4], seed=0), ReLUNet.random([2], seed=1)]
    _count_cuda._count_kernel = Compiler(_count_cuda._count_kernel, "count", no_fma=True)
    _count_cuda.count_batch(*_count_cpu.pack(nets), 0.0, 1.0, 1e-12, 1e-9, 8, 1)
    # the exact counter's twin may fuse (its bounds allow it), but not in Dekker's product
    _certified_cuda._count_kernel = Compiler(_certified_cuda._count_kernel, "count exact")
    _certified_cuda.count_batch(*_count_cpu.pack(nets), 0.0, 1.0, 8, 1)

    real_kernel = _train_cuda._kernel
    sizes = np.array([1, 3, 4, 1], np.int64)
    P = param_layout(sizes)[2]
    for prec in ("fp64", "fp32", "fp16", "bf16", "p10", "fp16 native"):
        fmt = parse_precision(prec.split()[0])
        dt = fmt.compute_dtype
        config.CUDA_NATIVE_HALF = prec.endswith("native")
        for shared in (True, False) if not config.CUDA_NATIVE_HALF else (True,):
            config.CUDA_SHARED_BYTES = 48 * 1024 if shared else 0
            where = "shared" if shared else "global"
            needs = "cvt.rn.f16.f32" if prec == "fp16" and config.CUDA_FP16_CONVERT else None
            _train_cuda._kernel = lambda kind, dtype, sh, _p=prec, _w=where, _n=needs: Compiler(
                real_kernel(kind, dtype, sh), f"{kind} {_p} {_w}", f32_only=np.dtype(dtype) != np.float64, needs=_n)
            thetas = np.random.default_rng(0).normal(size=(2, P)).astype(dt)
            X = np.linspace(0, 1, 8).astype(dt)
            lr = np.full(4, 0.01, dt)
            bc = np.ones((4, 2), dt)
            hp = np.array([0.9, 0.1, 0.999, 0.001, 1e-4], dt)
            _train_cuda.run_steps_batch(thetas, thetas * 0, thetas * 0, sizes, X, X, lr, bc, hp, 2, 0, 4, 4,
                                        np.arange(2), np.ones(2, np.bool_), fmt.rounding)
            if not config.CUDA_NATIVE_HALF:
                _train_cuda.evaluate_batch(thetas, sizes, X, X, fmt.rounding)
    width = max(len(r[0]) for r in results)
    for name, ok, what in results:
        print(f"{name:<{width}}  {'ok  ' if ok else 'FAIL'}  {what}")
    return 0 if results and all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
