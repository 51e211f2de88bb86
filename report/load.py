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
    """Read ``results.csv`` and ``meta.json`` of a run directory.

    Raises
    ------
    LoadError
        If a file is missing, the header is not the study's, or a row is truncated.
    """
    from pieces.study.tasks import COLUMNS

    run_dir = Path(run_dir)
    path = run_dir / "results.csv"
    if not path.is_file():
        raise LoadError(f"{run_dir} is not a run directory (no results.csv)")
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(header) != COLUMNS:
            raise LoadError(f"{path} has another schema (header {header})")
        rows = []
        for line in reader:
            if len(line) != len(COLUMNS):
                raise LoadError(f"{path} is truncated or corrupt at line {reader.line_num}")
            rows.append(line)
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
            meta = json.loads(meta_path.read_text())
        except ValueError as exc:
            raise LoadError(f"{meta_path} is not valid JSON ({exc})") from None
    return RunData(df, meta, run_dir)
