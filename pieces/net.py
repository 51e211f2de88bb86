"""The ReLU network f: R^d -> R^k that everything else measures (R -> R for training,
the study and the kernels; along a segment, any d and k are counted exactly)."""

from __future__ import annotations

import numpy as np

from . import config

__all__ = ["ReLUNet"]


class ReLUNet:
    """A fully connected ReLU network from R^d to R^k (d, k >= 1).

    ``weights[i]`` has shape ``(n_out, n_in)`` and ``biases[i]`` shape ``(n_out,)``.
    Every layer but the last is followed by ReLU; the last is affine. ``weights[0]``
    has shape ``(n_1, d)`` and ``weights[-1]`` shape ``(k, n_L)``. Training, the study
    and the kernels take nets from R to R (``in_dim == out_dim == 1``) and refuse others.

    Parameters
    ----------
    weights, biases : list of array_like
        One entry per layer (hidden layers, then the output layer). Values are copied
        to contiguous float64 arrays.

    Raises
    ------
    ValueError
        If the shapes do not chain or a value is not finite. The message names the
        layer.

    Examples
    --------
    >>> net = ReLUNet([[[1.0], [1.0]], [[1.0, -2.0]]], [[0.0, -0.5], [0.0]])
    >>> net.widths, net.depth
    ((2,), 1)
    >>> net(np.array([0.0, 0.5, 1.0])).tolist()
    [0.0, 0.5, 0.0]
    """

    __slots__ = ("_weights", "_biases", "_packed")

    def __init__(self, weights, biases):
        if len(weights) != len(biases):
            raise ValueError(
                f"got {len(weights)} weight matrices but {len(biases)} bias vectors"
            )
        if len(weights) < 1:
            raise ValueError("a network needs at least an output layer")
        ws, bs = [], []
        n_in = None
        for i, (w, b) in enumerate(zip(weights, biases)):
            name = f"layer {i}" + (" (output)" if i == len(weights) - 1 else "")
            try:
                w = np.array(w, dtype=np.float64, order="C")
                b = np.array(b, dtype=np.float64, order="C")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: weights and biases must be numeric ({exc})")
            if w.ndim != 2:
                raise ValueError(f"{name}: weight matrix must be 2-D, got shape {w.shape}")
            if b.ndim != 1 or b.shape[0] != w.shape[0]:
                raise ValueError(
                    f"{name}: bias shape {b.shape} does not match weight shape {w.shape}"
                )
            if n_in is not None and w.shape[1] != n_in:
                what = f"the {n_in} outputs of layer {i - 1}"
                raise ValueError(
                    f"{name}: weight shape {w.shape} takes {w.shape[1]} inputs, "
                    f"but {what} gives {n_in}"
                )
            if w.shape[0] < 1 or w.shape[1] < 1:
                raise ValueError(f"{name}: a layer needs at least one neuron and one input, got shape {w.shape}")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"{name}: weights and biases must be finite (found NaN or inf)")
            w.flags.writeable = False  # private copies: a net never changes
            b.flags.writeable = False
            ws.append(w)
            bs.append(b)
            n_in = w.shape[0]
        self._weights = tuple(ws)
        self._biases = tuple(bs)
        self._packed = None

    def packed(self):
        """The net as the kernels take it: ``(wt, bf, sizes)``.

        ``wt`` holds each weight matrix transposed, ``(n_in, n_out)`` row-major, one
        after another; ``bf`` the biases; ``sizes`` the layer sizes ``[1, w_1, ..., 1]``.
        Computed once per net (nets are immutable).

        Raises
        ------
        ValueError
            If the net is not from R to R (the kernels take only those).
        """
        self.require_scalar("the compiled kernels")
        if self._packed is None:
            wt = np.concatenate([w.T.ravel() for w in self._weights])
            bf = np.concatenate(self._biases)
            sizes = np.array([1] + [w.shape[0] for w in self._weights], dtype=np.int64)
            for arr in (wt, bf, sizes):
                arr.flags.writeable = False
            self._packed = (wt, bf, sizes)
        return self._packed

    def require_scalar(self, what):
        """Raise one clear ``ValueError`` unless the net maps R to R."""
        if self.in_dim != 1 or self.out_dim != 1:
            raise ValueError(f"{what} take nets from R to R; this one maps R^{self.in_dim} to R^{self.out_dim} "
                             "(count it along a segment: count_pieces(net, segment=(x0, x1)))")

    # -- structure -------------------------------------------------------------------
    @property
    def in_dim(self) -> int:
        """Dimension d of the input."""
        return int(self._weights[0].shape[1])

    @property
    def out_dim(self) -> int:
        """Dimension k of the output."""
        return int(self._weights[-1].shape[0])

    def output(self, j):
        """The net of output ``j`` alone (the same hidden layers), R^d -> R."""
        return ReLUNet(self._weights[:-1] + (self._weights[-1][j : j + 1],),
                       self._biases[:-1] + (self._biases[-1][j : j + 1],))

    @property
    def weights(self):
        """Weight matrices, ``(n_out, n_in)`` each (read-only)."""
        return list(self._weights)

    @property
    def biases(self):
        """Bias vectors (read-only)."""
        return list(self._biases)

    @property
    def widths(self) -> tuple:
        """Widths of the hidden layers."""
        return tuple(w.shape[0] for w in self._weights[:-1])

    @property
    def depth(self) -> int:
        """Number of hidden ReLU layers, L."""
        return len(self._weights) - 1

    @property
    def n_neurons(self) -> int:
        """Number of hidden neurons."""
        return int(sum(self.widths))

    @property
    def n_params(self) -> int:
        """Number of weights and biases."""
        return int(sum(w.size + b.size for w, b in zip(self._weights, self._biases)))

    def copy(self) -> "ReLUNet":
        return ReLUNet(self._weights, self._biases)

    def __repr__(self):
        dims = "" if self.in_dim == self.out_dim == 1 else f", in_dim={self.in_dim}, out_dim={self.out_dim}"
        return f"ReLUNet(widths={list(self.widths)}{dims})"

    def __eq__(self, other):
        if not isinstance(other, ReLUNet) or len(self._weights) != len(other._weights):
            return NotImplemented if not isinstance(other, ReLUNet) else False
        return all(
            np.array_equal(w1, w2) and np.array_equal(b1, b2)
            for w1, w2, b1, b2 in zip(self._weights, other._weights, self._biases, other._biases)
        )

    __hash__ = None

    # -- evaluation ------------------------------------------------------------------
    def _inputs(self, x):
        """``x`` as columns ``(d, n)`` and the shape of the points (``x.shape`` for d = 1,
        ``x.shape[:-1]`` else)."""
        x = np.asarray(x, dtype=np.float64)
        d = self.in_dim
        if d == 1:
            return x.reshape(1, -1), x.shape
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"this net takes points of dimension {d} (shape (n, {d})), got shape {x.shape}")
        return x.reshape(-1, d).T, x.shape[:-1]

    def __call__(self, x):
        """Evaluate f in float64: ``x`` of shape (n,) (or a scalar) when d = 1, else
        (n, d); the result has shape (n,) when k = 1, else (n, k)."""
        h, shape = self._inputs(x)
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            h = np.maximum(w @ h + b[:, None], 0.0)
        out = self._weights[-1] @ h + self._biases[-1][:, None]
        if self.out_dim == 1:
            out = out[0]
            return out[0] if shape == () else out.reshape(shape)
        return out.T.reshape(shape + (self.out_dim,))

    def preactivations(self, x):
        """Preactivations of every hidden layer at the points ``x`` (as for calling).

        Returns a list of arrays, ``(width_l, n)`` each.
        """
        h, _ = self._inputs(x)
        out = []
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            z = w @ h + b[:, None]
            out.append(z)
            h = np.maximum(z, 0.0)
        return out

    def activation_patterns(self, x):
        """Boolean pattern ``(n, n_neurons)``: neuron active where preactivation > 0."""
        zs = self.preactivations(x)
        if not zs:
            return np.zeros((self._inputs(x)[0].shape[1], 0), dtype=bool)
        return np.concatenate([z > 0 for z in zs], axis=0).T

    def restrict(self, x0, x1):
        """The net along the segment from ``x0`` to ``x1``: g(t) = f(x0 + t (x1 - x0)),
        a net from R to R^k, equal to it on t in [0, 1] in exact arithmetic.

        Its weights are the net's and the ends' coordinates, never a rounded product
        such as W (x1 - x0): two lifting layers carry the line into the first layer
        (``pieces.count._segment``), so an exact count of the restriction on [0, 1]
        is the exact count along the segment. Outside [0, 1] it is not the line.

        Examples
        --------
        >>> net = ReLUNet([[[1.0, -1.0]], [[1.0]]], [[0.0], [0.0]])  # relu(x - y)
        >>> g = net.restrict([0.0, 0.5], [1.0, 0.5])
        >>> g(np.array([0.0, 0.25, 1.0])).tolist()
        [0.0, 0.0, 0.5]
        """
        from .count._segment import restrict

        return restrict(self, x0, x1)

    # -- construction ----------------------------------------------------------------
    @classmethod
    def random(cls, widths, init="he", seed=0, bias_std=None, in_dim=1, out_dim=1):
        """A random network with hidden ``widths``.

        Parameters
        ----------
        widths : sequence of int
            Hidden widths; ``len(widths)`` is the depth (0 gives an affine map).
        init : {"he", "glorot", "uniform"}
            ``he``: N(0, 2/n_in). ``glorot``: N(0, 2/(n_in+n_out)).
            ``uniform``: U(-1/sqrt(n_in), 1/sqrt(n_in)) (PyTorch's default bound).
        seed : int
            Seed of ``numpy.random.default_rng``; the same seed gives the same net.
        bias_std : float, optional
            Biases are N(0, bias_std**2); default ``config.BIAS_STD``. For ``uniform``
            the biases follow the weights' distribution instead.
        in_dim, out_dim : int
            d and k (default 1: a net from R to R).

        Examples
        --------
        >>> ReLUNet.random([8, 8], seed=1).widths
        (8, 8)
        """
        if init not in config.INITS:
            raise ValueError(f"unknown init {init!r}; expected one of {', '.join(config.INITS)}")
        widths = [int(w) for w in widths]
        if any(w < 1 for w in widths):
            raise ValueError(f"hidden widths must be positive, got {widths}")
        bias_std = config.BIAS_STD if bias_std is None else float(bias_std)
        if not (bias_std >= 0 and np.isfinite(bias_std)):
            raise ValueError(f"bias_std must be finite and >= 0, got {bias_std}")
        rng = np.random.default_rng(seed)
        if min(int(in_dim), int(out_dim)) < 1:
            raise ValueError(f"in_dim and out_dim must be positive, got {in_dim} and {out_dim}")
        sizes = [int(in_dim)] + widths + [int(out_dim)]
        ws, bs = [], []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            if init == "he":
                w = rng.normal(0.0, np.sqrt(2.0 / n_in), (n_out, n_in))
                b = rng.normal(0.0, bias_std, n_out)
            elif init == "glorot":
                w = rng.normal(0.0, np.sqrt(2.0 / (n_in + n_out)), (n_out, n_in))
                b = rng.normal(0.0, bias_std, n_out)
            else:
                bound = 1.0 / np.sqrt(n_in)
                w = rng.uniform(-bound, bound, (n_out, n_in))
                b = rng.uniform(-bound, bound, n_out)
            ws.append(w)
            bs.append(b)
        return cls(ws, bs)

    # -- persistence -----------------------------------------------------------------
    def save(self, path):
        """Write the net to ``path``: ``.safetensors`` where the name ends so (through
        the ``safetensors`` package's numpy API; tensors ``W0``, ``b0``, ...), else
        ``.npz``. Atomic: a temp file, then rename."""
        from ._net_io import save_net

        save_net(self, path)

    @classmethod
    def load(cls, path):
        """Read a net. Never executes code from the file.

        Takes our ``.npz``; ``.safetensors`` with our names or those of a PyTorch
        ``nn.Sequential`` state dict (``0.weight``, ``0.bias``, ``2.weight``, ...);
        ``.pt``/``.pth`` state dicts through ``torch.load(..., weights_only=True)``
        (where torch is installed). See ``pieces/_net_io.py``.

        Raises
        ------
        ValueError
            If the file is not a network file or holds an invalid net; the message
            names the tensor or layer.
        FileNotFoundError
            If ``path`` does not exist.
        """
        from ._net_io import load_net

        return load_net(cls, path)

    @classmethod
    def from_torch(cls, module):
        """The net of a PyTorch ``nn.Sequential`` of ``Linear`` and ``ReLU`` layers
        (needs torch: ``pip install 'relu-pieces[torch]'``); other layers are refused
        by name. A ``Linear`` without bias counts as a zero bias."""
        from ._torch_bridge import from_torch

        return from_torch(cls, module)

    def to_torch(self, dtype=None):
        """The net as ``nn.Sequential(Linear, ReLU, ..., Linear)`` in ``dtype``
        (default ``torch.float64``, exact)."""
        from ._torch_bridge import to_torch

        return to_torch(self, dtype)
