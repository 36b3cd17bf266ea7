"""``weave sandbox start|stop|status|env``: the sandbox for terminal users.

``start`` runs the stand-ins of :class:`~weave_nb.sandbox.session.Sandbox` (the AWS
emulator and the Cloud Functions fake) as detached processes that outlive
the command, and records them in ``$WEAVE_HOME/sandbox.json``. ``env``
prints the ``export`` lines that point weave-nb at them (``eval "$(weave
sandbox env)"``), so deployments made meanwhile are marked sandbox, as in a
notebook's ``%weave_sandbox start``. ``stop`` stops them by pid (guarded by
their command line, so a reused pid is never hit), forgets the sandbox
deployments they held and removes the state file.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path
from typing import Any, TextIO

from ..core.errors import WeaveError
from ..core.private_files import private_dir, write_private
from ..core.procutil import pid_alive, stop_process

STATE_FILE = "sandbox.json"
MARKERS = {"aws": "moto_server", "gcp": "gcf_fake"}


def _home() -> Path:
    from ..core.auth import weave_home

    return Path(weave_home())


def read_state(home: Path | None = None) -> dict[str, Any] | None:
    """The recorded terminal sandbox, or ``None`` when there is none."""
    path = (home or _home()) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"services": {}, "environment": {}, "broken": True}


def _alive(state: dict[str, Any]) -> dict[str, bool]:
    return {name: pid_alive(svc.get("pid"), MARKERS.get(name)) for name, svc in state.get("services", {}).items()}


def start(only: list[str] | None = None, home: Path | None = None) -> dict[str, Any]:
    """Start the stand-ins in the background and record them (a no-op when they already run).

    Raises:
        SandboxError: a stand-in is not installed or did not start (nothing is left running).
    """
    from .session import SERVICES, Sandbox

    home = home or _home()
    state = read_state(home)
    if state is not None and all(_alive(state).values()) and state.get("services"):
        return state
    if state is not None:  # a stale record (a stand-in died): clean it up first
        stop(home)
    private_dir(home)
    workdir = home / "sandbox"
    sandbox = Sandbox(services=tuple(only or SERVICES), environ=dict(os.environ), workdir=workdir, exit_with_parent=False)
    sandbox.start()
    import atexit

    atexit.unregister(sandbox.stop)  # the stand-ins outlive this command; `weave sandbox stop` ends them
    state = {
        "services": {s.name: {"url": s.url, "pid": s.pid, "log": s.log} for s in sandbox.running.values()},
        "environment": sandbox.environment(),
        "workdir": str(workdir),
    }
    write_private(home / STATE_FILE, json.dumps(state, indent=2).encode())
    return state


def stop(home: Path | None = None) -> list[str]:
    """Stop the recorded stand-ins by pid, forget their sandbox deployments, remove the record.

    Returns:
        The names of the stand-ins that were stopped.
    """
    from .session import Sandbox, _descendants

    home = home or _home()
    state = read_state(home)
    if state is None:
        return []
    stopped = []
    for name, svc in state.get("services", {}).items():
        pid = svc.get("pid")
        if pid_alive(pid, MARKERS.get(name)):
            spawned = _descendants(pid)  # the functions the Cloud Functions fake serves
            stop_process(pid, MARKERS.get(name), grace=5.0, group=True)
            for child in spawned:
                stop_process(child, grace=2.0, group=True)
            stopped.append(name)
    Sandbox(environ={"WEAVE_HOME": str(home)})._forget_records(list(state.get("services", {})))
    (home / STATE_FILE).unlink(missing_ok=True)
    if state.get("workdir"):
        shutil.rmtree(state["workdir"], ignore_errors=True)
    return stopped


def render_status(state: dict[str, Any] | None) -> str:
    """``weave sandbox status``: what runs, where, under which pid."""
    from .session import BANNER

    if not state or not state.get("services"):
        return "sandbox: off (start it with `weave sandbox start`)"
    alive = _alive(state)
    lines = [BANNER]
    for name, svc in state["services"].items():
        lines.append(f"  {name:<4} {svc['url']}  pid {svc['pid']}  {'running' if alive[name] else 'EXITED'}  (log: {svc['log']})")
    return "\n".join(lines)


def env_lines(state: dict[str, Any]) -> str:
    """The shell lines that point weave-nb at the stand-ins (``export`` / ``unset``)."""
    lines = []
    for key, value in state.get("environment", {}).items():
        lines.append(f"unset {key}" if value is None else f"export {key}={shlex.quote(str(value))}")
    return "\n".join(lines)


def sandbox_command(action: str, only: list[str] | None, out: TextIO, err: TextIO) -> int:
    """Run ``weave sandbox ACTION``; returns the exit code."""
    if action == "start":
        state = start(only)
        out.write(render_status(state) + "\n")
        err.write('note: run  eval "$(weave sandbox env)"  to point this shell at it; `weave sandbox stop` ends it\n')
        return 0
    if action == "stop":
        stopped = stop()
        out.write(f"sandbox: stopped {', '.join(stopped)}\n" if stopped else "sandbox: was not running\n")
        return 0
    state = read_state()
    if action == "env":
        if not state or not state.get("services") or not all(_alive(state).values()):
            raise WeaveError("the sandbox is not running", "start it with `weave sandbox start`, then eval \"$(weave sandbox env)\"")
        out.write(env_lines(state) + "\n")
        return 0
    out.write(render_status(state) + "\n")
    return 0 if state and state.get("services") and all(_alive(state).values()) else 1
