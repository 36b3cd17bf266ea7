"""Small helpers for processes and ports, shared by the local provider, sandbox and tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable


def bind_problem(host: str) -> str | None:
    """Why a server could not listen on ``host`` here, or ``None`` when it can.

    ``host`` must be an IP address literal (or ``localhost``) of this machine;
    the check binds a throwaway socket to port 0 and closes it at once.
    """
    import ipaddress

    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return f"{host!r} is not an IP address"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
    except OSError as exc:
        return f"this machine cannot listen on {host} ({exc.strerror or exc})"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """True when process ``pid`` runs and is not a zombie.

    Args:
        pid: the process id.
        marker: a string its command line must contain (guards against pid reuse).
    """
    if not pid:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                return False
            if marker is not None:
                return marker in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            return True
        except (OSError, IndexError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_with(*markers: str) -> list[int]:
    """Pids of live processes whose command line contains every one of ``markers`` (Linux ``/proc``; elsewhere none).

    Args:
        markers: strings such as a deployment's folder path and the module it runs.
    """
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        if all(pid_alive(int(entry.name), m) for m in markers):
            found.append(int(entry.name))
    return sorted(found)


def reap(pid: int) -> None:
    """Collect ``pid``'s exit status if it is our child (avoids zombies)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_process(pid: int, marker: str | None = None, grace: float = 5.0, group: bool = True) -> bool:
    """Stop a process with SIGTERM, then SIGKILL after ``grace`` seconds.

    Args:
        pid: the process id.
        marker: see :func:`pid_alive`; a process without it is left alone.
        grace: seconds to wait for a clean exit.
        group: signal the whole process group the process leads.

    Returns:
        True when a process was stopped, False when none was running.
    """
    if not pid_alive(pid, marker):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                try:
                    os.killpg(pid, sig)
                except (ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            else:
                os.kill(pid, sig)
        if wait_for(lambda: (reap(pid), not pid_alive(pid))[1], timeout=wait):
            return True
    return not pid_alive(pid)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds pass; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """True when ``GET url`` answers 2xx."""
    import urllib.error  # imported here: listing deployments never needs it
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
