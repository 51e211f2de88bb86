"""Configuration constants of relu-pieces, in one place.

Kernels take these as arguments; no kernel hides a literal tolerance.
"""

__all__ = [
    "MERGE_RTOL",
    "SLOPE_RTOL",
    "GRID_DEFAULT_N",
    "GRID_KINK_RTOL",
    "BIAS_STD",
    "INITS",
    "METHODS",
    "DEVICES",
    "COUNT_INITIAL_CAPACITY",
    "COUNT_WORKSPACE_KEEP_BYTES",
    "COUNT_MAX_MEMORY",
    "COUNT_PROBE_BYTES",
    "COUNT_CLI_MAX_SECONDS",
    "TRAIN_COUNT_MAX_SECONDS",
    "SGD_BATCH_SIZE",
    "CUDA_TRAIN_THREADS",
    "CUDA_COUNT_THREADS",
    "CUDA_COUNT_CAPACITY",
    "CUDA_SHARED_BYTES",
    "CUDA_WORKSPACE_BYTES",
    "CUDA_TILE_OUT",
    "CUDA_TILE_GRAD",
    "CUDA_NATIVE_HALF",
    "CUDA_FP16_CONVERT",
    "AUTO_LR_FACTOR",
    "AUTO_LR_RTOL",
    "AUTO_LR_MAX_ITER",
    "AUTO_LR_FALLBACK",
    "SURVIVAL_FRACTION",
    "SUP_ERROR_GRID_N",
]

#: Tolerances of ``method="tolerance"`` only (the exact counter has none).
#: Two zero crossings closer than ``MERGE_RTOL * max(span, |x1|, |x2|)`` are one
#: breakpoint, and a crossing that close to a segment end lies on that end. ``span`` is
#: ``b - a`` for a finite interval and 1 otherwise. float64 crossings of deep nets carry
#: relative errors of order ``depth * width * 2**-53``; 1e-12 leaves a margin of ~10^3
#: over that and merges only regions narrower than 1e-12 of the interval.
MERGE_RTOL = 1e-12

#: Neighbouring segments are one affine piece when their output slopes differ by at most
#: ``SLOPE_RTOL`` times the magnitude of the terms that make up those slopes.
SLOPE_RTOL = 1e-9

#: Points of the ``"grid"`` estimate when ``n`` is not given.
GRID_DEFAULT_N = 10_001

#: Relative size of a second difference that the ``"grid"`` estimate calls a kink.
GRID_KINK_RTOL = 1e-9

#: Standard deviation of the bias of random initialisations (biases are non-zero so
#: that first-layer breakpoints are spread out, not all at x = 0).
BIAS_STD = 0.1

#: Names accepted by ``ReLUNet.random(init=...)``.
INITS = ("he", "glorot", "uniform")

#: Names accepted by ``count_pieces(method=...)``; ``"certified"`` is another name of
#: ``"exact"`` (what it was called before it replaced the tolerance counter).
METHODS = ("exact", "tolerance", "rational", "grid", "certified")

#: Devices accepted by ``count_pieces_batch(device=...)``, ``TrainConfig(device=...)``
#: and ``pieces study --device``. ``"cuda"`` without a GPU is an error; ``"auto"`` takes
#: the GPU when there is one and the CPU otherwise.
DEVICES = ("cpu", "cuda", "auto")

#: Segments preallocated by the exact counter; buffers double when full.
COUNT_INITIAL_CAPACITY = 64

#: A thread keeps the certified counter's buffers between single-net counts up to this
#: size (their nominal bytes; only pages once touched take memory).
COUNT_WORKSPACE_KEEP_BYTES = 256 * 2**20

#: Default memory budget of one count (``count_pieces(max_memory=...)``, ``pieces count
#: --max-memory``), in bytes: the counter's buffers on all threads, plus the breakpoints
#: it keeps. A count that would need more is split into chunks joined exactly.
COUNT_MAX_MEMORY = 2**30

#: A single count first runs whole with buffers of at most this many bytes; a net that
#: needs more is counted in chunks, on every Numba thread.
COUNT_PROBE_BYTES = 32 * 2**20

#: ``pieces count --max-seconds`` when not given: a count estimated to take longer stops
#: early, with the estimate and how to raise the limit.
COUNT_CLI_MAX_SECONDS = 3600.0

#: A count that training records (the history's pieces and regions) and that is
#: estimated to take longer than this stops the training with ``CountLimitError``,
#: early, instead of running for hours: a deep construction's exponentially many pieces.
TRAIN_COUNT_MAX_SECONDS = 600.0

#: Minibatch size of ``optimizer="sgd"`` when ``batch_size`` is not given.
SGD_BATCH_SIZE = 32

#: Threads per block of the CUDA training kernel (one block trains one net; its threads
#: share the samples, then the parameters).
CUDA_TRAIN_THREADS = 128

#: Threads per block of the CUDA counting kernel (one thread counts one net).
CUDA_COUNT_THREADS = 64

#: Segments per net that the CUDA counter can hold. A net with more activation regions
#: (at some layer) overflows and is counted again on the CPU, whose buffers grow.
CUDA_COUNT_CAPACITY = 1024

#: The training kernel keeps a net's parameters in shared memory when they fit in this
#: many bytes (the default per-block limit); larger nets read them from global memory.
CUDA_SHARED_BYTES = 48 * 1024

#: Device memory that one launch's workspaces may take (bigger batches run in chunks,
#: one after another); None: half the GPU's free memory at the time of the launch.
CUDA_WORKSPACE_BYTES = None

#: Register tiles of the CUDA training kernels: in the forward pass and the deltas a
#: thread accumulates this many outputs for two samples at once; in the gradient it
#: owns a (rows, columns) tile of a weight matrix. Larger tiles load less and use more
#: registers. The order of every sum is the CPU's whatever the tiles.
CUDA_TILE_OUT = 8
CUDA_TILE_GRAD = (2, 4)

#: Train fp16 on the GPU in its native half arithmetic rather than the exact emulation
#: (which rounds every fp32 result to fp16, as the CPU does). Half operations are
#: correctly rounded too, so the two agree bit for bit unless the GPU fuses a product
#: and a sum into one fused multiply-add (ptxas may, for half operations); batches of
#: more than 2048 points stay emulated (their size is not an fp16 integer). Off, so
#: that GPU and CPU results are identical; benchmarks/gpu_check.py measures both.
CUDA_NATIVE_HALF = False

#: Round fp16 in the emulated CUDA kernels with the GPU's conversion to half and back
#: (``cvt.rn.f16.f32``) instead of the generic rounding's frexp/ldexp arithmetic. Both
#: round to nearest even with fp16's subnormals and overflow, so results are the same;
#: the PTX check asserts the conversion is there. Off: the generic device rounding.
CUDA_FP16_CONVERT = True

#: ``lr="auto"`` takes ``AUTO_LR_FACTOR / λ_max`` of the Gauss-Newton curvature at the
#: start (see :mod:`pieces.curvature`): half of GD's stability limit 2 / λ_max.
AUTO_LR_FACTOR = 1.0

#: Power iteration for λ_max stops when the Rayleigh quotient moves by less than this
#: (relative), or after ``AUTO_LR_MAX_ITER`` iterations.
AUTO_LR_RTOL = 1e-6
AUTO_LR_MAX_ITER = 500

#: ``lr="auto"`` where the curvature is zero (no training point in a live region).
AUTO_LR_FALLBACK = 0.01

#: A construction survives training when it keeps at least this fraction of its 2**L
#: pieces (ARCHITECTURE.md's survival depth).
SURVIVAL_FRACTION = 0.9

#: Points of the grid on which the study measures the sup error of a trained net
#: against a target other than x² (against x² it is exact: ``pwl.sup_error_square``).
SUP_ERROR_GRID_N = 100_001
