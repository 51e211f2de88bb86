"""What training takes and gives: :class:`TrainConfig`, :class:`TrainResult`, the
history's columns, and the flat parameter layout of the training kernels.

Examples
--------
>>> from pieces import sawtooth
>>> cfg = TrainConfig(optimizer="gd", lr=0.1, steps=10)
>>> cfg.effective_batch, cfg.learning_rates()[:2].tolist()
(256, [0.1, 0.1])
>>> net = sawtooth(2)
>>> theta_to_net(net_to_theta(net), [1, 2, 2, 1])(np.array([0.25])).tolist()
[1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import _train_cpu
from .. import config
from ..count import check_interval
from ..net import ReLUNet
from ..precision import Format, parse_precision

__all__ = ["TrainConfig", "TrainResult", "HISTORY_DTYPE", "SCHEDULES", "SAMPLINGS", "net_to_theta", "theta_to_net"]

#: Columns of ``TrainResult.history``.
HISTORY_DTYPE = np.dtype([("step", np.int64), ("loss", np.float64), ("pieces", np.int64), ("regions", np.int64)])

SCHEDULES = ("constant", "cosine", "linear", "exp")
SAMPLINGS = ("grid", "random")


@dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Parameters
    ----------
    optimizer : {"gd", "sgd", "adam"}
        Full-batch gradient descent (the paper's setting), minibatch SGD, or Adam
        (full batch unless ``batch_size`` is set).
    lr : float or "auto"
        Learning rate (> 0); the schedule starts here. ``"auto"``: per net,
        ``config.AUTO_LR_FACTOR / λ_max`` of the loss's Gauss-Newton curvature at the
        start, in float64 (:mod:`pieces.curvature`), so that the step never decides
        the result; the value used is ``TrainResult.lr`` (and ``lambda_max``). Not
        for Adam, whose step does not scale with the curvature.
    steps : int
        Number of updates (> 0).
    n_samples : int
        Training points on ``interval`` (>= 2).
    precision : str
        ``fp64``, ``fp32``, ``fp16``, ``bf16`` or ``pK``: forward pass, backprop and
        update all run in it (see :mod:`pieces.precision`).
    batch_size : int, optional
        Minibatch size for ``sgd`` (default ``config.SGD_BATCH_SIZE``) and ``adam``;
        ``gd`` is always full batch.
    record_every : int
        Record loss, pieces and regions every this many steps (and at the start and end).
    seed : int
        Seed of random sampling and minibatch order.
    device : {"cpu", "cuda", "auto"}
        Where the kernels run. ``"cuda"`` trains one net per thread block and raises
        ``RuntimeError`` where no GPU is usable; ``"auto"`` falls back to the CPU.
        Emulated precisions give the CPU's results bit for bit on the GPU.
    interval : (float, float)
        Domain of the training points, and where pieces are counted.
    sampling : {"grid", "random"}
        Equally spaced points (ends included), or uniform random ones from ``seed``.
    schedule : {"constant", "cosine", "linear", "exp"}
        Learning rate over the steps, from ``lr`` to ``lr * lr_final``.
    lr_final : float
        Final learning rate as a fraction of ``lr`` (not used by ``constant``).
    betas, adam_eps : Adam's hyper-parameters.
    """

    optimizer: str = "gd"
    lr: float | str = 0.01
    steps: int = 1000
    n_samples: int = 256
    precision: str = "fp64"
    batch_size: int | None = None
    record_every: int = 100
    seed: int = 0
    device: str = "cpu"
    interval: tuple = (0.0, 1.0)
    sampling: str = "grid"
    schedule: str = "constant"
    lr_final: float = 0.01
    betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8

    def __post_init__(self):
        if self.optimizer not in _train_cpu.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; expected one of {', '.join(_train_cpu.OPTIMIZERS)}")
        parse_precision(self.precision)
        if self.lr == "auto" and isinstance(self.lr, str):
            if self.optimizer == "adam":
                raise ValueError("lr='auto' is for 'gd' and 'sgd'; Adam's step does not scale with the curvature")
        elif not _positive_finite(self.lr):
            raise ValueError(f"lr must be a positive number or 'auto', got {self.lr!r}")
        for name in ("steps", "record_every"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not _positive_int(self.n_samples) or self.n_samples < 2:
            raise ValueError(f"n_samples must be an integer >= 2, got {self.n_samples!r}")
        if self.batch_size is not None:
            if not _positive_int(self.batch_size):
                raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
            if self.optimizer == "gd" and self.batch_size < self.n_samples:
                raise ValueError("optimizer 'gd' is full-batch; use 'sgd' for minibatches")
        if self.device not in config.DEVICES:
            raise ValueError(f"unknown device {self.device!r}; expected one of {', '.join(config.DEVICES)}")
        a, b = check_interval(self.interval)
        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError("the training interval must be finite")
        object.__setattr__(self, "interval", (a, b))
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {self.sampling!r}; expected one of {', '.join(SAMPLINGS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {', '.join(SCHEDULES)}")
        if not _positive_finite(self.lr_final) or self.lr_final > 1:
            raise ValueError(f"lr_final must be in (0, 1], got {self.lr_final!r}")
        b1, b2 = self.betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas!r}")
        if not _positive_finite(self.adam_eps):
            raise ValueError(f"adam_eps must be a positive number, got {self.adam_eps!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")

    @property
    def format(self) -> Format:
        return parse_precision(self.precision)

    @property
    def effective_batch(self) -> int:
        """Points per step (``n_samples`` for full batch)."""
        if self.optimizer == "sgd":
            return min(self.batch_size or config.SGD_BATCH_SIZE, self.n_samples)
        return min(self.batch_size or self.n_samples, self.n_samples)

    def learning_rates(self) -> np.ndarray:
        """The float64 learning rate of every step."""
        if isinstance(self.lr, str):
            raise ValueError("lr='auto' is resolved per net by train(); no fixed schedule")
        t = np.arange(self.steps) / max(self.steps - 1, 1)
        lo = self.lr * self.lr_final
        if self.schedule == "constant":
            return np.full(self.steps, float(self.lr))
        if self.schedule == "cosine":
            return lo + 0.5 * (self.lr - lo) * (1 + np.cos(np.pi * t))
        if self.schedule == "linear":
            return self.lr + (lo - self.lr) * t
        return self.lr * self.lr_final**t


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    net : ReLUNet
        The final network (the last finite one if the run diverged).
    history : numpy structured array
        Columns ``step``, ``loss`` (fp64 MSE of the current weights on the training
        points), ``pieces`` and ``regions`` (exact counts on ``config.interval``).
    diverged : bool
        A step produced a non-finite loss or weight; the run stopped before it.
    steps_done : int
    config : TrainConfig
        The configuration the net was trained with (``lr`` resolved to a number).
    lr : float
        The learning rate at the start (``config.lr``; the resolved value of "auto").
    lambda_max : float
        λ_max of the Gauss-Newton curvature at the start where ``lr="auto"``, else NaN.
    lr_underflow : bool
        The step (from ``lr="auto"``, or a given one with ``on_underflow="freeze"``)
        rounds to 0 in the precision (a deep construction in fp16): the net cannot move,
        and the result is the start rounded to the format, after 0 steps.
    updates : numpy.ndarray
        ``(2, P)`` int64 in the flat training layout: per parameter, the updates
        attempted over the run (a non-zero direction: the gradient for GD/SGD, the first
        moment for Adam) and those **absorbed**, rounded to no change in the training
        format (``w - step == w``). See :attr:`absorbed_fraction`.
    """

    net: ReLUNet
    history: np.ndarray
    diverged: bool
    steps_done: int
    config: TrainConfig = field(repr=False)
    lr: float = float("nan")
    lambda_max: float = float("nan")
    lr_underflow: bool = False
    updates: np.ndarray | None = field(default=None, repr=False)

    @property
    def absorbed_fraction(self) -> float:
        """The fraction of the run's attempted parameter updates that were absorbed
        (1.0 where the step underflowed to 0, NaN where no update was attempted).

        Examples
        --------
        >>> from pieces import ReLUNet, TrainConfig, train
        >>> r = train(ReLUNet.random([4], seed=0), "square", TrainConfig(lr=0.1, steps=5))
        >>> r.absorbed_fraction
        0.0
        """
        if self.lr_underflow:
            return 1.0
        if self.updates is None or self.updates[0].sum() == 0:
            return float("nan")
        return float(self.updates[1].sum() / self.updates[0].sum())

    def absorbed_per_layer(self) -> np.ndarray:
        """:attr:`absorbed_fraction` over the weights and bias of each layer (hidden
        layers first, the output layer last)."""
        from ._train_cpu import param_layout

        sizes = np.array([1, *self.net.widths, 1], dtype=np.int64)
        w_off, b_off, _ = param_layout(sizes)
        out = []
        for l in range(len(sizes) - 1):
            if self.lr_underflow:
                out.append(1.0)
                continue
            sl = slice(w_off[l], b_off[l] + sizes[l + 1])
            tried = self.updates[0, sl].sum() if self.updates is not None else 0
            out.append(float(self.updates[1, sl].sum() / tried) if tried else float("nan"))
        return np.array(out)


def _positive_int(v):
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v > 0


def _positive_finite(v):
    return not isinstance(v, bool) and isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v > 0


def net_to_theta(net, dtype=np.float64):
    """Flat parameters of ``net`` in the training layout (float64)."""
    parts = []
    for w, b in zip(net._weights, net._biases):
        parts.append(w.T.ravel())
        parts.append(b)
    return np.concatenate(parts).astype(dtype)


def theta_to_net(theta, sizes):
    """The :class:`ReLUNet` of flat parameters ``theta`` (values taken exactly)."""
    theta = np.asarray(theta, dtype=np.float64)
    ws, bs = [], []
    p = 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        ws.append(theta[p : p + n_in * n_out].reshape(n_in, n_out).T)
        p += n_in * n_out
        bs.append(theta[p : p + n_out])
        p += n_out
    return ReLUNet(ws, bs)
