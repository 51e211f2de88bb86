"""The ``pieces`` command line: a thin layer over the library API.

Every error the user can cause ends as one line on stderr and exit code 2; output files
are written to a temporary file and renamed, so they are never half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys

__all__ = ["main", "UsageError"]


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # let "-inf" and "-1e3" be values, as "-1" already is
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+|inf|infinity)([eE][+-]?\d+)?$", re.I)

    def error(self, message):  # argparse prints usage + exits 2; keep it to one line
        raise UsageError(message)


def _float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _cmd_count(args):
    from .count import count_pieces
    from .net import ReLUNet

    net = ReLUNet.load(args.net)
    c = count_pieces(net, tuple(args.interval), method=args.method, n=args.n)
    if args.json:
        d = c.as_dict(breakpoints=args.breakpoints)
        d.update(
            net=str(args.net), interval=[_json_float(v) for v in args.interval],
            depth=net.depth, widths=list(net.widths),
        )
        print(json.dumps(d))
    else:
        print(f"net          {args.net}")
        print(f"widths       {list(net.widths)} (depth {net.depth}, {net.n_neurons} neurons)")
        print(f"interval     [{args.interval[0]:g}, {args.interval[1]:g}]")
        print(f"method       {c.method}")
        print(f"pieces       {c.pieces}")
        print(f"regions      {c.regions}")
        if args.breakpoints:
            print("breakpoints  " + " ".join(repr(float(x)) for x in c.breakpoints))
    return 0


def _json_float(v):
    return v if math.isfinite(v) else str(v)


def _cmd_demo(args):
    """A small demo: a sawtooth and a random net, exact vs rational vs grid."""
    from .constructions import sawtooth, yarotsky_square
    from .count import count_pieces
    from .net import ReLUNet

    rows = []
    for L in (4, 8, 12):
        rows.append((f"sawtooth({L})", sawtooth(L), (0.0, 1.0)))
    rows.append(("yarotsky_square(6)", yarotsky_square(6), (0.0, 1.0)))
    for L in (4, 8, 16):
        rows.append((f"he random w=16 L={L}", ReLUNet.random([16] * L, seed=0), (-3.0, 3.0)))
    print(f"{'network':24} {'interval':>10} {'exact pieces':>13} {'regions':>8} {'grid pieces':>12} {'grid regions':>13}")
    for name, net, iv in rows:
        e = count_pieces(net, iv)
        g = count_pieces(net, iv, method="grid", n=1001)
        print(f"{name:24} {str(list(iv)):>10} {e.pieces:>13} {e.regions:>8} {g.pieces:>12} {g.regions:>13}")
    print("grid = 1001 sample points, as sampling tools count; exact = this package's count.")
    return 0


def build_parser():
    from . import __version__, config

    p = _Parser(prog="pieces", description="Affine pieces of ReLU networks: count, train, study.")
    p.add_argument("--version", action="version", version=f"pieces {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("count", help="count the affine pieces of a saved net")
    c.add_argument("net", help="network file (.npz, from ReLUNet.save)")
    c.add_argument("--interval", nargs=2, type=_float, metavar=("A", "B"), default=[0.0, 1.0],
                   help="domain interval (default 0 1; -inf inf for the whole line)")
    c.add_argument("--method", choices=config.METHODS, default="exact")
    c.add_argument("--n", type=int, default=None, help="grid points for --method grid")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--breakpoints", action="store_true", help="also print the breakpoints")
    c.set_defaults(func=_cmd_count)

    d = sub.add_parser("demo", help="count a few constructions and random nets")
    d.set_defaults(func=_cmd_demo)
    return p


def main(argv=None):
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("missing command; try 'pieces --help'")
        return args.func(args)
    except UsageError as exc:
        print(f"pieces: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            msg = f"{exc.strerror}: {exc.filename}"
        print(f"pieces: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pieces: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
