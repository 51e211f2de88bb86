"""Nets in and out, never executing code: our ``.npz``, ``.safetensors`` (our names or a
PyTorch ``nn.Sequential``'s), and ``.pt``/``.pth`` state dicts through
``torch.load(..., weights_only=True)``.

A state dict holds no activations: its Linear layers ``<prefix>0``, ``<prefix>2``, ... are
read as ``nn.Sequential(Linear, ReLU, Linear, ...)`` lays them out, one index apart for
the ReLU between; layers at other distances (two Linear layers with nothing between, or
something else between them) are refused. ``ReLUNet.from_torch`` reads a module and
checks its layers themselves.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from pieces import ReLUNet
>>> net = ReLUNet.random([4, 3], seed=0, in_dim=2)
>>> path = os.path.join(tempfile.mkdtemp(), "net.safetensors")
>>> net.save(path)
>>> ReLUNet.load(path) == net
True
>>> layers_from_tensors({"0.weight": np.ones((3, 2)), "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)},
...                     "sd")[1][0].tolist()
[0.0, 0.0, 0.0]
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np

from ._io import atomic_write

__all__ = ["save_net", "load_net", "layers_from_tensors"]

FORMAT = "relu-pieces-net-1"
_OURS = re.compile(r"^([Wb])(\d+)$")
_TORCH = re.compile(r"^(.*?)(\d+)\.(weight|bias)$")


def save_net(net, path):
    """Write ``net`` to ``path``: ``.safetensors`` by its suffix (our names ``W0``,
    ``b0``, ...), else ``.npz``; atomically (a temp file, then rename)."""
    arrays = {}
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        arrays[f"W{i}"] = np.ascontiguousarray(w)
        arrays[f"b{i}"] = np.ascontiguousarray(b)
    if str(path).endswith(".safetensors"):
        from safetensors.numpy import save

        atomic_write(path, save(arrays, metadata={"format": FORMAT}))
        return
    buf = io.BytesIO()
    np.savez(buf, format=np.array(FORMAT), **arrays)
    atomic_write(path, buf.getvalue())


def load_net(cls, path):
    """Read a net from ``.npz``, ``.safetensors`` or a ``.pt``/``.pth`` state dict."""
    path = Path(path)
    with open(path, "rb") as fh:  # FileNotFoundError / IsADirectoryError pass through
        head = fh.read(16)
    if path.suffix in (".pt", ".pth"):
        tensors = _torch_state_dict(path)
    elif path.suffix == ".safetensors" or _looks_like_safetensors(head):
        tensors = _safetensors(path)
    elif head[:4] == b"PK\x03\x04":
        return cls(*_npz_layers(path))
    else:
        raise ValueError(f"{path}: not a valid .npz network file (not a zip archive), nor .safetensors "
                         "or a .pt/.pth state dict")
    return cls(*layers_from_tensors(tensors, str(path)))


def _looks_like_safetensors(head):
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 2 <= n < 100_000_000 and head[8:9] == b"{"


def _safetensors(path):
    try:
        from safetensors.numpy import load_file

        return load_file(str(path))
    except ImportError:
        raise
    except Exception as exc:  # safetensors raises its own SafetensorError and TypeErrors (bfloat16)
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: not a readable .safetensors file ({text})") from None


def _torch_state_dict(path):
    try:
        import torch
    except ImportError:
        raise ValueError(f"{path}: reading .pt/.pth needs PyTorch (pip install 'relu-pieces[torch]'); "
                         "or save the state dict with safetensors") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickled code: say so in one line
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: torch.load(weights_only=True) refused it ({text[:200]})") from None
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors "
                         "(save model.state_dict())")
    return {k: v.detach().to(torch.float64).numpy() for k, v in obj.items()}


def _npz_layers(path):
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
            n = sum(1 for k in keys if _OURS.match(k) and k[0] == "W")
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
    return ws, bs


def layers_from_tensors(tensors, source):
    """``(weights, biases)`` from named tensors: ours (``W0``, ``b0``, ...) or a PyTorch
    ``nn.Sequential`` state dict's (``0.weight``, ``0.bias``, ``2.weight``, ...; a
    common prefix such as ``model.`` is allowed). Refuses, naming the tensor, what does
    not fit."""
    if not tensors:
        raise ValueError(f"{source}: holds no tensors")
    if any(_OURS.match(k) for k in tensors):
        n = sum(1 for k in tensors if k[0] == "W")
        for i in range(n):
            for k in (f"W{i}", f"b{i}"):
                if k not in tensors:
                    raise ValueError(f"{source}: tensor {k} is missing")
        extra = sorted(set(tensors) - {f"{c}{i}" for i in range(n) for c in "Wb"})
        if extra:
            raise ValueError(f"{source}: unknown tensor {extra[0]}")
        names = [(f"W{i}", f"b{i}") for i in range(n)]
    else:
        names = _torch_names(tensors, source)
    ws, bs = [], []
    for wname, bname in names:
        w = _numeric(tensors[wname], wname, source)
        if w.ndim != 2:
            raise ValueError(f"{source}: tensor {wname} has shape {tuple(w.shape)}, not that of a Linear layer "
                             "(only Linear and ReLU layers are read)")
        if ws and w.shape[1] != ws[-1].shape[0]:
            raise ValueError(f"{source}: tensor {wname} has shape {tuple(w.shape)}, taking {w.shape[1]} inputs, "
                             f"but the layer before gives {ws[-1].shape[0]}")
        b = np.zeros(w.shape[0]) if bname not in tensors else _numeric(tensors[bname], bname, source)
        if b.shape != (w.shape[0],):
            raise ValueError(f"{source}: tensor {bname} has shape {tuple(b.shape)}; its layer has {w.shape[0]} "
                             "outputs")
        ws.append(w)
        bs.append(b)
    return ws, bs


def _numeric(a, name, source):
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{source}: tensor {name} holds {a.dtype} data, not numbers")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{source}: tensor {name} holds NaN or inf")
    return a


def _torch_names(tensors, source):
    """``[(weight name, bias name), ...]`` of a state dict's Linear layers, in order."""
    layers = {}
    prefixes = set()
    for k in tensors:
        m = _TORCH.match(k)
        if not m:
            raise ValueError(f"{source}: unknown tensor {k} (expected W0, b0, ... or a PyTorch nn.Sequential's "
                             "0.weight, 0.bias, 2.weight, ...)")
        prefixes.add(m.group(1))
        layers.setdefault(int(m.group(2)), set()).add(m.group(3))
    if len(prefixes) > 1:
        raise ValueError(f"{source}: tensors of several modules ({', '.join(sorted(repr(p) for p in prefixes))}); "
                         "only one nn.Sequential of Linear and ReLU layers is read")
    prefix = prefixes.pop()
    idx = sorted(layers)
    for i in idx:
        if "weight" not in layers[i]:
            raise ValueError(f"{source}: tensor {prefix}{i}.bias has no {prefix}{i}.weight")
    for i, j in zip(idx[:-1], idx[1:]):
        if j - i != 2:
            what = "nothing" if j - i == 1 else f"{j - i - 1} modules without parameters"
            raise ValueError(f"{source}: layers {prefix}{i} and {prefix}{j} have {what} between them; a state "
                             "dict is read as nn.Sequential(Linear, ReLU, Linear, ...) (use ReLUNet.from_torch "
                             "on the module to read others' layers)")
    return [(f"{prefix}{i}.weight", f"{prefix}{i}.bias") for i in idx]

