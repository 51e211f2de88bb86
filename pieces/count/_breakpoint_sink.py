"""Where a chunked count's breakpoints go: kept in memory, dropped, or streamed to ``.npy``.

Chunks finish in any order; the sink puts their breakpoints back in the order of x. A
file is written beside its final name and renamed only once the count is complete, so
an interrupted count leaves no half-written file.

Examples
--------
>>> import numpy as np
>>> s = BreakpointSink(True, 0.0, 1 << 20)
>>> s.add(0.5, 1.0, np.array([0.75]), (0.01, np.array([0.5])))
>>> s.add(0.0, 0.5, np.array([0.25]), None)
>>> s.result(4, 4).breakpoints.tolist()
[0.25, 0.5, 0.75]
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ._count_errors import CountMemoryError
from ._piece_count import PieceCount

__all__ = ["BreakpointSink"]

_HEADER_BYTES = 128  # an .npy version 1.0 header for a 1-D float64 array of any length


def _npy_header(n):
    text = "{'descr': '<f8', 'fortran_order': False, 'shape': (%d,), }" % n
    body = text.ljust(_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class BreakpointSink:
    """Breakpoints of a count, chunk by chunk.

    Parameters
    ----------
    mode : bool or path
        True: keep them (up to ``budget`` bytes, else ``CountMemoryError``); False:
        drop them; a path: stream them to that ``.npy`` file.
    a : float
        Left end of the interval (where the first chunk starts).
    budget : int
        Bytes the kept breakpoints may take (0 where they are not kept).
    """

    def __init__(self, mode, a, budget):
        self.keep = mode is True
        self.path = None if isinstance(mode, bool) else Path(mode)
        if not isinstance(mode, bool) and not isinstance(mode, (str, os.PathLike)):
            raise ValueError(f"breakpoints must be True, False or a path to an .npy file, got {mode!r}")
        self.budget = budget if self.keep else 0
        self.frontier = a
        self.pending = {}
        self.held = None  # (lo, breakpoints) of the last chunk in order, not yet emitted
        self.kept = []
        self.n = 0
        self.fh = None
        if self.path is not None:
            fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                            dir=self.path.parent if str(self.path.parent) else ".")
            self.fh = os.fdopen(fd, "wb")
            self.fh.write(_npy_header(0))

    def add(self, lo, hi, bps, seam):
        """The breakpoints ``bps`` of the chunk ``[lo, hi]``; ``seam`` None for the
        first chunk, else ``(w, near)``: the breakpoints ``near`` in ``[lo - w, lo + w]``
        as the unchunked count computes them, which replace the chunks' own there."""
        if not (self.keep or self.fh):
            return
        self.pending[lo] = (hi, bps, seam)
        while self.frontier in self.pending:
            c = self.frontier
            hi, bps, seam = self.pending.pop(c)
            if seam is not None:
                hlo, hb = self.held
                w = min(seam[0], 0.25 * (c - hlo), 0.25 * (hi - c))
                near = seam[1]
                self._emit(hb[hb < c - w])
                self._emit(near[(near >= c - w) & (near <= c + w)])
                bps = bps[bps > c + w]
            self.held = (c, bps)
            self.frontier = hi

    def _emit(self, arr):
        self.n += arr.size
        if self.keep:
            if 8 * self.n > self.budget:
                raise CountMemoryError(
                    f"keeping the breakpoints needs more than {self.budget} bytes (half of max_memory): "
                    "count with breakpoints=False, stream them to a file (a .npy path; "
                    "pieces count --breakpoints FILE), or raise max_memory")
            self.kept.append(arr)
        else:
            self.fh.write(np.ascontiguousarray(arr, dtype="<f8").tobytes())

    def result(self, pieces, regions):
        """The :class:`PieceCount`, once every chunk is in (the file written)."""
        if self.held is not None:
            self._emit(self.held[1])
            self.held = None
        if (self.keep or self.fh) and (self.pending or self.n != pieces - 1):
            raise RuntimeError(f"internal error: {self.n} breakpoints for {pieces} pieces")
        bps = None
        if self.keep:
            bps = self.kept[0] if len(self.kept) == 1 else np.concatenate(self.kept) if self.kept else np.empty(0)
        elif self.fh is not None:
            self.fh.seek(0)
            self.fh.write(_npy_header(self.n))
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            self.fh = None
            os.chmod(self.tmp, 0o644)
            os.replace(self.tmp, self.path)
        return PieceCount(int(pieces), int(regions), bps, "exact")

    def abort(self):
        """Remove a partly written file."""
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)
