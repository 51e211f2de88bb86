"""relu-pieces: do trained ReLU networks keep exponentially many affine pieces in depth?

Exact piece counting, constructions from approximation theory, and training in every
precision, on the CPU (Numba) or a GPU (numba-cuda, ``device="cuda"``). See ARCHITECTURE.md for the words used here.

Examples
--------
>>> import pieces
>>> pieces.count_pieces(pieces.sawtooth(10), (0.0, 1.0)).pieces
1024
"""

from importlib.metadata import PackageNotFoundError, version as _version

from ._jit import cache as _jit_cache

_jit_cache.install()  # before any kernel is defined: cached kernels follow every source edit

from .constructions import sawtooth, yarotsky_square
from .count import CountLimitError, CountMemoryError, PieceCount, count_pieces, count_pieces_batch
from .init import initial_net
from .net import ReLUNet
from .perturb import BackpropError, backprop_error, perturbed_step
from .precision import parse_precision, round_array
from .train import TrainConfig, TrainResult, evaluate_batch, train, train_batch

try:
    __version__ = _version("relu-pieces")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "ReLUNet",
    "PieceCount",
    "count_pieces",
    "count_pieces_batch",
    "CountLimitError",
    "CountMemoryError",
    "sawtooth",
    "yarotsky_square",
    "initial_net",
    "parse_precision",
    "round_array",
    "TrainConfig",
    "TrainResult",
    "train",
    "train_batch",
    "evaluate_batch",
    "perturbed_step",
    "backprop_error",
    "BackpropError",
    "__version__",
]
