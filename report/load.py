"""Reading a study's run directory into a tidy table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["load_run", "RunData", "LoadError"]


class LoadError(ValueError):
    """A run directory that cannot be read: missing, another schema, truncated."""


class RunData:
    """A loaded run: ``results`` (a pandas DataFrame) and ``meta`` (a dict)."""

    def __init__(self, results, meta, path):
        self.results = results
        self.meta = meta
        self.path = Path(path)

    def select(self, **where):
        df = self.results
        for k, v in where.items():
            df = df[df[k] == v]
        return df


def load_run(run_dir):
    """Read ``results.csv`` and ``meta.json`` of a run directory: the rows of its
    finished tasks (a consistent snapshot, also while a study writes it).

    Raises
    ------
    LoadError
        If a file is missing, not UTF-8, of another schema, or damaged (a row with the
        wrong number of fields, a truncated last row of a run that is not running,
        ``done.txt`` naming a task without rows).
    """
    from pieces.study.rundir import RunDirError, check_done_have_rows, holder, read_done, read_results
    from pieces.study.tasks import COLUMNS

    run_dir = Path(run_dir)
    path = run_dir / "results.csv"
    if not path.is_file():
        raise LoadError(f"{run_dir} is not a run directory (no results.csv)")
    try:
        # done.txt first: a task's rows are complete before its id is written, so the
        # rows of these ids are a consistent snapshot even while a study appends
        done = read_done(run_dir)
        rows, _ = read_results(run_dir, COLUMNS, writing=holder(run_dir) is not None)
        if not (run_dir / "done.txt").exists() and rows:
            raise RunDirError(f"{run_dir} has rows but no done.txt; a damaged run dir")
        check_done_have_rows(run_dir, done, rows)
    except RunDirError as exc:
        raise LoadError(str(exc)) from None
    # tasks finish in any order on several workers: in task-id order (each task's rows
    # in its own order), sums and fits over the table are the same bits run after run
    rows = sorted((r for r in rows if r[0] in done), key=lambda r: r[0])
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in ("width", "depth", "seed"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    for col in ("delta", "eta", "step", "layer"):
        df[col] = pd.to_numeric(df[col].replace("", np.nan), errors="coerce")
    values = np.empty(len(df))
    for i, v in enumerate(df["value"]):
        try:
            values[i] = float(v)  # 'nan' and 'inf' are values (a zero reference gradient, ...)
        except ValueError:
            raise LoadError(f"{path}: non-numeric value {v!r} at line {i + 2}") from None
    df["value"] = values
    meta_path = run_dir / "meta.json"
    meta = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_bytes().decode("utf-8"))
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise LoadError(f"{meta_path} is not valid JSON ({exc})") from None
    return RunData(df, meta, run_dir)
