"""The ``pieces`` command line: a thin layer over the library API.

Every error the user can cause ends as one line on stderr and exit code 2; output files
are written to a temporary file and renamed, so they are never half-written.
"""

from __future__ import annotations

import os
import sys
import threading

from ._cli.commands import cmd_count, cmd_demo, cmd_train
from ._cli.common import Parser, UsageError, lr, number, widths
from ._cli.study import cmd_gate, cmd_report, cmd_study

__all__ = ["main", "console_main", "UsageError"]


def build_parser():
    from . import __version__, config

    p = Parser(prog="pieces", description="Affine pieces of ReLU networks: count, train, study.")
    p.add_argument("--version", action="version", version=f"pieces {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=Parser)

    c = sub.add_parser("count", help="count the affine pieces of a saved net")
    c.add_argument("net", help="network file: .npz or .safetensors (ours or a PyTorch nn.Sequential's), "
                               ".pt/.pth state dict (needs torch)")
    c.add_argument("--interval", nargs=2, type=number, metavar=("A", "B"), default=[0.0, 1.0],
                   help="domain interval (default 0 1; -inf inf for the whole line)")
    c.add_argument("--method", choices=config.METHODS, default="exact")
    c.add_argument("--n", type=int, default=None, help="grid points for --method grid")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.add_argument("--breakpoints", nargs="?", const=True, default=False, metavar="FILE.npy",
                   help="also print the breakpoints, or with FILE.npy stream them to that file (any number)")
    c.add_argument("--max-memory", type=float, default=config.COUNT_MAX_MEMORY / 2**30, metavar="GIB",
                   help="memory budget in GiB (default %(default)g); --method exact counts beyond it in chunks")
    c.add_argument("--max-seconds", type=number, default=config.COUNT_CLI_MAX_SECONDS,
                   help="stop early, with the estimate, when a count would take longer (default %(default)g)")
    c.add_argument("--segment", nargs=2, metavar=("A", "B"), default=None,
                   help="count along the segment from A to B (comma-separated coordinates or .npy files)")
    c.add_argument("--lines", type=int, default=None, metavar="N",
                   help="count along N segments between random pairs of rows of --data")
    c.add_argument("--data", default=None, metavar="X.npy", help="points (n, d) for --lines")
    c.add_argument("--seed", type=int, default=0, help="seed of the pairs drawn for --lines (default 0)")
    c.add_argument("--csv", default=None, metavar="FILE.csv", help="with --lines: write one row per segment")
    c.set_defaults(func=cmd_count)

    t = sub.add_parser("train", help="train a net, write it (.npz) and its history (.csv)")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--net", help="start from this network file")
    src.add_argument("--init", default="he", choices=("he", "glorot", "uniform", "sawtooth", "yarotsky_square"))
    t.add_argument("--widths", type=widths, default=[16] * 4, help="hidden widths: 16x4 or 8,16,8 (random inits)")
    t.add_argument("--depth", type=int, default=None, help="depth of a construction init")
    t.add_argument("--perturb", type=float, default=0.0, help="relative noise added to the init")
    t.add_argument("--target", default="square", help="square, sine:k, sawtooth:k, abs, yarotsky:m")
    t.add_argument("--optimizer", default="gd", help="gd, sgd or adam")
    t.add_argument("--lr", type=lr, default=0.01, help="a number, or auto (from the loss's curvature)")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--n-samples", type=int, default=256)
    t.add_argument("--precision", default="fp64", help="fp64, fp32, fp16, bf16 or pK")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--record-every", type=int, default=100)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--interval", nargs=2, type=number, metavar=("A", "B"), default=[0.0, 1.0])
    t.add_argument("--sampling", default="grid", help="grid or random")
    t.add_argument("--schedule", default="constant", help="constant, cosine, linear or exp")
    t.add_argument("--lr-final", type=float, default=0.01, help="final lr as a fraction of --lr")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                   help="cpu, cuda (an error without a GPU) or auto (the GPU if there is one)")
    t.add_argument("-o", "--out", default="trained.npz", help="trained network (.npz)")
    t.add_argument("--history", default="history.csv", help="history (.csv)")
    t.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="run the numerical study into a run directory (resumable)")
    st.add_argument("--experiments", default=None,
                    help="comma-separated: growth,constructions,perturbation,assumptions,backprop,precision")
    size = st.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smoke-size grid of every experiment")
    size.add_argument("--full", action="store_true", help="the large grid (hours on 2 cores)")
    st.add_argument("--out", default=None, help="run directory (default runs/<size>)")
    st.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel processes")
    st.add_argument("--seeds", type=int, default=None, help="seeds per configuration")
    st.add_argument("--config", default=None, help="TOML file overriding settings")
    st.add_argument("--no-progress", action="store_true", help="no progress bar")
    st.add_argument("--executor", choices=("local", "dask"), default="local",
                    help="local processes (--jobs), or a dask.distributed cluster")
    where = st.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="dask scheduler address, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster of --jobs workers)")
    where.add_argument("--scheduler-file", default=None, metavar="FILE", help="dask scheduler file")
    st.add_argument("--plan", nargs="?", type=float, const=0.0, default=None, metavar="SECONDS",
                    help="print the task counts, the estimated CPU-seconds and the workers needed to finish "
                         "in SECONDS, and exit")
    st.add_argument("--print-config", action="store_true",
                    help="print the resolved settings as TOML (a --config file) and exit")
    st.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                    help="where training runs: cpu, cuda (an error without a GPU), or auto (the GPU if "
                         "there is one); with cuda, tasks run one after another in this process")
    st.set_defaults(func=cmd_study)

    rp = sub.add_parser("report", help="(re)render the HTML report of a run directory")
    rp.add_argument("run_dir", nargs="?", default=None)
    rp.add_argument("-o", "--output", default=None, help="HTML file (default RUN_DIR/report.html)")
    rp.add_argument("--asv", default=None, metavar="RESULTS_DIR",
                    help="report over all commits in asv's results (e.g. .asv/results)")
    rp.set_defaults(func=cmd_report)

    g = sub.add_parser("gate", help="fail (exit 1) on metric or speed drift between two measurements")
    g.add_argument("baseline", help="asv commit/ref, asv result file, or study run dir")
    g.add_argument("candidate", help="asv commit/ref, asv result file, or study run dir")
    g.add_argument("--metric-tol", type=float, default=0.0, help="allowed change of a count (default: exact)")
    g.add_argument("--factor", type=float, default=1.2, help="speed ratio that counts as a regression")
    g.add_argument("--results-dir", default=".asv/results")
    g.add_argument("--paired", action="store_true",
                   help="the sides' samples were taken in interleaved rounds (asv --interleave-rounds): "
                        "compare them pairwise, so that a load burst that hits both cancels")
    g.add_argument("--machine", default=None, help="asv machine name to look under")
    g.add_argument("--json", default=None)
    g.add_argument("--junit", default=None)
    g.add_argument("--html", default=None)
    g.set_defaults(func=cmd_gate)

    d = sub.add_parser("demo", help="count a few constructions and random nets")
    d.set_defaults(func=cmd_demo)
    return p


def _terminate(signum, frame):  # SIGTERM ends a run as Ctrl-C does: partial files removed, one line
    raise KeyboardInterrupt


def _interrupted():
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
    print("pieces: interrupted", file=sys.stderr)
    return 130


def console_main():
    """The ``pieces`` script: :func:`main`, then an exit that does not wait for counting
    threads still inside a kernel after an interrupt (their results are dropped)."""
    rc = main()
    if rc == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return rc


def main(argv=None):
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError("missing command; try 'pieces --help'")
        return args.func(args)
    except UsageError as exc:
        print(f"pieces: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError as exc:  # CountMemoryError: a budget that a method cannot keep
        print(f"pieces: error: {str(exc).splitlines()[0] if str(exc) else 'out of memory'}", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            msg = f"{exc.strerror}: {exc.filename}"
        print(f"pieces: error: {msg}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # e.g. a device that is not there
        print(f"pieces: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return _interrupted()
    except SystemError as exc:  # a signal that lands inside a Numba call surfaces as this
        if isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt):
            return _interrupted()
        raise
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(console_main())
