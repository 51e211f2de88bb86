"""``pieces count``, ``pieces train`` and ``pieces demo``: a net in, counts or a trained
net out."""

from __future__ import annotations

import json
import math
import sys

from .common import UsageError, check_outputs, json_float

__all__ = ["cmd_count", "cmd_train", "cmd_demo"]


def cmd_count(args):
    from ..count import count_pieces
    from ..net import ReLUNet

    net = ReLUNet.load(args.net)
    if args.segment is not None or args.lines is not None:
        return _count_lines(net, args)
    if net.in_dim != 1:
        raise UsageError(f"{args.net} maps R^{net.in_dim} to R^{net.out_dim}: count it along --segment A B or "
                         "--lines N --data X.npy")
    if args.data is not None or args.csv is not None:
        raise UsageError("--data and --csv go with --lines N")
    to_file = args.breakpoints not in (True, False)
    if to_file:
        if not str(args.breakpoints).endswith(".npy"):
            raise UsageError(f"--breakpoints FILE must name an .npy file, got {args.breakpoints!r}")
        check_outputs(args.breakpoints)
    if not (args.max_memory > 0 and math.isfinite(args.max_memory)):
        raise UsageError(f"--max-memory must be a positive number of GiB, got {args.max_memory:g}")
    if not args.max_seconds > 0:
        raise UsageError(f"--max-seconds must be positive, got {args.max_seconds:g}")
    extra = {}
    if args.method in ("exact", "certified"):
        extra = dict(max_seconds=args.max_seconds, progress=_ProgressBar())
    try:
        c = count_pieces(net, tuple(args.interval), method=args.method, n=args.n,
                         max_memory=max(1, int(args.max_memory * 2**30)),
                         breakpoints=args.breakpoints if to_file else bool(args.breakpoints), **extra)
    finally:
        if "progress" in extra:
            extra["progress"].close()
    if args.json:
        d = c.as_dict(breakpoints=args.breakpoints is True)
        if to_file:
            d["breakpoints_file"] = str(args.breakpoints)
        d.update(
            net=str(args.net), interval=[json_float(v) for v in args.interval],
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
        if c.per_output is not None:
            print("per output   " + " ".join(str(p) for p in c.per_output))
        if to_file:
            print(f"breakpoints  {c.pieces - 1} written to {args.breakpoints}")
        elif args.breakpoints:
            print("breakpoints  " + " ".join(repr(float(x)) for x in c.breakpoints))
    return 0


def _count_lines(net, args):
    from .lines import cmd_lines, cmd_segment

    if args.segment is not None and args.lines is not None:
        raise UsageError("--segment and --lines are two ways to count; give one")
    if args.interval != [0.0, 1.0]:
        raise UsageError("--interval is for nets from R; a segment is counted on t in [0, 1]")
    if args.breakpoints not in (True, False) or (args.lines is not None and args.breakpoints):
        raise UsageError("--breakpoints prints the breakpoints (as t) of one --segment; it takes no file here")
    if args.segment is not None:
        if args.data is not None or args.csv is not None:
            raise UsageError("--data and --csv go with --lines N")
        return cmd_segment(net, args)
    return cmd_lines(net, args)


class _ProgressBar:
    """A tqdm bar on stderr for a chunked count, shown once it has run 2 s."""

    def __init__(self):
        import time

        self.t0 = time.perf_counter()
        self.clock = time.perf_counter
        self.bar = None

    def __call__(self, fraction, pieces):
        now = self.clock()
        if self.bar is None:
            if now - self.t0 < 2.0:
                return
            from tqdm import tqdm

            self.bar = tqdm(total=1000, desc="counting", file=sys.stderr, leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} {postfix}")
            self.shown = 0.0
        if now - self.shown < 0.5:  # chunks finish many times a second: redraw twice a second
            return
        self.shown = now
        if fraction == fraction:
            self.bar.n = int(1000 * fraction)
        self.bar.set_postfix_str(f"{pieces:.4g} pieces", refresh=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def cmd_train(args):
    from ..init import initial_net
    from ..net import ReLUNet
    from ..train import TrainConfig, history_to_csv, train

    check_outputs(args.out, args.history)
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


def cmd_demo(args):
    """A small demo: a sawtooth and a random net, exact vs rational vs grid."""
    from ..constructions import sawtooth, yarotsky_square
    from ..count import count_pieces
    from ..net import ReLUNet

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

