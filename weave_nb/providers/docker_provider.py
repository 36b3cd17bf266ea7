"""The ``docker`` provider: the weave as a container image, run on a Docker engine or pushed to a registry.

The image holds the stdlib runtime and ``weave.json`` (see ``docker_image``);
the build streams into the cell line by line; environment values are given
to the container at run time and never reach an image layer. A redeploy
with nothing changed touches nothing; a changed one replaces the container
and puts the previous one back if the new one never becomes healthy.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..artifact import Artifact
from ..config import (
    DeploymentConfig,
    DeploymentInfo,
    DeploymentStatus,
    Plan,
    PlannedStep,
)
from ..errors import ConfigError, DeploymentFailed, NotFound, WeaveError
from ..procutil import free_port, port_in_use
from .base import DeployContext, DeploymentProvider
from .docker_engine import BASE_IMAGE_HINT, DockerEngine
from .docker_image import (
    CONTAINER_PORT,
    DEFAULT_USER,
    LABEL_HASH,
    LABEL_MANAGED,
    LABEL_NAME,
    LABEL_SETTINGS,
    ImageRecipe,
    check_docker_name,
    check_user,
    container_name,
    make_recipe,
    parse_volume,
    repository_for,
)
from .docker_state import (
    binds_for,
    bound_port,
    describe,
    probe_host,
    publish_host,
    server_env,
    tag_of,
)

PREVIOUS_SUFFIX = "-previous"
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
    keep_on_failure: bool = Field(default=False, description="keep a first container that never became healthy")
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


class DockerProvider(DeploymentProvider):
    """Build the weave into an image and run it as a container on 127.0.0.1 (or push it)."""

    name = "docker"
    extra = "docker"
    options_model = DockerOptions
    description = "a container on a Docker engine (DOCKER_HOST), optionally pushed to a registry"

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
    def _recipe(self, config: DeploymentConfig, artifact: Artifact, opts: DockerOptions) -> ImageRecipe:
        return make_recipe(config.name, artifact.files, artifact.content_hash, opts.image, opts.user, opts.health_interval)

    @staticmethod
    def _pushed(image: dict | None, repository: str) -> str | None:
        for digest in (image or {}).get("RepoDigests") or []:
            if digest.startswith(repository + "@"):
                return digest
        return None

    # operations ---------------------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext) -> Plan:
        opts = self.options(config)
        eng = self.engine(config)
        recipe = self._recipe(config, artifact, opts)
        image = eng.image(recipe.ref)
        steps: list[PlannedStep] = []
        if image is None and eng.image(opts.image) is None:
            reason = eng.can_pull(opts.image)
            if reason:
                raise ConfigError(f"base image {opts.image} is not here and cannot be pulled: {reason}", BASE_IMAGE_HINT)
            steps.append(PlannedStep(key="base", resource=f"base image {opts.image}", action="create", detail="pull"))
        steps.append(PlannedStep(key="image", resource=f"image {recipe.ref}", action="no-change" if image else "create",
                                 detail="" if image else "build"))
        if opts.push or opts.push_only:
            login = DockerEngine.registry_login(self.auth, opts.registry, config.auth)
            target = repository_for(config.name, login.url)
            done = self._pushed(image, target)
            if not done:
                eng.login(login)  # a refused login stops here, before anything is built
            steps.append(PlannedStep(key="push", resource=f"push {target}:{recipe.tag}", action="no-change" if done else "create"))
        if opts.push_only:
            return Plan(provider=self.name, name=config.name, steps=steps)
        cname = container_name(config.name)
        current = eng.container(cname)
        current_port = bound_port(current)
        if config.port and config.port != current_port and port_in_use(config.port, probe_host(config)):
            raise ConfigError(
                f"port {config.port} on {publish_host(config)} is already in use",
                "choose another --port, or leave it unset to pick a free one",
            )
        labels = (current or {}).get("Config", {}).get("Labels") or {}
        state = (current or {}).get("State") or {}
        same = (
            current is not None
            and labels.get(LABEL_HASH) == artifact.content_hash
            and labels.get(LABEL_SETTINGS) == ctx.settings_hash
            and current.get("Config", {}).get("Image") == recipe.ref
            and state.get("Running")
            and (state.get("Health") or {}).get("Status") == "healthy"
        )
        if same:
            action, why = "no-change", ""
        elif current is not None:
            action = "replace"
            why = "weave changed" if labels.get(LABEL_HASH) != artifact.content_hash else (
                "settings changed" if labels.get(LABEL_SETTINGS) != ctx.settings_hash else
                "image changed" if current.get("Config", {}).get("Image") != recipe.ref else "not healthy")
        else:
            action, why = "create", ""
        steps.append(PlannedStep(key="container", resource=f"container {cname}", action=action, detail=why))
        steps.append(PlannedStep(key="health", resource="wait for a healthy container",
                                 action="no-change" if same else "update" if current else "create"))
        return Plan(provider=self.name, name=config.name, steps=steps)

    def deploy(self, config: DeploymentConfig, artifact: Artifact, ctx: DeployContext, plan: Plan) -> DeploymentInfo:
        opts = self.options(config)
        eng = self.engine(config)
        recipe = self._recipe(config, artifact, opts)
        cname = container_name(config.name)
        if not plan.has_changes:
            ctx.skip_all(plan, "no changes: the running container already serves this weave")
            current = eng.container(cname)
            info = describe(current, config.name) if current else (ctx.record or DeploymentInfo(name=config.name, provider=self.name))
            base = ctx.record or info
            return base.model_copy(update={"status": DeploymentStatus.ACTIVE, "message": "no changes", "health": info.health,
                                           "endpoint": info.endpoint or base.endpoint, "details": base.details or info.details})
        keys = {s.key for s in plan.steps}
        log = lambda step: (lambda line: ctx.log(line, step))
        if "base" in keys:
            with ctx.step("base", f"pull base image {opts.image}"):
                eng.pull(opts.image, log("base"))
        with ctx.step("image", f"build image {recipe.ref}"):
            found = eng.image(recipe.ref)
            image_id = found["Id"] if found else eng.build(recipe.context, recipe.ref, log("image"))
            ctx.add_resource("image", recipe.ref, image_id=image_id)
            built, base = eng.image(image_id), eng.image(opts.image)
            if built and base:
                ctx.log(f"image {recipe.ref}: {(built['Size'] - base['Size']) / 1024:.0f} KB over {opts.image}", "image")
        details: dict[str, Any] = {"image": recipe.ref, "image_id": image_id, "base_image": opts.image}
        if opts.push or opts.push_only:
            details.update(self._push(eng, config, opts, recipe, image_id, ctx))
        if opts.push_only:
            return DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE, region="docker",
                                  version=recipe.tag, health="pushed", message=f"pushed {details['pushed']}",
                                  details={**details, "push_only": True})
        return self._run(config, opts, ctx, eng, recipe, image_id, details)

    def _push(self, eng: DockerEngine, config: DeploymentConfig, opts: DockerOptions, recipe: ImageRecipe,
              image_id: str, ctx: DeployContext) -> dict[str, Any]:
        login = DockerEngine.registry_login(self.auth, opts.registry, config.auth)
        target = repository_for(config.name, login.url)
        with ctx.step("push", f"push {target}:{recipe.tag}"):
            done = self._pushed(eng.image(recipe.ref), target)
            if done:
                ctx.log(f"already pushed: {done}")
                digest = done.split("@", 1)[1]
            else:
                eng.tag(image_id, target, recipe.tag)
                digest = eng.push(target, recipe.tag, login, lambda line: ctx.log(line, "push"))
                ctx.log(f"pushed {target}:{recipe.tag}@{digest}")
        return {"pushed": f"{target}:{recipe.tag}@{digest}", "digest": digest}

    def _run(self, config: DeploymentConfig, opts: DockerOptions, ctx: DeployContext, eng: DockerEngine,
             recipe: ImageRecipe, image_id: str, details: dict[str, Any]) -> DeploymentInfo:
        cname = container_name(config.name)
        host = publish_host(config)
        binds = binds_for(opts.volumes, config)
        labels = {**recipe.labels, LABEL_SETTINGS: ctx.settings_hash or ""}
        with ctx.step("container", f"start container {cname}"):
            current = eng.container(cname)
            stale = None if current else eng.container(cname + PREVIOUS_SUFFIX)
            if stale is not None:  # an interrupted replacement left the old container aside: it is the current one
                eng.rename(stale["Id"], cname)
                current = stale
            port = config.port or bound_port(current) or free_port(probe_host(config))
            previous = None
            if current is not None:
                eng.remove_container(cname + PREVIOUS_SUFFIX)
                ctx.log(f"stopping the previous container {current['Id'][:12]}")
                eng.stop(cname)
                eng.rename(cname, cname + PREVIOUS_SUFFIX)
                previous = current
            try:
                cid = eng.run(cname, recipe.ref, port=port, host=host, container_port=CONTAINER_PORT,
                              env={**server_env(config), **ctx.env},
                              labels=labels, binds=binds, memory_mb=config.memory_mb, user=opts.user)
            except WeaveError:
                self._restore(eng, previous, cname, opts, ctx)
                raise
            ctx.add_resource("container", cid, container=cname, image=recipe.ref, port=port)
            ctx.log(f"container {cid[:12]} publishes {host}:{port} -> {CONTAINER_PORT}")
        endpoint = f"http://{probe_host(config)}:{port}"
        with ctx.step("health", f"wait for a healthy container at {endpoint}"):
            ok, why = eng.wait_healthy(cname, opts.health_timeout, ctx.sleep, ctx.clock)
            if not ok:
                self._fail(eng, ctx, opts, cid, image_id, previous, why)
        if previous is not None:
            eng.remove_container(previous["Id"])
            ctx.remove_resource("container", previous["Id"])
        self._prune_images(eng, config.name, keep={image_id}, ctx=ctx)
        details.update({"container": cname, "container_id": cid, "port": port, "host": host})
        return DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE, endpoint=endpoint,
                              region="docker", version=recipe.tag, health="healthy", details=details)

    def _fail(self, eng: DockerEngine, ctx: DeployContext, opts: DockerOptions, cid: str, image_id: str,
              previous: dict | None, why: str) -> None:
        cname = container_name(ctx.name)
        if previous is None and opts.keep_on_failure:
            raise DeploymentFailed(f"the container never became healthy: {why}", f"it was kept for inspection: `docker logs {cname}`")
        eng.remove_container(cid)
        ctx.remove_resource("container", cid)
        restored = self._restore(eng, previous, cname, opts, ctx)
        if previous is None or previous.get("Image") != image_id:
            for res in ctx.resources("image"):
                if res.attrs.get("image_id") == image_id:
                    ctx.remove_resource("image", res.id)
            eng.remove_image(image_id)
        if previous is None:
            raise DeploymentFailed(f"the container never became healthy: {why}", "fix the cause above and deploy again; nothing was left running")
        raise DeploymentFailed(
            f"the new container never became healthy: {why}\nthe previous container was put back ({restored})",
            "fix the cause above and deploy again",
        )

    def _restore(self, eng: DockerEngine, previous: dict | None, cname: str, opts: DockerOptions, ctx: DeployContext) -> str:
        if previous is None:
            return "none"
        eng.remove_container(cname)
        eng.rename(previous["Id"], cname)
        eng.start(cname)
        ctx.log(f"put the previous container {previous['Id'][:12]} back")
        ok, why = eng.wait_healthy(cname, opts.health_timeout, ctx.sleep, ctx.clock)
        return "healthy" if ok else f"but it is not healthy either: {why}"

    def _prune_images(self, eng: DockerEngine, name: str, keep: set[str], ctx: DeployContext) -> None:
        used = {c.get("ImageID") for c in eng.containers({LABEL_NAME: name})}
        for img in eng.images({LABEL_MANAGED: "true", LABEL_NAME: name}):
            if img["Id"] not in keep and img["Id"] not in used:
                eng.remove_image(img["Id"])
                for res in ctx.resources("image"):
                    if res.attrs.get("image_id") == img["Id"]:
                        ctx.remove_resource("image", res.id)

    def status(self, ctx: DeployContext) -> DeploymentInfo:
        eng = self.engine()
        rec = ctx.record
        current = eng.container(container_name(ctx.name))
        if current is None or (current.get("Config", {}).get("Labels") or {}).get(LABEL_NAME) != ctx.name:
            if rec is None:
                raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
            if rec.details.get("push_only"):
                here = eng.image(rec.details.get("image", "")) is not None
                return rec.model_copy(update={"health": "pushed" if here else "image removed"})
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "health": "no container", "drift": "missing"})
        live = describe(current, ctx.name)
        if rec is None:
            return live.model_copy(update={"drift": "unrecorded"})
        return rec.model_copy(update={"status": live.status, "health": live.health, "endpoint": live.endpoint or rec.endpoint})

    def destroy(self, ctx: DeployContext, keep_image: bool = False, **options: Any) -> None:
        eng = self.engine()
        wanted = {LABEL_MANAGED: "true", LABEL_NAME: ctx.name}
        containers = eng.containers(wanted)
        images = eng.images(wanted)
        if ctx.record is None and not containers and not images:
            raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
        for c in containers:
            label = ",".join(n.lstrip("/") for n in c.get("Names") or []) or c["Id"][:12]
            with ctx.step(f"container-{c['Id'][:12]}", f"stop and remove container {label}"):
                eng.stop(c["Id"])
                eng.remove_container(c["Id"])
        for res in ctx.resources("container"):
            eng.remove_container(res.id)
            ctx.remove_resource("container", res.id)
        if keep_image:
            ctx.log("keeping the image (--keep-image): " + ", ".join(t for i in images for t in i.get("RepoTags") or []))
            return
        for img in images:
            with ctx.step(f"image-{img['Id'][7:19]}", f"remove image {', '.join(img.get('RepoTags') or []) or img['Id'][:19]}"):
                eng.remove_image(img["Id"])
        for res in ctx.resources("image"):
            ctx.remove_resource("image", res.id)
        pushed = (ctx.record.details if ctx.record else {}).get("pushed")
        if pushed:
            ctx.log(f"the pushed copy {pushed} stays in its registry")

    def list_deployments(self, records: Any = None) -> list[DeploymentInfo]:
        eng = self.engine()
        out: dict[str, DeploymentInfo] = {}
        for c in eng.containers({LABEL_MANAGED: "true"}):
            names = [n.lstrip("/") for n in c.get("Names") or []]
            if any(n.endswith(PREVIOUS_SUFFIX) for n in names):
                continue
            data = eng.container(c["Id"])
            if data is not None:
                info = describe(data, (c.get("Labels") or {}).get(LABEL_NAME, names[0] if names else c["Id"][:12]))
                out[info.name] = info
        for img in eng.images({LABEL_MANAGED: "true"}):
            name = (img.get("Labels") or {}).get(LABEL_NAME)
            if name and name not in out and img.get("RepoDigests"):
                out[name] = DeploymentInfo(name=name, provider=self.name, status=DeploymentStatus.ACTIVE, region="docker",
                                           health="pushed", version=tag_of(img), details={"digests": img["RepoDigests"]})
        return list(out.values())

    def logs(self, ctx: DeployContext, tail: int = 100) -> str:
        eng = self.engine()
        cname = container_name(ctx.name)
        if eng.container(cname) is None:
            raise WeaveError(f"{ctx.name!r} has no container on the Docker engine", "deploy it (push-only deployments have no logs)")
        lines = eng.logs(cname, tail=tail + 200).splitlines()
        return "\n".join([ln for ln in lines if not _HEALTH_LINE.search(ln)][-tail:])
