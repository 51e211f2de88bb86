"""``pieces study``, ``pieces report`` and ``pieces gate``: the study's run directory, its
report, and the drift gate."""

from __future__ import annotations

import json
import math

from .common import UsageError, check_outputs

__all__ = ["cmd_study", "cmd_report", "cmd_gate"]


def cmd_study(args):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from ..study import EXPERIMENTS, default_settings, run_study

    from ..study.schema import SettingsError, to_toml, validate_settings

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
    from ..study import make_tasks
    from ..study.cost import estimate, format_estimate

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
    from ..study.cost import COSTS_FILE, estimate, load_costs

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


def cmd_report(args):
    from report.render import write_report

    out = args.output
    if args.asv:
        from report.asv_history import write_asv_report
        from report.drift import GateError

        out = out or "asv-report.html"
        check_outputs(out)
        try:
            print(f"wrote {write_asv_report(args.asv, out)}")
        except GateError as exc:
            raise UsageError(str(exc)) from None
        return 0
    if args.run_dir is None:
        raise UsageError("give a run directory (or --asv RESULTS_DIR)")
    check_outputs(out)
    path = write_report(args.run_dir, out)
    print(f"wrote {path}")
    return 0


def cmd_gate(args):
    from report.drift import GateError, format_table, gate, html_page, junit_xml

    from .._io import atomic_write

    check_outputs(args.json, args.junit, args.html)
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

