"""``pieces count --segment`` and ``--lines``: nets from R^d counted along segments.

``--lines N --data X.npy`` draws N segments between random pairs of distinct rows of X
(seeded), counts each exactly, and reports pieces and regions per segment and per unit
length (the segment's Euclidean length): mean, median and a 95% confidence interval
for the mean (Student's t over the N segments).

Examples
--------
>>> point("0,1.5,-2", 3).tolist()
[0.0, 1.5, -2.0]
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from .common import UsageError, check_outputs

__all__ = ["point", "cmd_segment", "cmd_lines"]


def point(text, d):
    """A point of R^d from ``"x1,x2,..."`` or an ``.npy`` file holding d numbers."""
    if str(text).endswith(".npy"):
        try:
            x = np.load(text, allow_pickle=False)
        except FileNotFoundError:
            raise UsageError(f"no such file: {text}") from None
        except (ValueError, OSError):
            raise UsageError(f"{text}: not a readable .npy file of numbers (pickles are never loaded)") from None
    else:
        try:
            x = np.array([float(v) for v in str(text).split(",")])
        except ValueError:
            raise UsageError(f"a point is comma-separated numbers or an .npy file, got {text!r}") from None
    if x.dtype.kind not in "fiu":
        raise UsageError(f"{text}: holds {x.dtype} data, not numbers")
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    if x.size != d:
        raise UsageError(f"the point {text} has {x.size} coordinates; the net takes {d}")
    if not np.isfinite(x).all():
        raise UsageError(f"the point {text} has a NaN or inf coordinate")
    return x


def _count(net, x0, x1, args):
    from ..count import count_pieces

    return count_pieces(net, segment=(x0, x1), method=args.method,
                        max_memory=max(1, int(args.max_memory * 2**30)), breakpoints=True)


def cmd_segment(net, args):
    x0, x1 = (point(v, net.in_dim) for v in args.segment)
    c = _count(net, x0, x1, args)
    length = float(np.linalg.norm(x1 - x0))
    if args.json:
        d = c.as_dict(breakpoints=bool(args.breakpoints))
        d.update(net=str(args.net), segment=[x0.tolist(), x1.tolist()], length=length, in_dim=net.in_dim,
                 out_dim=net.out_dim, widths=list(net.widths))
        print(json.dumps(d))
        return 0
    print(f"net          {args.net}")
    print(f"maps         R^{net.in_dim} -> R^{net.out_dim}, widths {list(net.widths)}")
    print(f"segment      length {length:.6g}, t in [0, 1]")
    print(f"method       {c.method}")
    print(f"pieces       {c.pieces}")
    print(f"regions      {c.regions}")
    if c.per_output is not None:
        print("per output   " + " ".join(str(p) for p in c.per_output))
    if args.breakpoints:
        print("breakpoints  " + " ".join(repr(float(x)) for x in c.breakpoints))
    return 0


def _pairs(n_rows, n, seed):
    if n_rows < 2:
        raise UsageError(f"--data needs at least 2 rows to draw segments between, got {n_rows}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_rows, n)
    j = (i + rng.integers(1, n_rows, n)) % n_rows  # another row
    return i, j


def _stats(v):
    """``(mean, median, lo, hi)``: the 95% CI of the mean from Student's t."""
    from scipy import stats

    v = np.asarray(v, dtype=np.float64)
    m = float(v.mean())
    if v.size < 2 or np.all(v == v[0]):
        return m, float(np.median(v)), m, m
    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, float(np.median(v)), m - half, m + half


def cmd_lines(net, args):
    from tqdm import tqdm

    if args.lines < 1:
        raise UsageError(f"--lines must be a positive number of segments, got {args.lines}")
    if args.data is None:
        raise UsageError("--lines needs --data X.npy, the points to draw segments between")
    try:
        X = np.load(args.data, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"no such file: {args.data}") from None
    except (ValueError, OSError):
        raise UsageError(f"{args.data}: not a readable .npy file of numbers (pickles are never loaded)") from None
    if X.dtype.kind not in "fiu" or X.ndim != 2 or X.shape[1] != net.in_dim:
        raise UsageError(f"--data must hold an (n, {net.in_dim}) array of numbers for this net, got "
                         f"{X.dtype} {X.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise UsageError(f"{args.data} holds NaN or inf")
    check_outputs(args.csv)
    rows = []
    i, j = _pairs(X.shape[0], args.lines, args.seed)
    for a, b in tqdm(list(zip(i, j)), desc="segments", unit="seg", disable=None, mininterval=1.0, delay=2.0):
        c = _count(net, X[a], X[b], args)
        length = float(np.linalg.norm(X[b] - X[a]))
        rows.append((int(a), int(b), length, c.pieces, c.regions))
    summary = _summary(rows)
    if args.csv:
        _write_csv(args.csv, rows)
    if args.json:
        print(json.dumps(dict(net=str(args.net), data=str(args.data), lines=args.lines, seed=args.seed,
                              method=args.method, **summary)))
        return 0
    print(f"net          {args.net} (R^{net.in_dim} -> R^{net.out_dim}, widths {list(net.widths)})")
    print(f"segments     {len(rows)} between random pairs of rows of {args.data} (seed {args.seed})")
    for key, label in (("pieces", "pieces"), ("regions", "regions"), ("pieces_per_length", "pieces/length"),
                       ("regions_per_length", "regions/length")):
        s = summary[key]
        print(f"{label:<14} mean {s['mean']:.6g}  median {s['median']:.6g}  95% CI [{s['ci95'][0]:.6g}, "
              f"{s['ci95'][1]:.6g}]")
    if args.csv:
        print(f"per segment  written to {args.csv}")
    return 0


def _summary(rows):
    arr = np.array([r[2:] for r in rows], dtype=np.float64)
    length, pieces, regions = arr[:, 0], arr[:, 1], arr[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols = {"pieces": pieces, "regions": regions,
                "pieces_per_length": (pieces / length)[length > 0],
                "regions_per_length": (regions / length)[length > 0]}
    out = {}
    for k, v in cols.items():
        m, med, lo, hi = _stats(v) if v.size else (math.nan,) * 4
        out[k] = {"mean": m, "median": med, "ci95": [lo, hi]}
    return out


def _write_csv(path, rows):
    from .._io import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["segment", "row_a", "row_b", "length", "pieces", "regions", "pieces_per_length",
                "regions_per_length"])
    for k, (a, b, length, p, r) in enumerate(rows):
        per = (p / length, r / length) if length > 0 else (math.nan, math.nan)
        w.writerow([k, a, b, repr(length), p, r, repr(per[0]), repr(per[1])])
    atomic_write(Path(path), buf.getvalue().encode())
