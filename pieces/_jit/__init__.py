"""Numba machinery that the counter and the trainer share.

- ``cache``: Numba's on-disk cache keyed on every package file a kernel compiles in;
- ``llvm``: LLVM intrinsics of the CPU kernels (the fused multiply-add, bit casts);
- ``device``: which device runs the kernels (``"cpu"``, ``"cuda"``, ``"auto"``);
- ``cuda``: what the CUDA kernels share (exact rounding on the device, launches).

Nothing here is imported at ``import pieces`` time except ``cache``, which must be
installed before any kernel is defined.
"""
