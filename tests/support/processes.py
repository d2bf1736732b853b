"""Other processes for storage tests: a worker that writes, merges or crashes, or holds the file."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def worker(*args: object, stdin: bool = False) -> subprocess.Popen[str]:
    """Start `tests.support.storage_worker` with `args` (its stdout is one JSON line per event)."""
    return subprocess.Popen(  # noqa: S603 - our own worker module
        [sys.executable, "-m", "tests.support.storage_worker", *map(str, args)],
        cwd=ROOT,
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def holding(data_dir: Path, mode: str) -> Iterator[None]:
    """Another process holds the database file until the block ends."""
    holder = worker(mode, data_dir, stdin=True)
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert json.loads(holder.stdout.readline()) == {"held": True}, (
        holder.stderr.read() if holder.stderr else ""
    )
    try:
        yield
    finally:
        holder.stdin.write("release\n")
        holder.stdin.flush()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
        assert json.loads(out.splitlines()[-1]) == {"released": True}
