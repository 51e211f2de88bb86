"""A run directory's files as data: one writer at a time, consistent snapshots for
readers, and a one-line diagnosis of every kind of damage.

- **One writer.** ``pieces study`` holds an exclusive ``fcntl.flock`` on ``RUN/.lock``
  for as long as it runs and writes its pid, host and start time into it. A second
  writer fails at once with one line naming the holder. The kernel drops the lock of a
  process that dies, so a killed run never blocks the rerun (the stale text in the
  file is ignored).
- **Snapshots.** A reader (``pieces report``) takes the rows of finished tasks only:
  the ids in ``done.txt`` are read first, and a task's rows are complete before its id
  is written. While a writer holds the lock, a partial last row (an append in progress)
  is expected and skipped.
- **Damage** is diagnosed, never silently used: a truncated last row of a run that is
  not running (``pieces study`` with the same ``--out`` repairs it: it drops the rows of
  unfinished tasks), a row with too many or too few fields, ``done.txt`` naming a task
  without rows, bytes that are not UTF-8.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import socket
import time
from pathlib import Path

__all__ = ["RunDirError", "RunLock", "holder", "read_done", "read_results", "LOCK_NAME"]

LOCK_NAME = ".lock"
_ID = re.compile(r"[0-9a-f]{16}")


class RunDirError(ValueError):
    """A run directory that is in use or damaged: one line, exit code 2."""


def _text(path):
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RunDirError(f"{path}: not UTF-8 text (byte {exc.start}); a damaged run dir, use another --out") from None


def holder(run_dir):
    """A description of the process writing ``run_dir`` (pid, host, start), or None
    if no process holds its lock."""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                info = json.loads(Path(path).read_text() or "{}")
            except (ValueError, OSError):
                info = {}
            return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')}, "
                    f"started {info.get('started', '?')}")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """The writer's lock of a run directory (a context manager).

    Raises
    ------
    RunDirError
        When another process holds it: the line names that process.
    """

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd = None

    def __enter__(self):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = holder(self.path.parent) or "another process"
            raise RunDirError(f"{self.path.parent} is in use by {who}; wait for it to finish or use another --out") \
                from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def read_done(run_dir):
    """The set of finished task ids (``done.txt``), checked."""
    p = Path(run_dir) / "done.txt"
    if not p.exists():
        return set()
    done = set()
    for n, line in enumerate(_text(p).splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if not _ID.fullmatch(line):
            raise RunDirError(f"{p}:{n}: not a task id ({line[:40]!r}); a damaged run dir, use another --out")
        done.add(line)
    return done


def read_results(run_dir, columns, writing=None):
    """``(rows, partial_tail)``: the rows of ``results.csv`` as lists of strings, and
    whether a partial last row was skipped.

    ``writing``: whether a writer holds the run (looked up when None). A partial last
    row is skipped while one does, and is an error otherwise unless ``writing=True``.
    """
    run_dir = Path(run_dir)
    path = run_dir / "results.csv"
    text = _text(path)
    if writing is None:
        writing = holder(run_dir) is not None
    partial = bool(text) and not text.endswith("\n")
    if partial:
        if not writing:
            raise RunDirError(f"{path} ends in a truncated row (a run killed inside a write?); "
                              "'pieces study' with the same --out repairs it")
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != tuple(columns):
        raise RunDirError(f"{path} has another schema (header {header}); use another --out")
    rows = []
    for line in reader:
        if len(line) != len(columns):
            raise RunDirError(f"{path} is truncated or corrupt at line {reader.line_num}: {len(line)} fields, "
                              f"expected {len(columns)}")
        rows.append(line)
    return rows, partial


def check_done_have_rows(run_dir, done, rows):
    """Every id of ``done.txt`` has rows (a task always writes some)."""
    have = {r[0] for r in rows}
    missing = sorted(done - have)
    if missing:
        raise RunDirError(f"{Path(run_dir) / 'done.txt'} names task {missing[0]} (and {len(missing) - 1} more), "
                          "which has no rows in results.csv; a damaged run dir, use another --out")
