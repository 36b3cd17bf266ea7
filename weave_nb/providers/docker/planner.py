"""The docker provider's planner: observe the engine, decide every step of a deploy or an undeploy.

Nothing here changes the engine. A plan observes the image (by its
reference, whose tag hashes the weave and the Dockerfile, labels included),
the container named ``weave-nb-NAME`` (labels, state, health, port), the
``-previous`` and ``-next`` containers an interrupted deploy may have
left, and the push target; then lists the steps, each with the apply
function it calls (``DockerSteps.apply_<call>``), its parameters and its
undo. Every container of the deployment's name must carry this
inventory's ownership marks, or the plan stops before any change
(``--adopt`` takes it over, shown as an ``adopt`` step).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core import ownership
from ...core.plan import Plan, PlannedStep
from ...core.errors import ConfigError, NotFound
from ...core.procutil import port_in_use
from .engine import BASE_IMAGE_HINT, DockerEngine
from .image import LABEL_HASH, LABEL_MANAGED, LABEL_NAME, LABEL_OWNER, LABEL_SETTINGS, container_name, repository_for
from .secret_files import secrets_env
from .state import Seen, binds_for, probe_host, publish_host, seen, server_env

if TYPE_CHECKING:
    from ...core.artifact import Artifact
    from ...core.config import DeploymentConfig
    from ..base import DeployContext
    from .provider import DockerProvider

from .switch import HOLDER_SUFFIX, PREVIOUS_SUFFIX, SUFFIXES, TRIAL_SUFFIX, joined, switch_steps  # noqa: F401 - re-exported


def pushed_digest(image: Any, repository: str) -> str | None:
    """The digest ``image`` (an Image model, or ``None``) was pushed to ``repository`` with, or ``None``."""
    for digest in (image.attrs.get("RepoDigests") if image is not None else None) or []:
        if digest.startswith(repository + "@"):
            return digest.split("@", 1)[1]
    return None


def owned_containers(eng: DockerEngine, name: str, owner: str, adopt: bool) -> tuple[list[Seen], list[PlannedStep]]:
    """The containers named for deployment ``name``, each checked to be this inventory's.

    Returns:
        The containers found, and an ``adopt`` step for each one taken over with ``--adopt``.

    Raises:
        ForeignResource: one is not this inventory's and ``adopt`` is False; nothing was changed.
    """
    found, adopting = [], []
    for suffix in (*SUFFIXES, HOLDER_SUFFIX):
        c = eng.get_container(container_name(name) + suffix)
        if c is None:
            continue
        s = seen(c)
        if ownership.check("docker", f"container {s.name}", s.labels, owner, adopt, name):
            verdict = ownership.judge("docker", s.labels, owner)
            adopting.append(PlannedStep(
                key=f"adopt{suffix or '-container'}", resource=f"container {s.name} ({s.id[:12]})", action="adopt",
                detail=f"--adopt: made by {'inventory ' + verdict.owner if verdict.owner else 'something else'}",
                call="adopt_container", params={"id": s.id, "name": s.name},
            ))
        found.append(s)
    return found, adopting


def plan_deploy(prov: "DockerProvider", config: "DeploymentConfig", artifact: "Artifact", ctx: "DeployContext") -> Plan:
    """The deploy plan (see the module docstring); raises ConfigError/ForeignResource before any change."""
    opts = prov.options(config)
    eng = prov.engine(config)
    recipe = prov.recipe(config, artifact, opts, ctx.owner)
    image = eng.get_image(recipe.ref)
    observed: dict[str, Any] = {"image": recipe.ref, "image_id": image.id if image else None, "base_image": opts.image,
                                "push_only": opts.push_only}
    steps: list[PlannedStep] = []
    containers: list[Seen] = []
    if not opts.push_only:  # ownership first: a foreign container stops the plan before anything else is decided
        containers, adopting = owned_containers(eng, config.name, ctx.owner, config.adopt)
        steps.extend(adopting)
    if image is None and eng.get_image(opts.image) is None:
        reason = eng.can_pull(opts.image)
        if reason:
            raise ConfigError(f"base image {opts.image} is not here and cannot be pulled: {reason}", BASE_IMAGE_HINT)
        steps.append(PlannedStep(key="base", resource=f"base image {opts.image}", action="create", detail="pull",
                                 call="pull_base", params={"image": opts.image}))
    steps.append(PlannedStep(
        key="image", resource=f"image {recipe.ref}", action="no-change" if image else "create",
        detail="" if image else "build (the build log streams)", call="build_image", undo="remove_built",
        params={"ref": recipe.ref, "base_image": opts.image, "user": opts.user, "health_interval": opts.health_interval,
                "labels": dict(recipe.labels)},
    ))
    if opts.push or opts.push_only:
        login = DockerEngine.registry_login(prov.auth, opts.registry, config.auth)
        target = repository_for(config.name, login.url)
        done = pushed_digest(image, target)
        if not done:
            eng.login(login)  # a refused login stops here, before anything is built
        observed["pushed"] = f"{target}:{recipe.tag}@{done}" if done else None
        steps.append(PlannedStep(key="push", resource=f"push {target}:{recipe.tag}", action="no-change" if done else "create",
                                 call="push_image", params={"repository": target, "tag": recipe.tag, "registry": login.url}))
    if opts.push_only:
        return Plan(provider=prov.name, name=config.name, steps=steps, observed=observed,
                    notes=["push only: no container is run"])
    return _plan_containers(prov, config, ctx, recipe, image, containers, steps, observed)


def _plan_containers(prov: "DockerProvider", config: "DeploymentConfig", ctx: "DeployContext", recipe: Any, image: Any,
                     containers: list[Seen], steps: list[PlannedStep], observed: dict[str, Any]) -> Plan:
    opts = prov.options(config)
    cname = container_name(config.name)
    by_name = {s.name: s for s in containers}
    current, aside, trial = (by_name.get(cname + sfx) for sfx in SUFFIXES)
    holder = by_name.get(cname + HOLDER_SUFFIX)
    old = current or aside  # an interrupted replacement left the old container aside: it is the one to replace
    observed["containers"] = [s.summary() for s in containers]
    serving_port = (holder.port if holder is not None and holder.port else None) or (old.port if old else None)
    if config.port and config.port != serving_port and port_in_use(config.port, probe_host(config)):
        raise ConfigError(f"port {config.port} on {publish_host(config)} is already in use",
                          "choose another --port, or leave it unset to pick a free one")
    adopted = {s.params["id"] for s in steps if s.action == "adopt"}
    same = (current is not None and current.id not in adopted and current.serving and current.image == recipe.ref
            and joined(current, holder) and holder is not None and holder.status == "running"
            and holder.host_ip == publish_host(config) and (not config.port or holder.port == config.port)
            and current.labels.get(LABEL_HASH) == recipe.labels[LABEL_HASH]
            and current.labels.get(LABEL_SETTINGS) == ctx.settings_hash)
    if same and current is not None and holder is not None:
        observed["serving"] = {"container": current.name, "container_id": current.id, "port": holder.port,
                               "host": holder.host_ip, "health": current.health}
        steps.append(PlannedStep(key="container", resource=f"container {cname} ({current.id[:12]}) on port {holder.port}",
                                 action="no-change", detail="runs this weave and these settings, healthy"))
        return Plan(provider=prov.name, name=config.name, steps=steps, observed=observed, notes=_notes(config, opts))
    port = config.port or serving_port
    run = {"name": cname, "image": recipe.ref, "host": publish_host(config), "port": port,
           "labels": {**recipe.labels, LABEL_SETTINGS: ctx.settings_hash or ""}, "binds": binds_for(opts.volumes, config),
           "memory_mb": config.memory_mb, "user": opts.user, "holder_image": opts.image,
           "env": sorted(k for k in ctx.env if k not in config.secrets),  # env names only: values at apply time
           # the runtime server's Host rules, the name its request records carry, the secret files' names: not secret
           "server_env": {**server_env(config), "WEAVE_DEPLOYMENT": config.name, **secrets_env(config.secrets)}}
    if config.secrets:
        run["secrets"] = list(config.secrets)  # names: the values are copied in as files when the container is made
    why = "" if old is None else "adopted" if old.id in adopted else (
        "weave changed" if old.labels.get(LABEL_HASH) != recipe.labels[LABEL_HASH] else
        "settings changed" if old.labels.get(LABEL_SETTINGS) != ctx.settings_hash else
        "image changed" if old.image != recipe.ref else
        "moves behind a port holder" if not joined(old, holder) else f"not healthy ({old.health or old.status})")
    switch, notes = switch_steps(cname, run, current, aside, trial, holder, timeout=opts.health_timeout,
                                 holder_image=opts.image, what="the new release", why=why)
    steps.extend(switch)
    # earlier releases' images stay for `weave rollback`; the core appends plan_prune's steps for the oldest
    return Plan(provider=prov.name, name=config.name, steps=steps, observed=observed, notes=_notes(config, opts) + notes)


def _notes(config: "DeploymentConfig", opts: Any) -> list[str]:
    where = f"{publish_host(config)}:{config.port}" if config.port else f"{publish_host(config)} (a free port, kept across redeploys)"
    return [f"base {opts.image}, user {opts.user}, published on {where}"]


def plan_undeploy(prov: "DockerProvider", ctx: "DeployContext", keep_image: bool = False, adopt: bool = False) -> Plan:
    """The undeploy plan: every container of the deployment, then its images (unless ``keep_image``).

    Raises:
        ForeignResource: a container with the deployment's name is not this inventory's (and not ``adopt``).
        NotFound: nothing by that name is recorded or found.
    """
    eng = prov.engine()
    found, steps = owned_containers(eng, ctx.name, ctx.owner, adopt)
    mine = {LABEL_MANAGED: "true", LABEL_NAME: ctx.name, LABEL_OWNER: ctx.owner}
    containers = {s.id: s for s in found}
    for c in eng.list_containers(mine):
        containers.setdefault(c.id, seen(c))
    images = eng.list_images(mine)
    if ctx.record is None and not containers and not images:
        raise NotFound(f"no docker deployment named {ctx.name!r}", "list them with `weave deployments --provider docker`")
    for s in sorted(containers.values(), key=lambda c: c.name.endswith(HOLDER_SUFFIX)):  # the port holder last
        steps.append(PlannedStep(key=f"container-{s.id[:12]}", resource=f"container {s.name} ({s.id[:12]}, {s.status})",
                                 action="delete", call="remove_container", params={"id": s.id, "stop": s.status == "running"}))
    notes = []
    if keep_image:
        notes.append("keeping the image (--keep-image): " + (", ".join(t for i in images for t in i.tags) or "none found"))
    else:
        for img in images:
            steps.append(PlannedStep(key=f"image-{img.short_id[7:]}", resource=f"image {', '.join(img.tags) or img.short_id}",
                                     action="delete", call="remove_images", params={"ids": [img.id]}))
    pushed = (ctx.record.details if ctx.record else {}).get("pushed")
    if pushed:
        notes.append(f"the pushed copy {pushed} stays in its registry")
    return Plan(provider=prov.name, name=ctx.name, operation="undeploy", steps=steps, notes=notes,
                observed={"containers": [s.summary() for s in containers.values()], "images": [i.id for i in images]})
