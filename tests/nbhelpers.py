"""Helpers shared by the sandbox, notebook, docs and browser tests (not a test module)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import weave_nb

REPO_ROOT = Path(weave_nb.__file__).resolve().parent.parent
NOTEBOOKS = REPO_ROOT / "notebooks"
DOCS = REPO_ROOT / "docs"


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    from weave_nb.core.procutil import pid_alive, reap

    reap(pid)
    return pid_alive(pid)


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child processes: this source tree first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("PYTHONSTARTUP", None)
    env.update(extra)
    return env


def python() -> str:
    """The interpreter running the tests."""
    return sys.executable


def tree_rss(pid: int) -> int:
    """Resident memory, in bytes, of every live descendant of ``pid`` (summed; shared pages count twice)."""
    total = 0
    for child in children_of(pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


class PeakMemory:
    """Samples :func:`tree_rss` of this process's descendants on a thread; ``peak`` is the largest seen."""

    def __init__(self, interval: float = 0.1) -> None:
        import threading

        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
