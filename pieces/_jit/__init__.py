"""Numba machinery that the counter and the trainer share.

- ``cache``: Numba's on-disk cache keyed on every package file a kernel compiles in;
- ``llvm``: LLVM intrinsics of the CPU kernels (the fused multiply-add, bit casts);
- ``device``: which device runs the kernels (``"cpu"``, ``"cuda"``, ``"auto"``);
- ``cuda``: what the CUDA kernels share (exact rounding on the device, launches);
- ``staged``: the compiler of CPU kernels written as inlined stages (copy propagation,
  so that a stage's array arguments cost no reference counts).

``cache`` is installed at ``import pieces`` time, before any kernel is defined; the
others are imported by the kernels that use them (``cuda`` only where a CUDA kernel is
built).
"""
