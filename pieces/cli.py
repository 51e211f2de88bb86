"""The ``pieces`` command line: a thin layer over the library API.

Every error the user can cause ends as one line on stderr and exit code 2; output files
are written to a temporary file and renamed, so they are never half-written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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


def _check_outputs(*paths):
    from ._io import check_writable

    for p in paths:
        reason = check_writable(p) if p else None
        if reason:
            raise UsageError(reason)


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


def _widths(text):
    try:
        if "x" in text:
            w, d = text.split("x")
            widths = [int(w)] * int(d)
        else:
            widths = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must look like 16x8 or 16,16,8: {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive: {text!r}")
    return widths


def _lr(text):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _cmd_train(args):
    from .init import initial_net
    from .net import ReLUNet
    from .train import TrainConfig, history_to_csv, train

    _check_outputs(args.out, args.history)
    if args.net:
        net = ReLUNet.load(args.net)
    else:
        net = initial_net(args.init, widths=args.widths, depth=args.depth, seed=args.seed, perturb=args.perturb)
    cfg = TrainConfig(
        optimizer=args.optimizer, lr=args.lr, steps=args.steps, n_samples=args.n_samples,
        precision=args.precision, batch_size=args.batch_size, record_every=args.record_every,
        seed=args.seed, interval=tuple(args.interval), sampling=args.sampling,
        schedule=args.schedule, lr_final=args.lr_final, device=args.device,
    )
    res = train(net, args.target, cfg)
    res.net.save(args.out)
    history_to_csv(res.history, args.history)
    last = res.history[-1]
    status = "diverged" if res.diverged else "ok"
    lam = f", lambda_max {res.lambda_max:.6g}" if res.lambda_max == res.lambda_max else ""
    print(f"{status}: {res.steps_done} steps at lr {res.lr:.6g}{lam}, loss {last['loss']:.6g}, "
          f"pieces {last['pieces']}, regions {last['regions']}; wrote {args.out} and {args.history}")
    return 0


def _cmd_study(args):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from .study import EXPERIMENTS, default_settings, run_study

    from .study.schema import SettingsError, to_toml, validate_settings

    size = "quick" if args.quick else "full" if args.full else "default"
    settings = default_settings(size)
    if args.config:
        try:
            with open(args.config, "rb") as fh:
                override = tomllib.load(fh)
        except FileNotFoundError:
            raise UsageError(f"config file not found: {args.config}") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise UsageError(f"config file {args.config}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise UsageError(f"{args.config}: not UTF-8 text") from None
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{args.config}: invalid TOML ({exc})") from None
        for key, value in override.items():
            # a table overrides the keys it names and keeps the others
            if isinstance(value, dict) and isinstance(settings.get(key), dict):
                settings[key] = {**settings[key], **value}
            else:
                settings[key] = value
    if args.seeds is not None:
        settings["seeds"] = args.seeds
    try:
        settings = validate_settings(settings)
    except SettingsError as exc:
        where = f"{args.config}: " if args.config else ""
        raise UsageError(where + str(exc)) from None
    if args.print_config:
        print(to_toml(settings), end="")
        return 0
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()] if args.experiments else list(EXPERIMENTS)
    for e in experiments:
        if e not in EXPERIMENTS:
            raise UsageError(f"unknown experiment {e!r}; expected some of {', '.join(EXPERIMENTS)}")
    if args.jobs < 1:
        raise UsageError("--jobs must be >= 1")
    out = args.out or f"runs/{size}"
    from .study import make_tasks
    from .study.cost import estimate, format_estimate

    def announce(todo):
        lines = format_estimate(estimate(todo, jobs=args.jobs), args.jobs)
        for line in lines if size == "full" else lines[:1]:
            print(line, flush=True)

    # run_study resolves the device before it writes anything
    if args.plan is not None:
        return _print_plan(make_tasks(settings, experiments), args.plan, args.jobs)
    info = run_study(out, settings, experiments, size=size, jobs=args.jobs, progress=not args.no_progress,
                     device=args.device, announce=announce, executor=args.executor, scheduler=args.scheduler,
                     scheduler_file=args.scheduler_file)
    print(f"{info['n_run']} tasks run, {info['n_done']} already done, {info['n_tasks']} in all, "
          f"{info['wall_s']:.1f} s; wrote {out}/results.csv, {out}/meta.json and {out}/report.html")
    return 0


def _print_plan(tasks, wall, jobs):
    """``--plan [SECONDS]``: tasks and estimated CPU-seconds per experiment, and the
    workers needed to finish in ``SECONDS`` of wall time; nothing runs."""
    from .study.cost import COSTS_FILE, estimate, load_costs

    costs = load_costs()
    est = estimate(tasks, costs, jobs=jobs)
    if not est["per_experiment"]:
        raise UsageError(f"no cost calibration ({COSTS_FILE}); run a study and calibrate from its timings.csv")
    measured = costs.get("measured_on", {})
    print(f"plan: {est['n_tasks']} tasks, an estimated {est['cpu_s']:.0f} CPU-s (per-task costs measured on "
          f"{measured.get('cpus', '?')} CPUs, {measured.get('processor', '?')}; {COSTS_FILE.name})")
    for exp, (n, sec) in sorted(est["per_experiment"].items(), key=lambda kv: -kv[1][1]):
        print(f"  {exp:14s} {n:5d} tasks  {sec:10.0f} CPU-s")
    longest = max(estimate([t], costs)["cpu_s"] for t in tasks) if tasks else 0.0
    print(f"  longest task about {longest:.0f} s: no number of workers finishes sooner")
    print(f"  with {jobs} local process(es): about {est['cpu_s'] / max(jobs, 1) / 60:.1f} min")
    if wall:
        if wall < longest:
            print(f"  {wall:.0f} s is shorter than the longest task: not reachable")
        else:
            workers = math.ceil(est["cpu_s"] / wall)
            print(f"  to finish in {wall:.0f} s: at least {workers} single-threaded workers "
                  f"(pieces study --executor dask --scheduler-file FILE)")
    return 0


def _cmd_report(args):
    from report.render import write_report

    out = args.output
    if args.asv:
        from report.asv_history import write_asv_report
        from report.drift import GateError

        out = out or "asv-report.html"
        _check_outputs(out)
        try:
            print(f"wrote {write_asv_report(args.asv, out)}")
        except GateError as exc:
            raise UsageError(str(exc)) from None
        return 0
    if args.run_dir is None:
        raise UsageError("give a run directory (or --asv RESULTS_DIR)")
    _check_outputs(out)
    path = write_report(args.run_dir, out)
    print(f"wrote {path}")
    return 0


def _cmd_gate(args):
    from report.drift import GateError, format_table, gate, html_page, junit_xml

    from ._io import atomic_write

    _check_outputs(args.json, args.junit, args.html)
    try:
        result = gate(args.baseline, args.candidate, metric_tol=args.metric_tol, factor=args.factor,
                      results_dir=args.results_dir, machine=args.machine, paired=args.paired)
    except GateError as exc:
        raise UsageError(str(exc)) from None
    print(format_table(result))
    if args.json:
        atomic_write(args.json, json.dumps(result.to_json(), indent=2))
    if args.junit:
        atomic_write(args.junit, junit_xml(result))
    if args.html:
        atomic_write(args.html, html_page(result))
    return 1 if result.drifted else 0


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

    t = sub.add_parser("train", help="train a net, write it (.npz) and its history (.csv)")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--net", help="start from this network file")
    src.add_argument("--init", default="he", choices=("he", "glorot", "uniform", "sawtooth", "yarotsky_square"))
    t.add_argument("--widths", type=_widths, default=[16] * 4, help="hidden widths: 16x4 or 8,16,8 (random inits)")
    t.add_argument("--depth", type=int, default=None, help="depth of a construction init")
    t.add_argument("--perturb", type=float, default=0.0, help="relative noise added to the init")
    t.add_argument("--target", default="square", help="square, sine:k, sawtooth:k, abs, yarotsky:m")
    t.add_argument("--optimizer", default="gd", help="gd, sgd or adam")
    t.add_argument("--lr", type=_lr, default=0.01, help="a number, or auto (from the loss's curvature)")
    t.add_argument("--steps", type=int, default=1000)
    t.add_argument("--n-samples", type=int, default=256)
    t.add_argument("--precision", default="fp64", help="fp64, fp32, fp16, bf16 or pK")
    t.add_argument("--batch-size", type=int, default=None)
    t.add_argument("--record-every", type=int, default=100)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--interval", nargs=2, type=_float, metavar=("A", "B"), default=[0.0, 1.0])
    t.add_argument("--sampling", default="grid", help="grid or random")
    t.add_argument("--schedule", default="constant", help="constant, cosine, linear or exp")
    t.add_argument("--lr-final", type=float, default=0.01, help="final lr as a fraction of --lr")
    t.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"),
                   help="cpu, cuda (an error without a GPU) or auto (the GPU if there is one)")
    t.add_argument("-o", "--out", default="trained.npz", help="trained network (.npz)")
    t.add_argument("--history", default="history.csv", help="history (.csv)")
    t.set_defaults(func=_cmd_train)

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
    st.set_defaults(func=_cmd_study)

    rp = sub.add_parser("report", help="(re)render the HTML report of a run directory")
    rp.add_argument("run_dir", nargs="?", default=None)
    rp.add_argument("-o", "--output", default=None, help="HTML file (default RUN_DIR/report.html)")
    rp.add_argument("--asv", default=None, metavar="RESULTS_DIR",
                    help="report over all commits in asv's results (e.g. .asv/results)")
    rp.set_defaults(func=_cmd_report)

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
    g.set_defaults(func=_cmd_gate)

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
    except RuntimeError as exc:  # e.g. a device that is not there
        print(f"pieces: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pieces: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
