"""Which device runs the kernels: ``"cpu"``, ``"cuda"`` or ``"auto"``.

Asking for ``"cuda"`` where there is no usable GPU is an error, never a silent run on
the CPU; ``"auto"`` is the one spelling that falls back. numba-cuda is imported only
when a GPU is asked for, so CPU users never pay for it (or need it installed).

Examples
--------
>>> resolve_device("cpu", "counting")
'cpu'
>>> resolve_device("gpu", "counting")
Traceback (most recent call last):
...
ValueError: unknown device 'gpu'; expected one of cpu, cuda, auto
"""

from __future__ import annotations

import os

from .. import config

__all__ = ["cuda_status", "resolve_device", "simulated", "gpu_description"]


def simulated() -> bool:
    """True when numba-cuda runs kernels in its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def cuda_status():
    """``(usable, why_not)``: whether CUDA kernels can run here, and if not, why."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba-cuda is a dependency
        return False, f"numba-cuda is not installed ({exc})"
    try:
        if cuda.is_available():
            return True, ""
    except Exception as exc:  # the driver can fail in many ways; report, never crash
        return False, f"the CUDA driver failed: {exc}".splitlines()[0]
    return False, "no CUDA GPU or driver was found"


def resolve_device(device, what):
    """The device that runs ``what``: ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    ValueError
        For a name that is not in ``config.DEVICES``.
    RuntimeError
        For ``"cuda"`` when no GPU is usable (``"auto"`` falls back to the CPU instead).
    """
    if device not in config.DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {', '.join(config.DEVICES)}")
    if device == "cpu":
        return "cpu"
    ok, why = cuda_status()
    if ok:
        return "cuda"
    if device == "auto":
        return "cpu"
    raise RuntimeError(f"{what} on device='cuda': {why}; use device 'cpu' (or 'auto' to fall back)")


def gpu_description():
    """The GPU that ``device="cuda"`` runs on, for a run's metadata (call only after
    :func:`resolve_device` said ``"cuda"``)."""
    from importlib.metadata import PackageNotFoundError, version

    from numba import cuda

    try:
        nc = version("numba-cuda")
    except PackageNotFoundError:  # pragma: no cover
        nc = "unknown"
    if simulated():
        return {"gpu": "CUDA simulator", "numba-cuda": nc}
    dev = cuda.get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return {"gpu": name, "compute_capability": list(dev.compute_capability), "numba-cuda": nc}
