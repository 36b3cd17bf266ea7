"""The ``docker`` provider: the weave as a container image, run on a Docker engine or pushed to a registry.

The image holds the stdlib runtime and ``weave.json`` (see ``image``);
the build streams into the cell line by line; environment values are given
to the container at run time and never reach an image layer. ``plan``
(``planner``) observes the engine and decides every step; the executor
runs them through ``steps``; ``finish`` builds the result. A
redeploy with nothing changed touches nothing; a changed one proves the new
release healthy, then runs it next to the serving container behind the
deployment's port holder and stops the old one only once the new one answers
(``switch``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.artifact import Artifact
from ...core.config import DeploymentConfig, DeploymentInfo, DeploymentStatus
from ...core.executor import Run
from ...core.plan import Plan
from ...core.errors import ConfigError, NotFound, WeaveError
from ...core.log_lines import LogEntry, matches, select, split_stamp
from .secret_files import check_secret_user
from ..base import DeployContext, DeploymentProvider
from .engine import DockerEngine
from .image import (
    DEFAULT_USER,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_OWNER,
    ImageRecipe,
    check_docker_name,
    check_user,
    container_name,
    make_recipe,
    parse_volume,
)
from .planner import plan_deploy, plan_undeploy
from .switch import HOLDER_SUFFIX, PREVIOUS_SUFFIX, TRIAL_SUFFIX
from .state import describe, publish_host, reach, tag_of
from .releases import DockerReleases
from .steps import DockerSteps
_HEALTH_LINE = re.compile(r'^127\.0\.0\.1 "GET /health HTTP/1\.[01]" 200')  # the probe's own access lines


class DockerOptions(BaseModel):
    """Options of the docker provider (``--option KEY=VALUE`` or the weave file's ``deployment.options``)."""

    model_config = ConfigDict(extra="forbid")

    base_image: str | None = Field(default=None, description="FROM image (default python:<python_version>-slim)")
    python_version: str = Field(default="3.12", pattern=r"^3\.\d{1,2}$", description="picks the default base image")
    volumes: list[str] = Field(default_factory=list, description="HOST:CONTAINER[:ro], e.g. ./data:/app/data")
    push: bool = Field(default=False, description="push the image to the registry, then run it")
    push_only: bool = Field(default=False, description="build and push, run nothing")
    registry: str | None = Field(default=None, description="push target (default DOCKER_REGISTRY_URL)")
    keep_image: bool = Field(default=False, description="undeploy: keep the image")
    keep_on_failure: bool = Field(default=False, description="keep what a failed deploy made instead of rolling back")
    health_timeout: float = Field(default=30.0, gt=0, le=600, description="seconds to wait for a healthy container")
    health_interval: float = Field(default=1.0, ge=0.1, le=60, description="seconds between health probes")
    user: str = Field(default=DEFAULT_USER, description="non-root user the server runs as")

    @field_validator("volumes", mode="before")
    @classmethod
    def _volumes(cls, value: Any) -> Any:
        items = [value] if isinstance(value, str) else value
        for item in items or []:
            parse_volume(str(item))
        return items

    @field_validator("base_image")
    @classmethod
    def _base_image(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("must be an image reference such as python:3.12-slim")
        return value

    @property
    def image(self) -> str:
        """The base image to build FROM."""
        return self.base_image or f"python:{self.python_version}-slim"


class DockerProvider(DockerReleases, DockerSteps, DeploymentProvider):
    """Build the weave into an image and run it as a container on 127.0.0.1 (or push it)."""

    name = "docker"
    extra = "docker"
    options_model = DockerOptions
    description = "a container on a Docker engine (DOCKER_HOST), optionally pushed to a registry"
    region_default = "docker"

    def __init__(self, auth: Any) -> None:
        super().__init__(auth)
        self._engines: dict[Any, DockerEngine] = {}

    def engine(self, config: DeploymentConfig | None = None) -> DockerEngine:
        """The connected engine (DOCKER_HOST and TLS settings from the auth chain).

        Raises:
            EngineUnavailable: the engine does not answer.
        """
        config_auth = config.auth if config else None
        key = repr(config_auth)
        if key not in self._engines:
            self._engines[key] = DockerEngine.connect(self.auth, config_auth)
        return self._engines[key]

    # validation, no remote calls ------------------------------------------------
    def validate_config(self, config: DeploymentConfig) -> None:
        opts = self.options(config)
        check_docker_name(config.name)
        check_user(opts.user)
        check_secret_user(opts.user, config.secrets)
        if config.type not in (None, "container"):
            raise ConfigError(f"the docker provider deploys containers, not {config.type!r}", "leave --type unset or use --type container")
        if config.memory_mb is not None and config.memory_mb < 6:
            raise ConfigError(f"memory {config.memory_mb} MB is below Docker's minimum of 6 MB", "use --memory 64 or more, or leave it unset")
        try:
            ipaddress.ip_address(publish_host(config))
        except ValueError:
            raise ConfigError(f"--host {config.host!r} is not an IP address", "use 127.0.0.1 (default) or 0.0.0.0") from None
        if opts.push or opts.push_only:
            DockerEngine.registry_login(self.auth, opts.registry, config.auth)

    # helpers ----------------------------------------------------------------------
    def recipe(self, config: DeploymentConfig, artifact: Artifact, opts: DockerOptions, owner: str | None) -> ImageRecipe:
        """The image recipe of this deployment (the owner id is one of its labels)."""
        return make_recipe(config.name, artifact.files, artifact.content_hash, opts.image, opts.user, opts.health_interval, owner)

    # operations ---------------------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        """Observe the engine and list every step of the deploy (see ``planner``); changes nothing.

        Raises:
            ConfigError: a port in use, a base image that cannot be pulled.
            ForeignResource: a container of the deployment's name is not this inventory's (without ``--adopt``).
            CredentialsError: the registry refused the login (with push).
        """
        return plan_deploy(self, config, artifact, ctx)

    def plan_destroy(self, ctx: DeployContext, keep_image: bool = False, adopt: bool = False, **options: Any) -> Plan:
        """The undeploy plan: every container of the deployment, then its images unless ``keep_image``."""
        return plan_undeploy(self, ctx, keep_image=keep_image, adopt=adopt)

    def finish(self, run: Run) -> DeploymentInfo:
        """The deployment after ``run``: from the steps' outputs, or the observed container when nothing changed."""
        out, seen = run.outputs, run.plan.observed
        details: dict[str, Any] = {"image": seen["image"], "image_id": out.get("image_id") or seen.get("image_id"),
                                   "base_image": seen["base_image"], "owner": run.ctx.owner}
        pushed = out.get("pushed") or seen.get("pushed")
        if pushed:
            details.update(pushed=pushed, digest=pushed.rsplit("@", 1)[1])
        version = seen["image"].rsplit(":", 1)[-1]
        run.outputs.setdefault("release_version", seen["image"])  # the release's version id: its image reference
        if seen.get("push_only"):
            return DeploymentInfo(name=run.ctx.name, provider=self.name, status=DeploymentStatus.ACTIVE, region="docker",
                                  version=version, health="pushed", message=f"pushed {pushed}", details={**details, "push_only": True})
        serving = {**(seen.get("serving") or {}), **{k: out[k] for k in ("container", "container_id", "port", "host") if k in out}}
        details.update(serving)
        details.pop("health", None)
        endpoint = out.get("endpoint") or f"http://{reach(serving.get('host', ''))}:{serving['port']}"
        return DeploymentInfo(name=run.ctx.name, provider=self.name, status=DeploymentStatus.ACTIVE, endpoint=endpoint,
                              region="docker", version=version, health="healthy", details=details)

    def status(self, ctx: DeployContext) -> DeploymentInfo:
        eng = self.engine()
        rec = ctx.record
        current = eng.get_container(container_name(ctx.name))
        if current is None or current.labels.get(LABEL_NAME) != ctx.name:
            if rec is None:
                raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
            if rec.details.get("push_only"):
                here = eng.get_image(rec.details.get("image", "")) is not None
                return rec.model_copy(update={"health": "pushed" if here else "image removed"})
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "health": "no container", "drift": "missing"})
        live = describe(current, ctx.name, eng.get_container(container_name(ctx.name) + HOLDER_SUFFIX))
        if rec is None:
            return live.model_copy(update={"drift": "unrecorded"})
        return rec.model_copy(update={"status": live.status, "health": live.health, "endpoint": live.endpoint or rec.endpoint})

    def list_deployments(self, records: Any = None) -> list[DeploymentInfo]:
        """Every container labelled ``weave-nb.managed=true`` (its owner mark in ``details["owner"]``), plus pushed-only images."""
        eng = self.engine()
        out: dict[str, DeploymentInfo] = {}
        managed = eng.list_containers({LABEL_MANAGED: "true"})
        holders = {c.name: c for c in managed if c.name.endswith(HOLDER_SUFFIX)}
        for c in managed:
            if c.name.endswith((PREVIOUS_SUFFIX, TRIAL_SUFFIX)) or c.name in holders:
                continue
            info = describe(c, c.labels.get(LABEL_NAME) or c.name, holders.get(c.name + HOLDER_SUFFIX))
            out[info.name] = info
        for img in eng.list_images({LABEL_MANAGED: "true"}):
            name = img.labels.get(LABEL_NAME)
            digests = img.attrs.get("RepoDigests") or []
            if name and name not in out and digests:
                out[name] = DeploymentInfo(name=name, provider=self.name, status=DeploymentStatus.ACTIVE, region="docker",
                                           health="pushed", version=tag_of(img),
                                           details={"digests": digests, "owner": img.labels.get(LABEL_OWNER)})
        return list(out.values())

    def _log_source(self, ctx: DeployContext) -> tuple[Any, str]:
        eng = self.engine()
        cname = container_name(ctx.name)
        if eng.get_container(cname) is None:
            raise WeaveError(f"{ctx.name!r} has no container on the Docker engine", "deploy it (push-only deployments have no logs)")
        return eng, cname

    def read_logs(self, ctx: DeployContext, since: Any = None, filter: str | None = None,
                  tail: int | None = None) -> list[LogEntry]:
        """The container's output, each line with the engine's timestamp (the health probe's own lines left out)."""
        eng, cname = self._log_source(ctx)
        stream = eng.log_stream(cname, since.timestamp() if since is not None else None)
        return select(_container_lines(stream), since, filter, tail)

    def follow_logs(self, ctx: DeployContext, since: Any = None, filter: str | None = None,
                    tail: int | None = None, interval: float = 1.0) -> Iterator[LogEntry]:
        """The lines :meth:`read_logs` answers, then the engine's stream of new output (``docker logs --follow``)."""
        import time

        eng, cname = self._log_source(ctx)
        first = self.read_logs(ctx, since, filter, tail)
        yield from first
        start = max((e.time.timestamp() for e in first if e.time), default=since.timestamp() if since else time.time())
        seen = {(e.time, e.text) for e in first}
        stream = eng.log_stream(cname, start, follow=True)
        try:
            for entry in _container_lines(stream):
                if (entry.time, entry.text) in seen or not matches(entry, since, filter):
                    continue
                yield entry
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()


def _container_lines(stream: Any) -> Iterator[LogEntry]:
    """Log entries from the engine's ``TIME text`` byte lines (a chunk may hold several lines or part of one)."""
    pending = b""
    for chunk in stream:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            when, text = split_stamp(raw.decode("utf-8", errors="replace").rstrip("\r"))
            if not _HEALTH_LINE.search(text):
                yield LogEntry(when, text, "output")
    if pending.strip():
        when, text = split_stamp(pending.decode("utf-8", errors="replace"))
        if not _HEALTH_LINE.search(text):
            yield LogEntry(when, text, "output")
