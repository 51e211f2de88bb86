"""PyTorch in and out: an ``nn.Sequential`` of ``Linear`` and ``ReLU`` layers, both
ways. Torch is an optional extra (``pip install 'relu-pieces[torch]'``), imported only
here and only when called.

Examples
--------
>>> import torch  # doctest: +SKIP
>>> m = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))  # doctest: +SKIP
>>> net = from_torch(ReLUNet, m)  # doctest: +SKIP
>>> (net.in_dim, net.widths, net.out_dim)  # doctest: +SKIP
(2, (8,), 1)
"""

from __future__ import annotations

import numpy as np

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("this needs PyTorch: pip install 'relu-pieces[torch]'") from None
    return torch


def from_torch(cls, module):
    """The :class:`ReLUNet` of ``module``: Linear, ReLU, Linear, ..., Linear (a leading
    ``Flatten`` is allowed: it does not change the function of flat inputs). A Linear
    without bias counts as a zero bias; any other layer is refused, by name."""
    torch = _torch()
    nn = torch.nn
    if isinstance(module, nn.Linear):
        module = nn.Sequential(module)
    if not isinstance(module, nn.Sequential):
        raise ValueError(f"from_torch reads an nn.Sequential of Linear and ReLU layers, got {type(module).__name__}")
    layers = list(module.named_children())
    if layers and isinstance(layers[0][1], nn.Flatten):
        layers = layers[1:]
    ws, bs = [], []
    for pos, (name, layer) in enumerate(layers):
        want = nn.Linear if pos % 2 == 0 else nn.ReLU
        if not isinstance(layer, want):
            expected = "Linear" if want is nn.Linear else "ReLU"
            raise ValueError(f"layer {name} is {type(layer).__name__}; expected {expected} (only an nn.Sequential of "
                             "Linear and ReLU layers, alternating, is read)")
        if want is nn.Linear:
            w = layer.weight.detach().to("cpu", torch.float64).numpy()
            b = (np.zeros(w.shape[0]) if layer.bias is None
                 else layer.bias.detach().to("cpu", torch.float64).numpy())
            if not (np.isfinite(w).all() and np.isfinite(b).all()):
                raise ValueError(f"layer {name} holds NaN or inf")
            ws.append(w)
            bs.append(b)
    if not ws:
        raise ValueError("the module holds no Linear layer")
    if len(layers) % 2 == 0:
        raise ValueError(f"layer {layers[-1][0]} is the last, a ReLU; a ReLUNet ends with a Linear layer")
    return cls(ws, bs)


def to_torch(net, dtype=None):
    """``nn.Sequential(Linear, ReLU, ..., Linear)`` with the net's weights in ``dtype``
    (default ``torch.float64``: exact; float32 rounds them)."""
    torch = _torch()
    nn = torch.nn
    dtype = torch.float64 if dtype is None else dtype
    mods = []
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.array(w)))
            lin.bias.copy_(torch.from_numpy(np.array(b)))
        mods.append(lin)
        if i < net.depth:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)
