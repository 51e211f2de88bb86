"""How a count refuses: :class:`CountMemoryError` (a budget it cannot keep, said before
it allocates) and :class:`CountLimitError` (stopped early, with an estimate).

Examples
--------
>>> err = CountLimitError("too long", 1e12, 3.6e5, 60.0)
>>> isinstance(err, RuntimeError), err.estimated_pieces
(True, 1000000000000.0)
>>> issubclass(CountMemoryError, MemoryError)
True
"""

__all__ = ["CountLimitError", "CountMemoryError"]


class CountLimitError(RuntimeError):
    """A count stopped early because its estimated time exceeds ``max_seconds``.

    Attributes
    ----------
    estimated_pieces, estimated_seconds : float
        The estimate from the rate measured so far (``nan`` where it cannot be made).
    max_seconds : float
    """

    def __init__(self, message, estimated_pieces, estimated_seconds, max_seconds):
        super().__init__(message)
        self.estimated_pieces = estimated_pieces
        self.estimated_seconds = estimated_seconds
        self.max_seconds = max_seconds


class CountMemoryError(MemoryError):
    """A count that cannot keep to its memory budget (``max_memory``), said before it
    allocates: a method that does not chunk, or breakpoints that do not fit."""
