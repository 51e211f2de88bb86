"""Writing files whole or not at all: a temporary file in the same directory, fsync,
then an atomic rename."""

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "check_writable"]


def atomic_write(path, data):
    """Write ``data`` (str or bytes) to ``path`` atomically."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_writable(path):
    """``None`` if a file can be created at ``path``, else the reason (one line)."""
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
        return f"cannot write {path}: {parent} is not a writable directory"
    return None
