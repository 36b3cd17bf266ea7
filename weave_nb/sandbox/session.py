"""The sandbox: local stand-ins for AWS and Cloud Functions, for demos with no cloud account.

:class:`Sandbox` starts two servers on 127.0.0.1 as child processes:

* the AWS emulator (``moto_server``), which speaks the AWS APIs over HTTP, and
* the Cloud Functions test fake (``python -m weave_nb.sandbox.emulators.gcf_fake``),

then points this process's environment at them (``AWS_ENDPOINT_URL``, fake
AWS keys, ``WEAVE_GCP_API_ENDPOINT``, a fake OAuth token, a sandbox project)
and sets ``WEAVE_SANDBOX=1`` so every deployment made meanwhile is marked as
a sandbox deployment. :meth:`Sandbox.stop` ends the processes it started (by
pid) and puts every environment variable back as it was. Processes are also
stopped when the interpreter exits (``atexit``) and, on Linux, when the
process that started them dies, so a kernel shutdown leaves none behind.

Nothing here is the real cloud: endpoints it gives out work only on this
machine, for as long as the sandbox runs.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, MutableMapping

from ..core.errors import WeaveError
from ..core.private_files import open_private
from ..core.procutil import free_port, port_in_use, stop_process, wait_for

SANDBOX_ENV = "WEAVE_SANDBOX"
SANDBOX_PROJECT = "weave-sandbox"
SANDBOX_REGION_AWS = "us-east-1"
SANDBOX_REGION_GCP = "us-central1"
SERVICES = ("aws", "gcp")
BANNER = "SANDBOX: local stand-ins on 127.0.0.1, not the real cloud; nothing here reaches AWS or Google Cloud."

# variables the sandbox sets (or removes, when the value is None), per service
_AWS_ENV: dict[str, str | None] = {
    "AWS_ACCESS_KEY_ID": "sandbox",
    "AWS_SECRET_ACCESS_KEY": "sandbox",
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_DEFAULT_REGION": SANDBOX_REGION_AWS,
    "AWS_REGION": SANDBOX_REGION_AWS,
}
_GCP_ENV: dict[str, str | None] = {
    "GOOGLE_OAUTH_ACCESS_TOKEN": "sandbox-token",
    "GOOGLE_APPLICATION_CREDENTIALS": None,
    "GCP_PROJECT_ID": SANDBOX_PROJECT,
    "GOOGLE_CLOUD_PROJECT": SANDBOX_PROJECT,
    "GCP_REGION": SANDBOX_REGION_GCP,
}


class SandboxError(WeaveError):
    """A sandbox server could not be started."""


@dataclass
class Service:
    """One running stand-in server.

    Attributes:
        name: ``aws`` or ``gcp``.
        url: where it listens, e.g. ``http://127.0.0.1:5123``.
        pid: the process id.
        log: the file its output goes to.
    """

    name: str
    url: str
    pid: int
    log: str
    process: Any = field(default=None, repr=False, compare=False)

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.process is not None and self.process.poll() is None


@dataclass(frozen=True)
class SandboxStatus:
    """What :meth:`Sandbox.status` reports."""

    running: bool
    services: tuple[Service, ...] = ()

    def render(self) -> str:
        """Text form, as ``%weave_sandbox status`` prints it."""
        if not self.running:
            return "sandbox: off (providers use the real cloud and your own credentials)"
        lines = [BANNER]
        for svc in self.services:
            state = "running" if svc.running else "EXITED"
            lines.append(f"  {svc.name:<4} {svc.url}  pid {svc.pid}  {state}  (log: {svc.log})")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        from ..core.present import color

        text = html.escape(self.render())
        background = color("banner" if self.running else "banner-off")
        return (f"<pre style='background:{background};color:{color('plain')};padding:6px;"
                f"border-left:4px solid {color('banner-edge')}'>{text}</pre>")

    def __str__(self) -> str:
        return self.render()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Terminal IPython (and a notebook's text/plain form) shows the same lines as ``render()``."""
        printer.text(self.render())


class Sandbox:
    """Local stand-ins for the clouds, and the environment that points providers at them.

    Args:
        services: which stand-ins to start: any of ``"aws"``, ``"gcp"``.
        environ: the environment to change (default ``os.environ``).
        python: interpreter for the Cloud Functions fake (default: this one).
        moto_server: the ``moto_server`` command (default: next to ``python``, then on PATH).
        workdir: where logs go (default: a new temporary folder).
        startup_timeout: seconds to wait for each server to answer.
        exit_with_parent: on Linux, have the servers stopped by the kernel if this process dies.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        services: tuple[str, ...] | list[str] = SERVICES,
        environ: MutableMapping[str, str] | None = None,
        python: str | None = None,
        moto_server: str | None = None,
        workdir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        exit_with_parent: bool = True,
    ) -> None:
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise SandboxError(f"unknown sandbox service {unknown[0]!r}", f"choose from: {', '.join(SERVICES)}")
        self.services = tuple(services)
        self.environ = os.environ if environ is None else environ
        self.python = python or sys.executable
        self._moto = moto_server
        self._workdir_arg = workdir
        self.workdir: Path | None = None
        self.startup_timeout = startup_timeout
        self.exit_with_parent = exit_with_parent
        self.running: dict[str, Service] = {}
        self._saved: dict[str, str | None] = {}

    # -- life cycle ---------------------------------------------------------
    def start(self) -> SandboxStatus:
        """Start the servers and point the environment at them (a no-op when already running).

        Returns:
            The status, with each server's URL and pid.

        Raises:
            SandboxError: a server is not installed or did not answer in time
                (anything already started is stopped again).
        """
        if self.running:
            return self.status()
        self.workdir = Path(self._workdir_arg or tempfile.mkdtemp(prefix="weave-sandbox-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            for name in self.services:
                self.running[name] = self._start_aws() if name == "aws" else self._start_gcp()
        except BaseException:
            self._stop(keep_logs=True)
            raise
        self._point_environment()
        return self.status()

    def add(self, services: tuple[str, ...] | list[str]) -> SandboxStatus:
        """Start the stand-ins in ``services`` that are not running yet (all of them when the sandbox is off).

        A sandbox started for one cloud then asked for the other starts the
        missing server and points that provider at it too, so no deploy goes
        to the real cloud by surprise.

        Raises:
            SandboxError: an unknown service, or a server that did not start
                (the ones already running keep running).
        """
        unknown = [s for s in services if s not in SERVICES]
        if unknown:
            raise SandboxError(f"unknown sandbox service {unknown[0]!r}", f"choose from: {', '.join(SERVICES)}")
        if not self.running:
            self.services = tuple(dict.fromkeys(services))
            return self.start()
        missing = [s for s in services if s not in self.running]
        for name in missing:
            try:
                self.running[name] = self._start_aws() if name == "aws" else self._start_gcp()
            except BaseException:
                failed = self.running.pop(name, None)
                if failed is not None:
                    stop_process(failed.pid, group=True, grace=2.0)
                raise
        self.services = tuple(dict.fromkeys([*self.services, *missing]))
        self._point_environment()
        return self.status()

    def stop(self) -> SandboxStatus:
        """Stop every server this sandbox started and restore the environment.

        Safe to call twice, and called at interpreter exit.

        Returns:
            The (now off) status.
        """
        return self._stop(keep_logs=False)

    def _stop(self, keep_logs: bool) -> SandboxStatus:
        atexit.unregister(self.stop)
        covered = list(self.running)
        for svc in list(self.running.values()):
            spawned = _descendants(svc.pid)  # e.g. the functions the Cloud Functions fake serves
            stop_process(svc.pid, group=True, grace=5.0)
            if svc.process is not None:
                try:
                    svc.process.wait(timeout=5)
                except subprocess.TimeoutExpired:  # pragma: no cover - stop_process already sent SIGKILL
                    pass
            for pid in spawned:  # the server normally stops these itself; make sure
                stop_process(pid, group=True, grace=2.0)
        self.running.clear()
        self._restore_environment()
        self._forget_records(covered)
        if not keep_logs and self._workdir_arg is None and self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return self.status()

    def status(self) -> SandboxStatus:
        """Which servers run, where, and under which pid."""
        return SandboxStatus(running=bool(self.running), services=tuple(self.running.values()))

    @property
    def is_running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return bool(self.running)

    def pids(self) -> list[int]:
        """The process ids of the servers this sandbox started."""
        return [s.pid for s in self.running.values()]

    def __enter__(self) -> "Sandbox":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- servers ------------------------------------------------------------
    def _moto_command(self) -> list[str]:
        if self._moto:
            if shutil.which(self._moto) is None:
                raise SandboxError(f"moto_server command {self._moto!r} not found", "pass an existing path, or leave it unset")
            return [self._moto]
        beside = Path(self.python).with_name("moto_server")
        if beside.exists():
            return [str(beside)]
        found = shutil.which("moto_server")
        if found:
            return [found]
        raise SandboxError(
            "the AWS stand-in needs moto_server, which is not installed",
            "pip install -e '.[sandbox]' from the checkout (it brings moto[server] and functions-framework), "
            "or start the sandbox with services=('gcp',)",
        )

    def _start_aws(self) -> Service:
        port = free_port()
        cmd = self._moto_command() + ["-H", "127.0.0.1", "-p", str(port)]
        env = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        url = f"http://127.0.0.1:{port}"
        return self._spawn("aws", cmd, url, env, ready=lambda: port_in_use(port))

    def _start_gcp(self) -> Service:
        port = free_port()
        cmd = [self.python, "-m", "weave_nb.sandbox.emulators.gcf_fake", "--host", "127.0.0.1", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        path = os.pathsep.join(p for p in [_package_root(), os.environ.get("PYTHONPATH", "")] if p)
        return self._spawn("gcp", cmd, url, {"PYTHONPATH": path}, ready=lambda: port_in_use(port))

    def _spawn(self, name: str, cmd: list[str], url: str, extra_env: dict[str, str], ready: Callable[[], bool]) -> Service:
        assert self.workdir is not None
        log_path = self.workdir / f"{name}.log"
        env = {k: v for k, v in os.environ.items() if k != SANDBOX_ENV}
        env.update(extra_env)
        with open_private(log_path) as log:
            proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir,
                start_new_session=True, close_fds=True,
                preexec_fn=_die_with_parent if self.exit_with_parent and sys.platform.startswith("linux") else None,
            )
        svc = Service(name=name, url=url, pid=proc.pid, log=str(log_path), process=proc)
        self.running[name] = svc
        if not wait_for(lambda: proc.poll() is not None or ready(), self.startup_timeout, 0.05) or proc.poll() is not None:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-10:])
            raise SandboxError(f"the {name} stand-in did not start at {url}:\n{tail}", f"see its log at {log_path}")
        return svc

    def _forget_records(self, providers: list[str]) -> list[str]:
        """Drop inventory rows of sandbox deployments on ``providers``: they ended with the servers."""
        if not providers:
            return []
        from ..core.auth import weave_home
        from ..core.inventory import Inventory

        home = Path(self.environ.get("WEAVE_HOME") or weave_home())
        if not (home / "inventory.db").exists():
            return []
        inventory = Inventory(home)
        gone = []
        for provider in providers:
            for info in inventory.list(provider):
                if info.details.get("sandbox"):
                    inventory.delete(provider, info.name)
                    gone.append(f"{provider}/{info.name}")
        return gone

    # -- environment --------------------------------------------------------
    def environment(self) -> dict[str, str | None]:
        """The variables that point weave-nb at the running stand-ins (``None``: the variable is removed)."""
        return self._wanted_environment()

    def _wanted_environment(self) -> dict[str, str | None]:
        wanted: dict[str, str | None] = {SANDBOX_ENV: "1", SANDBOX_ENV + "_PROVIDERS": ",".join(self.running)}
        if "aws" in self.running:
            wanted.update(_AWS_ENV)
            wanted["AWS_ENDPOINT_URL"] = self.running["aws"].url
        if "gcp" in self.running:
            wanted.update(_GCP_ENV)
            wanted["WEAVE_GCP_API_ENDPOINT"] = self.running["gcp"].url
            wanted["WEAVE_GCP_RUN_ENDPOINT"] = self.running["gcp"].url
        return wanted

    def _point_environment(self) -> None:
        for key, value in self._wanted_environment().items():
            if key not in self._saved:
                self._saved[key] = self.environ.get(key)
            if value is None:
                self.environ.pop(key, None)
            else:
                self.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                self.environ.pop(key, None)
            else:
                self.environ[key] = value
        self._saved.clear()

    def __repr__(self) -> str:
        state = ", ".join(f"{s.name}={s.url}" for s in self.running.values()) or "off"
        return f"Sandbox({state})"


def sandbox_active(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when a sandbox has pointed this process at local stand-ins (``WEAVE_SANDBOX=1``)."""
    env = os.environ if environ is None else environ
    return env.get(SANDBOX_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def has_cloud_credentials(provider: str, environ: MutableMapping[str, str] | None = None, home: str | os.PathLike[str] | None = None) -> bool:
    """A quick, offline guess whether real credentials for ``provider`` are configured here.

    Looks only at environment variables and the usual credential files (no
    network call, so it is instant on Binder). A running sandbox does not count.

    Args:
        provider: ``aws`` or ``gcp``.
        environ: the environment to read (default ``os.environ``).
        home: the home folder holding ``.aws`` and ``.config/gcloud`` (default ``~``).

    Returns:
        True when credentials seem to be present.
    """
    env = os.environ if environ is None else environ
    if sandbox_active(env):
        return False
    base = Path(home) if home else Path.home()
    if provider == "aws":
        if env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE") or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
            return True
        if env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") or env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"):
            return True
        files = [env.get("AWS_SHARED_CREDENTIALS_FILE"), env.get("AWS_CONFIG_FILE"), base / ".aws" / "credentials", base / ".aws" / "config"]
        return any(f and Path(f).is_file() for f in files)
    if provider == "gcp":
        if env.get("GOOGLE_APPLICATION_CREDENTIALS") or env.get("GOOGLE_OAUTH_ACCESS_TOKEN"):
            return True
        return (base / ".config" / "gcloud" / "application_default_credentials.json").is_file()
    return False


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Linux ``/proc``; empty elsewhere)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
