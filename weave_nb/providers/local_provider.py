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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..artifact import SERVER_MODULE, SPEC_FILE, Artifact
from ..config import DeploymentConfig, DeploymentInfo, DeploymentStatus, Plan, PlannedStep, is_loopback
from ..errors import ConfigError, DeploymentFailed, NotFound
from ..private_files import open_private
from ..procutil import free_port, http_ok, pid_alive, pids_with, port_in_use, stop_process, wait_for
from .base import DeployContext, DeploymentProvider

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

    def validate_config(self, config: DeploymentConfig) -> None:
        if config.type not in (None, "process"):
            raise ConfigError(
                f"the local provider runs a process, not {config.type!r}", "leave --type unset or use --type process"
            )
        opts = self.options(config)
        if not Path(opts.python).exists() and shutil.which(opts.python) is None:
            raise ConfigError(f"interpreter {opts.python!r} not found", "set --option python=PATH or leave it unset")

    # -- helpers ------------------------------------------------------------
    @staticmethod
    def _folder(ctx: DeployContext, artifact: Artifact) -> Path:
        return ctx.inventory.home / "local" / ctx.name / artifact.content_hash[:16]

    @staticmethod
    def _alive(record: DeploymentInfo | None) -> bool:
        if record is None:
            return False
        return pid_alive(record.details.get("pid"), record.details.get("folder"))

    # -- operations -----------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        rec = ctx.record
        alive = self._alive(rec)
        if config.port and port_in_use(config.port, config.host):
            if not (alive and rec is not None and rec.details.get("port") == config.port):
                raise ConfigError(
                    f"port {config.port} on {config.host} is already in use",
                    "choose another --port, or leave it unset to pick a free one",
                )
        same_code = bool(rec and rec.content_hash == artifact.content_hash)
        same_settings = bool(rec and rec.settings_hash == ctx.settings_hash)
        healthy = alive and rec is not None and http_ok(f"{rec.endpoint}/health")
        folder = self._folder(ctx, artifact)
        steps = [
            PlannedStep(
                key="artifact",
                resource=f"artifact {artifact.content_hash[:12]} ({artifact.size} bytes)",
                action="no-change" if folder.joinpath(SPEC_FILE).exists() else "create",
            )
        ]
        if healthy and same_code and same_settings and rec and rec.status == DeploymentStatus.ACTIVE:
            steps.append(PlannedStep(key="process", resource=f"process pid {rec.details.get('pid')}", action="no-change"))
        else:
            action = "replace" if alive else "create"
            why = "code changed" if alive and not same_code else "settings changed" if alive else ""
            steps.append(PlannedStep(key="process", resource="server process on " + config.host, action=action, detail=why))
        steps.append(PlannedStep(key="health", resource="GET /health", action=steps[-1].action if steps[-1].action != "replace" else "update"))
        notes = [f"the server runs {self.options(config).python} and listens on {config.host}"]
        if not is_loopback(config.host):
            notes.append(f"{config.host} is not a loopback address: anyone who can reach this machine can call "
                         "the weave and spend its API keys")
            ctx.warn(notes[-1])
        return Plan(provider=self.name, name=config.name, steps=steps, notes=notes)

    def deploy(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext, plan: Plan) -> DeploymentInfo:
        opts = self.options(config)
        rec = ctx.record
        if not plan.has_changes and rec is not None:
            ctx.skip_all(plan, "no changes: the running process already serves this weave")
            return rec.model_copy(update={"message": "no changes"})
        folder = self._folder(ctx, artifact)
        with ctx.step("artifact", f"write artifact {artifact.content_hash[:12]}"):
            if not folder.joinpath(SPEC_FILE).exists():
                tmp = folder.with_name(folder.name + ".tmp")
                shutil.rmtree(tmp, ignore_errors=True)
                artifact.extract(tmp)
                artifact.write(tmp / "artifact.zip")
                if folder.exists():  # a half-written folder from an interrupted deploy
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            ctx.add_resource("folder", str(folder))
        port = config.port or (rec.details.get("port") if rec and rec.details.get("port") else None)
        with ctx.step("process", "start the server process"):
            if rec is not None and self._alive(rec):
                ctx.log(f"stopping previous process {rec.details['pid']}")
                stop_process(rec.details["pid"], rec.details.get("folder"))
                ctx.remove_resource("process", str(rec.details["pid"]))
            marker = str(ctx.inventory.home / "local" / ctx.name) + os.sep
            for stray in pids_with(marker, SERVER_MODULE):  # left by an interrupted deploy
                ctx.log(f"stopping unrecorded process {stray}")
                stop_process(stray, marker)
            for res in ctx.resources("process"):
                if not pid_alive(int(res.id), marker):
                    ctx.remove_resource("process", res.id)
            if not port or port_in_use(port, config.host):
                port = free_port(config.host)
            log_path = folder.parent / "server.log"
            proc = self._spawn(opts.python, folder, config, ctx, port, log_path)
            ctx.add_resource("process", str(proc.pid), port=port, log=str(log_path))
            endpoint = f"http://{config.host}:{port}"
            details = {"pid": proc.pid, "port": port, "log": str(log_path), "folder": str(folder)}
            ctx.save(endpoint=endpoint, details=details)
        with ctx.step("health", f"wait for {endpoint}/health"):
            ok = wait_for(lambda: proc.poll() is not None or http_ok(f"{endpoint}/health", 0.5), opts.startup_timeout, 0.01)
            if proc.poll() is not None or not ok:
                tail = _tail(log_path, 15)
                stop_process(proc.pid)
                ctx.remove_resource("process", str(proc.pid))
                raise DeploymentFailed(
                    f"the weave server did not become healthy at {endpoint}:\n{tail}",
                    f"see the log at {log_path}",
                )
        self._prune(folder)
        return DeploymentInfo(
            name=config.name,
            provider=self.name,
            status=DeploymentStatus.ACTIVE,
            endpoint=endpoint,
            region="localhost",
            health="healthy",
            details=details,
        )

    @staticmethod
    def _spawn(python: str, folder: Path, config: DeploymentConfig, ctx: DeployContext, port: int, log_path: Path) -> subprocess.Popen:
        env = {k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}
        env.update(ctx.env)
        env["WEAVE_SPEC_PATH"] = str(folder / SPEC_FILE)
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # -I (isolated) ignores PYTHONPATH and user site: only the artifact folder is added to sys.path
        cmd = [python, "-I", "-c", _BOOT, str(folder), "--host", config.host, "--port", str(port)]
        with open_private(log_path) as log:
            return subprocess.Popen(
                cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True, umask=0o077,  # what the server writes stays private
            )

    @staticmethod
    def _prune(keep: Path) -> None:
        for old in keep.parent.iterdir():
            if old.is_dir() and old != keep:
                shutil.rmtree(old, ignore_errors=True)

    def status(self, ctx: DeployContext) -> DeploymentInfo:
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no local deployment named {ctx.name!r}", "list them with `weave deployments`")
        if not self._alive(rec):
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "health": "not running", "drift": "missing"})
        healthy = http_ok(f"{rec.endpoint}/health")
        return rec.model_copy(update={"health": "healthy" if healthy else "unhealthy"})

    def destroy(self, ctx: DeployContext, **options: Any) -> None:
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no local deployment named {ctx.name!r}", "list them with `weave deployments`")
        marker = str(ctx.inventory.home / "local" / ctx.name) + os.sep
        for res in ctx.resources("process"):
            with ctx.step(f"process-{res.id}", f"stop process {res.id}"):
                stop_process(int(res.id), marker)
                ctx.remove_resource("process", res.id)
        # a deploy killed between starting the server and recording it leaves an unrecorded process
        for pid in pids_with(marker, SERVER_MODULE):
            with ctx.step(f"process-{pid}", f"stop unrecorded process {pid}"):
                stop_process(pid, marker)
        with ctx.step("files", "remove files"):
            shutil.rmtree(ctx.inventory.home / "local" / ctx.name, ignore_errors=True)
            for res in ctx.resources("folder"):
                ctx.remove_resource("folder", res.id)

    def list_deployments(self, records: list[DeploymentInfo]) -> list[DeploymentInfo]:
        return [r.model_copy(update={"health": "running"}) for r in records if self._alive(r)]

    def logs(self, ctx: DeployContext, tail: int = 100) -> str:
        rec = ctx.record
        path = Path(rec.details.get("log", "")) if rec else None
        if not path or not path.is_file():
            return ""
        return _tail(path, tail)


_BOOT = (
    "import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
    f"runpy.run_module('{SERVER_MODULE}', run_name='__main__', alter_sys=True)"
)


def _tail(path: Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
