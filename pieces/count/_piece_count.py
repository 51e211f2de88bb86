"""What a count gives: :class:`PieceCount`.

Examples
--------
>>> import numpy as np
>>> PieceCount(2, 3, np.array([0.5])).as_dict(breakpoints=True)
{'pieces': 2, 'regions': 3, 'method': 'exact', 'breakpoints': [0.5]}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["PieceCount"]


@dataclass(frozen=True)
class PieceCount:
    """Result of :func:`count_pieces`.

    Attributes
    ----------
    pieces : int
        Maximal intervals of the domain on which f is affine.
    regions : int
        Maximal intervals on which the activation pattern is constant (>= pieces).
    breakpoints : numpy.ndarray
        Sorted x where f changes affine piece (``pieces - 1`` of them, or the estimate's
        for ``"grid"``); None where the count was asked not to keep them.
    method : str
        How it was counted.
    per_output : tuple of int or None
        For a net with several outputs, each output's pieces (``pieces`` is the map's:
        maximal intervals on which every output is affine); None for one output.
    """

    pieces: int
    regions: int
    breakpoints: np.ndarray | None = field(repr=False)
    method: str = "exact"
    per_output: tuple | None = None

    def as_dict(self, breakpoints=False):
        d = {"pieces": self.pieces, "regions": self.regions, "method": self.method}
        if self.per_output is not None:
            d["per_output"] = list(self.per_output)
        if breakpoints and self.breakpoints is not None:
            d["breakpoints"] = [float(x) for x in self.breakpoints]
        return d
