"""Counting the affine pieces and activation regions of a ReLU network.

The public API is :func:`count_pieces`, :func:`count_pieces_batch` and
:class:`PieceCount` (in ``_count``, which dispatches by method and device). Behind it:

- ``_certified_cpu`` (the counts), ``_certified_sweep`` (the sweep, in named stages:
  ``_certified_sums`` a segment's bounds, grains and sums, ``_certified_stages`` its
  signs, crossings, boundaries and children), ``_certified_bounds`` (the decisions and
  error bounds), ``_certified_refresh`` (local double-double recomputation),
  ``_segment_sums`` (the register-blocked sums): the float64 stage of
  ``method="exact"``; ``_certified_cuda`` (with ``_certified_cuda_stages``) is its
  CUDA twin;
- ``_certified_dd``: the second stage, the sweep in double-double (``_beyond_float64``
  runs it, and the rationals after it);
- ``_rational``: the sweep in rationals, the oracle and the last stage;
- ``_count_cpu`` and its CUDA twin ``_count_cuda``: ``method="tolerance"``;
- ``_grid``: ``method="grid"``, the sampling estimate other tools compute.

Examples
--------
>>> from pieces import sawtooth
>>> from pieces.count import count_pieces
>>> count_pieces(sawtooth(3), (0.0, 1.0)).pieces
8
"""

from ._count import (CountLimitError, CountMemoryError, PieceCount, check_interval, count_pieces, count_pieces_batch,
                     exact_regions)

__all__ = ["PieceCount", "count_pieces", "count_pieces_batch", "check_interval", "exact_regions", "CountLimitError",
           "CountMemoryError"]
