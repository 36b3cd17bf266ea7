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
    from weave_nb.procutil import pid_alive, reap

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
