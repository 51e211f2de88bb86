"""The ReLU network f: R -> R that everything else measures."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from . import config
from ._io import atomic_write

__all__ = ["ReLUNet"]


class ReLUNet:
    """A fully connected ReLU network from R to R.

    ``weights[i]`` has shape ``(n_out, n_in)`` and ``biases[i]`` shape ``(n_out,)``.
    Every layer but the last is followed by ReLU; the last is affine. The first layer
    takes 1 input and the last gives 1 output.

    Parameters
    ----------
    weights, biases : list of array_like
        One entry per layer (hidden layers, then the output layer). Values are copied
        to contiguous float64 arrays.

    Raises
    ------
    ValueError
        If the shapes do not chain, the input or output is not 1-D, or a value is
        not finite. The message names the layer.

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
        n_in = 1
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
            if w.shape[1] != n_in:
                what = "the 1-D input" if i == 0 else f"the {n_in} outputs of layer {i - 1}"
                raise ValueError(
                    f"{name}: weight shape {w.shape} takes {w.shape[1]} inputs, "
                    f"but {what} gives {n_in}"
                )
            if w.shape[0] < 1:
                raise ValueError(f"{name}: a layer needs at least one neuron")
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"{name}: weights and biases must be finite (found NaN or inf)")
            w.flags.writeable = False  # private copies: a net never changes
            b.flags.writeable = False
            ws.append(w)
            bs.append(b)
            n_in = w.shape[0]
        if n_in != 1:
            raise ValueError(f"output layer has {n_in} outputs; the output must be 1-D")
        self._weights = tuple(ws)
        self._biases = tuple(bs)
        self._packed = None

    def packed(self):
        """The net as the kernels take it: ``(wt, bf, sizes)``.

        ``wt`` holds each weight matrix transposed, ``(n_in, n_out)`` row-major, one
        after another; ``bf`` the biases; ``sizes`` the layer sizes ``[1, w_1, ..., 1]``.
        Computed once per net (nets are immutable).
        """
        if self._packed is None:
            wt = np.concatenate([w.T.ravel() for w in self._weights])
            bf = np.concatenate(self._biases)
            sizes = np.array([1] + [w.shape[0] for w in self._weights], dtype=np.int64)
            for arr in (wt, bf, sizes):
                arr.flags.writeable = False
            self._packed = (wt, bf, sizes)
        return self._packed

    # -- structure -------------------------------------------------------------------
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
        return f"ReLUNet(widths={list(self.widths)})"

    def __eq__(self, other):
        if not isinstance(other, ReLUNet) or len(self._weights) != len(other._weights):
            return NotImplemented if not isinstance(other, ReLUNet) else False
        return all(
            np.array_equal(w1, w2) and np.array_equal(b1, b2)
            for w1, w2, b1, b2 in zip(self._weights, other._weights, self._biases, other._biases)
        )

    __hash__ = None

    # -- evaluation ------------------------------------------------------------------
    def __call__(self, x):
        """Evaluate f in float64 on a 1-D array (or a scalar)."""
        x = np.asarray(x, dtype=np.float64)
        scalar = x.ndim == 0
        h = x.reshape(1, -1)
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            h = np.maximum(w @ h + b[:, None], 0.0)
        out = (self._weights[-1] @ h + self._biases[-1][:, None])[0]
        return out[0] if scalar else out.reshape(x.shape)

    def preactivations(self, x):
        """Preactivations of every hidden layer at the points ``x``.

        Returns a list of arrays, ``(width_l, len(x))`` each.
        """
        h = np.asarray(x, dtype=np.float64).reshape(1, -1)
        out = []
        for w, b in zip(self._weights[:-1], self._biases[:-1]):
            z = w @ h + b[:, None]
            out.append(z)
            h = np.maximum(z, 0.0)
        return out

    def activation_patterns(self, x):
        """Boolean pattern ``(len(x), n_neurons)``: neuron active where preactivation > 0."""
        zs = self.preactivations(x)
        if not zs:
            return np.zeros((np.asarray(x).size, 0), dtype=bool)
        return np.concatenate([z > 0 for z in zs], axis=0).T

    # -- construction ----------------------------------------------------------------
    @classmethod
    def random(cls, widths, init="he", seed=0, bias_std=None):
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
        sizes = [1] + widths + [1]
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
        """Write the net to ``path`` as ``.npz`` (atomically: temp file, then rename)."""
        arrays = {"format": np.array("relu-pieces-net-1")}
        for i, (w, b) in enumerate(zip(self._weights, self._biases)):
            arrays[f"W{i}"] = w
            arrays[f"b{i}"] = b
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write(path, buf.getvalue())

    @classmethod
    def load(cls, path):
        """Read a net written by :meth:`save`. Never unpickles.

        Raises
        ------
        ValueError
            If the file is not a relu-pieces ``.npz`` or holds an invalid net.
        FileNotFoundError
            If ``path`` does not exist.
        """
        path = Path(path)
        with open(path, "rb") as fh:  # FileNotFoundError / IsADirectoryError pass through
            magic = fh.read(4)
        if magic != b"PK\x03\x04":
            raise ValueError(f"{path}: not a valid .npz network file (not a zip archive)")
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = set(data.files)
                n = sum(1 for k in keys if k.startswith("W"))
                expected = {f"W{i}" for i in range(n)} | {f"b{i}" for i in range(n)}
                if n == 0 or not expected <= keys:
                    raise ValueError(f"{path}: not a relu-pieces network file (keys {sorted(keys)})")
                ws = [data[f"W{i}"] for i in range(n)]
                bs = [data[f"b{i}"] for i in range(n)]
        except FileNotFoundError:
            raise
        except ValueError as exc:
            msg = str(exc)
            if "pickle" in msg.lower():
                raise ValueError(f"{path}: refusing to load pickled data") from None
            if msg.startswith(str(path)):
                raise
            raise ValueError(f"{path}: not a valid .npz network file ({msg})") from None
        except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            raise ValueError(f"{path}: not a valid .npz network file ({exc})") from None
        for i, (w, b) in enumerate(zip(ws, bs)):
            if w.dtype.kind not in "fiu" or b.dtype.kind not in "fiu":
                raise ValueError(f"{path}: layer {i} holds non-numeric data ({w.dtype}, {b.dtype})")
        return cls(ws, bs)
