"""The ``local`` provider: the weave's artifact served by a detached process on this machine.

It needs no cloud and no Docker, so quick starts and Binder demos work
anywhere. The process runs the same stdlib runtime as every other provider,
in its own session (it survives the deploying kernel), and is recorded with
its pid, port and log file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field

from ...core.artifact import SERVER_MODULE, SPEC_FILE, Artifact
from ...core.config import DeploymentConfig, DeploymentInfo, DeploymentStatus, is_loopback
from ...core.executor import Run
from ...core.plan import Plan, PlannedStep
from ...core.errors import ConfigError, DeploymentFailed, NotFound
from ...core.log_lines import LogEntry, select, split_stamp
from ...core.private_files import open_private
from ...core.procutil import bind_problem, free_port, http_ok, pid_alive, pids_with, port_in_use, stop_process, wait_for
from ..base import DeployContext, DeploymentProvider

PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "TMPDIR")


class LocalOptions(BaseModel):
    """Options of the local provider."""

    model_config = ConfigDict(extra="forbid")

    python: str = Field(default_factory=lambda: sys.executable, description="interpreter that runs the weave")
    startup_timeout: float = Field(default=15.0, gt=0, le=300, description="seconds to wait for /health")


class LocalProvider(DeploymentProvider):
    """Serve the weave from a local process on 127.0.0.1."""

    name = "local"
    options_model = LocalOptions
    description = "a detached process on this machine (no cloud, no Docker)"
    region_default = "localhost"

    def validate_config(self, config: DeploymentConfig) -> None:
        if config.type not in (None, "process"):
            raise ConfigError(
                f"the local provider runs a process, not {config.type!r}", "leave --type unset or use --type process"
            )
        opts = self.options(config)
        if not Path(opts.python).exists() and shutil.which(opts.python) is None:
            raise ConfigError(f"interpreter {opts.python!r} not found", "set --option python=PATH or leave it unset")
        problem = bind_problem(config.host)
        if problem:
            raise ConfigError(f"--host: {problem}", "use 127.0.0.1 (the default), ::1, or an address of this machine")

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _folder(ctx: DeployContext, artifact: Artifact) -> Path:
        return ctx.inventory.home / "local" / ctx.name / artifact.content_hash[:16]

    @staticmethod
    def _alive(record: DeploymentInfo | None) -> bool:
        if record is None:
            return False
        return pid_alive(record.details.get("pid"), record.details.get("folder"))

    # -- plan ------------------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        """Observe the recorded process, its health and stray processes; list the steps that make it serve ``artifact``.

        A changed redeploy starts the new process beside the old one (both
        bound with SO_REUSEPORT), waits for the new one's health, and only
        then stops the old one: a new release that fails leaves the old one
        serving. An old process started without SO_REUSEPORT is stopped
        first instead, and restarted if the new one fails.
        """
        opts = self.options(config)
        rec = ctx.record
        alive = self._alive(rec)
        old_pid = rec.details.get("pid") if rec is not None and alive else None
        old_port = rec.details.get("port") if rec is not None else None
        if config.port and port_in_use(config.port, config.host) and not (old_pid and old_port == config.port):
            raise ConfigError(
                f"port {config.port} on {config.host} is already in use",
                "choose another --port, or leave it unset to pick a free one",
            )
        same_code = bool(rec and rec.content_hash == artifact.content_hash)
        same_settings = bool(rec and rec.settings_hash == ctx.settings_hash)
        healthy = bool(old_pid) and rec is not None and http_ok(f"{rec.endpoint}/health")
        folder = self._folder(ctx, artifact)
        marker = self._marker(ctx)
        # processes an interrupted deploy left: started (recorded or not) but never made the serving one
        recorded = [int(r.id) for r in ctx.resources("process") if r.id.isdigit() and pid_alive(int(r.id), marker)]
        strays = sorted({*recorded, *pids_with(marker, SERVER_MODULE)} - {old_pid})
        observed = {"pid": old_pid, "port": old_port, "healthy": healthy, "strays": strays,
                    "artifact_written": folder.joinpath(SPEC_FILE).exists()}
        steps: list[PlannedStep] = []
        for pid in strays:  # left by an interrupted deploy, never recorded
            steps.append(PlannedStep(key=f"stray-{pid}", resource=f"stray server process {pid}", action="delete",
                                     detail="left by an interrupted deploy", call="stop_process", params={"pid": pid}))
        steps.append(PlannedStep(
            key="artifact", resource=f"artifact {artifact.content_hash[:12]} ({artifact.size} bytes)",
            action="no-change" if observed["artifact_written"] else "create",
            call="write_artifact", params={"folder": str(folder)},
        ))
        if healthy and same_code and same_settings and rec is not None and rec.status == DeploymentStatus.ACTIVE:
            steps.append(PlannedStep(key="process", resource=f"server process {old_pid} on {rec.endpoint}", action="no-change"))
            return Plan(provider=self.name, name=config.name, steps=steps, observed=observed,
                        notes=self._notes(config, opts, ctx))
        port = config.port or old_port or None
        shares = bool(old_pid) and bool(rec is not None and rec.details.get("reuse_port")) and port == old_port
        why = "code changed" if old_pid and not same_code else "settings changed" if old_pid and not same_settings else (
            "not healthy" if old_pid else "")
        start = {"python": opts.python, "folder": str(folder), "host": config.host, "port": port,
                 "reuse_port": True, "log": str(folder.parent / "server.log")}
        if old_pid and not shares:
            # the old process holds the port alone: stop it first, and start it again should the new one fail
            steps.append(PlannedStep(
                key="retire", resource=f"old server process {old_pid}", action="delete", detail="stopped first: it holds the port",
                call="stop_process", params={"pid": old_pid}, undo="restart_previous",
            ))
        steps.append(PlannedStep(
            key="process", resource=f"server process on {config.host}:{port or 'a free port'}",
            action="replace" if old_pid else "create", detail=why, call="start_process", params=start, undo="stop_started",
        ))
        steps.append(PlannedStep(
            key="health", resource="GET /health of the new process", action="create", call="wait_healthy",
            params={"timeout": opts.startup_timeout},
        ))
        if old_pid and shares:
            steps.append(PlannedStep(key="retire", resource=f"old server process {old_pid}", action="delete",
                                     detail="once the new one is healthy", call="stop_process", params={"pid": old_pid}))
        older = sorted(str(p) for p in folder.parent.iterdir() if p.is_dir() and p != folder) if folder.parent.is_dir() else []
        if older:
            steps.append(PlannedStep(key="prune", resource=f"{len(older)} earlier artifact folder(s)", action="delete",
                                     call="remove_folders", params={"folders": older}))
        return Plan(provider=self.name, name=config.name, steps=steps, observed=observed, notes=self._notes(config, opts, ctx))

    @staticmethod
    def _notes(config: DeploymentConfig, opts: LocalOptions, ctx: DeployContext) -> list[str]:
        notes = [f"the server runs {opts.python} and listens on {config.host}"]
        if not is_loopback(config.host):
            notes.append(f"{config.host} is not a loopback address: anyone who can reach this machine can call "
                         "the weave and spend its API keys")
            ctx.warn(notes[-1])
        return notes

    # -- apply and undo (one function per step call) ------------------------------
    def apply_write_artifact(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        folder = Path(step.params["folder"])
        if not folder.joinpath(SPEC_FILE).exists():
            tmp = folder.with_name(folder.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            assert run.artifact is not None
            run.artifact.extract(tmp)
            run.artifact.write(tmp / "artifact.zip")
            if folder.exists():  # a half-written folder from an interrupted deploy
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        run.ctx.add_resource("folder", str(folder))
        return {"folder": str(folder)}

    def apply_stop_process(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        pid = int(step.params["pid"])
        stop_process(pid, self._marker(run.ctx))
        run.ctx.remove_resource("process", str(pid))
        return {"stopped": pid}

    def undo_restart_previous(self, run: Run, step: PlannedStep, result: Any) -> None:
        """Start the previous release again from its kept artifact folder, on its port."""
        rec = run.ctx.record
        assert rec is not None and run.config is not None
        folder = Path(rec.details["folder"])
        log_path = Path(rec.details.get("log") or folder.parent / "server.log")
        proc = self._spawn(self.options(run.config).python, folder, rec.details.get("host") or run.config.host,
                           run.ctx, int(rec.details["port"]), log_path, reuse_port=True)
        if not self._wait_own_health(proc, rec.endpoint or "", self.options(run.config).startup_timeout):
            raise DeploymentFailed(f"the previous release did not start again at {rec.endpoint}", f"see the log at {log_path}")
        run.ctx.add_resource("process", str(proc.pid), port=rec.details["port"], log=str(log_path))
        run.ctx.save(details={**rec.details, "pid": proc.pid, "reuse_port": True})
        run.ctx.log(f"the previous release serves again at {rec.endpoint} (process {proc.pid})")

    def apply_start_process(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        p = step.params
        port = p["port"]
        if not port or (port_in_use(port, p["host"]) and not step.action == "replace"):
            port = free_port(p["host"])
        log_path = Path(p["log"])
        proc = self._spawn(p["python"], Path(p["folder"]), p["host"], run.ctx, port, log_path, reuse_port=p["reuse_port"])
        run.ctx.add_resource("process", str(proc.pid), port=port, log=str(log_path))
        run.scratch["proc"] = proc
        host = f"[{p['host']}]" if ":" in p["host"] else p["host"]
        out = {"pid": proc.pid, "port": port, "endpoint": f"http://{host}:{port}", "log": str(log_path),
               "folder": p["folder"], "host": p["host"], "reuse_port": p["reuse_port"]}
        if not run.plan.observed.get("pid") or "retire" in run.results:
            # nothing else serves: the row points at the new process at once, so listings see it even if
            # this run is killed before it ends (while an old release serves, the row keeps it until the switch)
            run.ctx.save(endpoint=out["endpoint"], details=self._details(out))
        return out

    def undo_stop_started(self, run: Run, step: PlannedStep, result: Any) -> None:
        stop_process(int(result["pid"]), self._marker(run.ctx))
        run.ctx.remove_resource("process", str(result["pid"]))

    def apply_wait_healthy(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        proc, endpoint = run.scratch["proc"], run.outputs["endpoint"]
        if not self._wait_own_health(proc, endpoint, float(step.params["timeout"])):
            tail = _tail(Path(run.outputs["log"]), 15)
            raise DeploymentFailed(
                f"the weave server did not become healthy at {endpoint}:\n{tail}", f"see the log at {run.outputs['log']}"
            )
        return {"healthy": True}

    def apply_remove_folders(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        for folder in step.params["folders"]:
            shutil.rmtree(folder, ignore_errors=True)
            run.ctx.remove_resource("folder", folder)
        return {"removed": len(step.params["folders"])}

    @staticmethod
    def _wait_own_health(proc: subprocess.Popen, endpoint: str, timeout: float) -> bool:
        """Wait until ``proc`` itself answers ``/health`` (another process may share the port)."""
        return wait_for(lambda: proc.poll() is not None or _health_pid(endpoint) == proc.pid, timeout, 0.01) and proc.poll() is None

    def finish(self, run: Run) -> DeploymentInfo:
        rec = run.ctx.record
        if "pid" not in run.outputs:
            assert rec is not None
            return rec.model_copy(update={"status": DeploymentStatus.ACTIVE, "health": "healthy"})
        out = run.outputs
        return DeploymentInfo(name=run.ctx.name, provider=self.name, status=DeploymentStatus.ACTIVE,
                              endpoint=out["endpoint"], region="localhost", health="healthy", details=self._details(out))

    @staticmethod
    def _details(out: dict[str, Any]) -> dict[str, Any]:
        return {k: out[k] for k in ("pid", "port", "log", "folder", "host", "reuse_port")}

    @staticmethod
    def _marker(ctx: DeployContext) -> str:
        return str(ctx.inventory.home / "local" / ctx.name) + os.sep

    @staticmethod
    def _spawn(python: str, folder: Path, host: str, ctx: DeployContext, port: int, log_path: Path,
               reuse_port: bool = False) -> subprocess.Popen:
        env = {k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}
        env.update(ctx.env)
        env["WEAVE_SPEC_PATH"] = str(folder / SPEC_FILE)
        env["WEAVE_DEPLOYMENT"] = ctx.name  # named in every request record
        env["WEAVE_LOG_TIMESTAMPS"] = "1"  # every log line starts with its time: `weave logs --since` reads it
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # -I (isolated) ignores PYTHONPATH and user site: only the artifact folder is added to sys.path
        # -B: no __pycache__ in the artifact folder (-I ignores PYTHONDONTWRITEBYTECODE)
        cmd = [python, "-I", "-B", "-c", _BOOT, str(folder), "--host", host, "--port", str(port)]
        if reuse_port:
            cmd.append("--reuse-port")
        with open_private(log_path) as log:
            return subprocess.Popen(
                cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, umask=0o077,  # what the server writes stays private
            )

    def status(self, ctx: DeployContext) -> DeploymentInfo:
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no local deployment named {ctx.name!r}", "list them with `weave deployments`")
        if not self._alive(rec):
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "health": "not running", "drift": "missing"})
        healthy = http_ok(f"{rec.endpoint}/health")
        return rec.model_copy(update={"health": "healthy" if healthy else "unhealthy"})

    def plan_destroy(self, ctx: DeployContext, **options: Any) -> Plan:
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no local deployment named {ctx.name!r}", "list them with `weave deployments`")
        marker = self._marker(ctx)
        steps = []
        recorded = []
        for res in ctx.resources("process"):
            recorded.append(int(res.id))
            steps.append(PlannedStep(key=f"process-{res.id}", resource=f"server process {res.id}", action="delete",
                                     call="stop_process", params={"pid": int(res.id)}))
        # a deploy killed between starting the server and recording it leaves an unrecorded process
        for pid in pids_with(marker, SERVER_MODULE):
            if pid not in recorded:
                steps.append(PlannedStep(key=f"process-{pid}", resource=f"unrecorded server process {pid}", action="delete",
                                         call="stop_process", params={"pid": pid}))
        folders = [str(ctx.inventory.home / "local" / ctx.name)]
        steps.append(PlannedStep(key="files", resource=f"files under {folders[0]}", action="delete",
                                 call="remove_folders", params={"folders": folders}))
        return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=steps)

    def list_deployments(self, records: list[DeploymentInfo]) -> list[DeploymentInfo]:
        return [r.model_copy(update={"health": "running"}) for r in records if self._alive(r)]

    @staticmethod
    def _log_path(ctx: DeployContext) -> Path | None:
        rec = ctx.record
        return Path(rec.details["log"]) if rec and rec.details.get("log") else None

    def read_logs(self, ctx: DeployContext, since: Any = None, filter: str | None = None,
                  tail: int | None = None) -> list[LogEntry]:
        """The server's log file, every line with its time (the runtime writes each line after its UTC time)."""
        path = self._log_path(ctx)
        if path is None or not path.is_file():
            return []
        with open(path, "rb") as fh:
            data = fh.read()
        return select(_stamped_lines(data[: data.rfind(b"\n") + 1]), since, filter, tail)

    def follow_logs(self, ctx: DeployContext, since: Any = None, filter: str | None = None,
                    tail: int | None = None, interval: float = 0.2) -> Iterator[LogEntry]:
        """The lines :meth:`read_logs` answers, then each line the server appends, read every ``interval`` seconds."""
        import time

        path = self._log_path(ctx)
        offset, last = 0, None
        if path is not None and path.is_file():
            with open(path, "rb") as fh:
                data = fh.read()
            offset = data.rfind(b"\n") + 1
            entries = list(_stamped_lines(data[:offset]))
            last = next((e.time for e in reversed(entries) if e.time), None)
            yield from select(entries, since, filter, tail)
        while True:
            if path is not None and path.is_file():
                if path.stat().st_size < offset:  # the file was replaced: read it from its start
                    offset = 0
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    data = fh.read()
                end = data.rfind(b"\n") + 1
                if end:
                    offset += end
                    fresh = list(_stamped_lines(data[:end], last))
                    last = next((e.time for e in reversed(fresh) if e.time), last)
                    yield from select(fresh, since, filter)
            time.sleep(interval)


def _stamped_lines(data: bytes, last: Any = None) -> Iterator[LogEntry]:
    """Log entries of the runtime's output; a line without a time (a traceback) takes the one before it."""
    for line in data.decode("utf-8", errors="replace").splitlines():
        when, text = split_stamp(line)
        last = when or last
        yield LogEntry(when or last, text, "log")


def _health_pid(endpoint: str) -> int | None:
    """The pid of the server process that answered ``GET endpoint/health`` with 2xx, or ``None``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=0.5) as resp:
            pid = resp.headers.get("X-Weave-Pid")
            return int(pid) if 200 <= resp.status < 300 and pid and pid.isdigit() else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


_BOOT = (
    "import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
    f"runpy.run_module('{SERVER_MODULE}', run_name='__main__', alter_sys=True)"
)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
