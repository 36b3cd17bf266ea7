"""The docker provider's switch-over: a port holder per deployment, and release containers that share it.

Docker publishes a host port to one container at a time, so the published
port belongs to a long-lived, minimal *port holder* (``weave-nb-NAME-net``:
the base image running a sleeping process, labelled with the ownership
marks). Every release container joins the holder's network namespace
(``network_mode="container:<holder>"``) and runs the runtime server with
``--reuse-port`` on the same container port. A switch-over (a changed
deploy, a rollback) then never leaves the port without a listener:

1. ``trial``: the new release runs alone (own namespace, no port) until Docker calls it healthy;
2. ``container``: it runs again as ``NAME-next`` in the holder's namespace, next to the serving one;
3. ``health``: a probe inside it waits until its OWN server answers ``/health`` (``X-Weave-Instance``);
4. ``switch``: the names swap (renaming a running container does not touch it);
5. ``old``: the old container is stopped (its server drains what it queued) and removed.

A failure before ``old`` leaves the old container serving and removes the
new one (each step's undo). A deployment made before the holder existed (a
container publishing the port itself), a holder that must change (another
host or port, stopped) or a changed user (SO_REUSEPORT shares a port only
within one user) take the *cold* path once: the old container is set aside
first, so new connections are refused for the moment the new one takes to
listen; the plan's notes say so.

Pure planning here (no engine calls); the step functions are in ``steps``.
"""

from __future__ import annotations

from typing import Any

from ...core.plan import PlannedStep
from .image import CONTAINER_PORT
from .state import Seen

PREVIOUS_SUFFIX = "-previous"  # the old container, set aside while its replacement starts
TRIAL_SUFFIX = "-next"  # the new release: on trial (own namespace), then next to the serving one
HOLDER_SUFFIX = "-net"  # the port holder: owns the network namespace and the published port
LABEL_ROLE = "weave-nb.role"
HOLDER_ROLE = "port-holder"
SUFFIXES = ("", PREVIOUS_SUFFIX, TRIAL_SUFFIX)
SERVER_COMMAND = ["python3", "-m", "weave_runtime.server", "--host", "0.0.0.0", "--port", str(CONTAINER_PORT), "--reuse-port"]
HOLDER_COMMAND = ["python3", "-c", "import signal; signal.pause()"]


def holder_labels(labels: dict[str, str]) -> dict[str, str]:
    """The holder's labels: the ownership marks of a release's labels, and its role."""
    keep = ("weave-nb.managed", "weave-nb.name", "weave-nb.owner")
    return {**{k: v for k, v in labels.items() if k in keep}, LABEL_ROLE: HOLDER_ROLE}


def joined(container: Seen | None, holder: Seen | None) -> bool:
    """True when ``container`` runs in ``holder``'s network namespace."""
    return container is not None and holder is not None and container.network == f"container:{holder.id}"


def holder_fits(holder: Seen | None, host: str, port: int | None) -> bool:
    """True when ``holder`` runs and publishes on ``host`` (and ``port``, when one is asked for)."""
    return (holder is not None and holder.status == "running" and holder.port is not None
            and holder.host_ip == host and (port is None or holder.port == port))


def switch_steps(cname: str, run: dict[str, Any], current: Seen | None, aside: Seen | None, trial: Seen | None,
                 holder: Seen | None, *, timeout: float, holder_image: str, what: str, why: str) -> tuple[list[PlannedStep], list[str]]:
    """The steps that put ``run`` (a release container's settings) in service, and the plan's notes about them.

    Args:
        cname: the serving container's name (``weave-nb-NAME``).
        run: the release container's settings (image, host, port or ``None`` for a free one, labels, env names...).
        current, aside, trial: the containers named ``cname``, ``cname-previous``, ``cname-next`` (or ``None``).
        holder: the port holder ``cname-net`` (or ``None``).
        timeout: seconds the new release has to become healthy, then to answer by itself.
        holder_image: the image a new holder runs (the base image).
        what: how the new release is named in the steps (``the new release``, ``release 3``).
        why: the container step's detail (what changed).
    """
    steps: list[PlannedStep] = []
    notes: list[str] = []
    for stale in (s for s in (trial, aside if current else None) if s is not None):
        steps.append(PlannedStep(key=f"stale{stale.name[len(cname):]}", resource=f"leftover container {stale.name} ({stale.id[:12]})",
                                 action="delete", detail="left by an interrupted deploy", call="remove_container",
                                 params={"id": stale.id, "stop": stale.status == "running"}))
    fits = holder_fits(holder, run["host"], run.get("port"))
    hot = (current is not None and current.serving and fits and joined(current, holder)
           and current.user == (run.get("user") or ""))
    if current is not None and current.serving:
        steps.append(PlannedStep(
            key="trial", resource=f"trial container {cname}{TRIAL_SUFFIX} (no port published)", action="create",
            detail=f"{what} must become healthy on its own before it joins the serving port",
            call="trial_run", params={**run, "name": cname + TRIAL_SUFFIX, "port": None, "timeout": timeout},
        ))
    if hot:
        assert current is not None and holder is not None
        port = holder.port
        steps.append(PlannedStep(
            key="container", resource=f"container {cname}{TRIAL_SUFFIX} in {holder.name}'s network ({run['host']}:{port})",
            action="create", detail=f"{why}; next to the serving container, both listening (SO_REUSEPORT)",
            call="run_release", undo="remove_started",
            params={**run, "name": cname + TRIAL_SUFFIX, "final": cname, "holder": holder.id, "port": port}))
        steps.append(PlannedStep(key="health", resource=f"wait for {cname}{TRIAL_SUFFIX} itself to answer /health",
                                 action="create", call="wait_answering", params={"name": cname + TRIAL_SUFFIX, "timeout": timeout}))
        steps.append(PlannedStep(
            key="switch", resource=f"names: {cname} ({current.id[:12]}) -> {cname}{PREVIOUS_SUFFIX}, new -> {cname}",
            action="update", detail="renames only; both keep serving", call="swap_names", undo="swap_back",
            params={"old_id": current.id, "name": cname, "aside": cname + PREVIOUS_SUFFIX, "new": cname + TRIAL_SUFFIX}))
        steps.append(PlannedStep(
            key="old", resource=f"old container {cname}{PREVIOUS_SUFFIX} ({current.id[:12]})", action="delete",
            detail="stopped once the new one answers (its server drains what it queued), then removed",
            call="remove_old", params={"id": current.id, "stop": True}))
        return steps, notes
    if current is not None:
        holds = f"it holds port {current.port}" if current.port else "it holds the name"
        steps.append(PlannedStep(
            key="retire", resource=f"old container {cname} ({current.id[:12]})", action="update",
            detail=f"stopped and set aside as {cname}{PREVIOUS_SUFFIX} first: {holds}; put back if the new one fails",
            call="set_aside", undo="put_back",
            params={"id": current.id, "name": cname, "aside": cname + PREVIOUS_SUFFIX, "was_running": current.status == "running",
                    "was_serving": current.serving, "timeout": timeout}))
        if current.serving:
            reason = ("it publishes the port itself (made before port holders)" if not joined(current, holder) else
                      "the port holder changes" if not fits else "the user changes (a shared port needs one user)")
            notes.append(f"one-time gap: {reason}, so new connections are refused while the new container starts; "
                         "later switch-overs keep the endpoint answering")
    port = run.get("port") or (holder.port if holder is not None and holder.port else None)
    holder_id = holder.id if fits and holder is not None else None
    if holder is not None and not fits:  # set aside (not removed): the old container needs it if it is put back
        steps.append(PlannedStep(
            key="retire-net", resource=f"port holder {holder.name} ({holder.id[:12]}, {holder.status})", action="update",
            detail=f"replaced (another host or port, or stopped): stopped and set aside as {holder.name}{PREVIOUS_SUFFIX}; "
                   "put back if the new release fails",
            call="set_aside", undo="put_back",
            params={"id": holder.id, "name": holder.name, "aside": holder.name + PREVIOUS_SUFFIX,
                    "was_running": holder.status == "running", "was_serving": False, "timeout": timeout}))
    if holder_id is None:
        steps.append(PlannedStep(
            key="holder", resource=f"port holder {cname}{HOLDER_SUFFIX} on {run['host']}:{port or 'a free port'}",
            action="create", detail=f"{holder_image} sleeping; owns the network namespace and the published port",
            call="run_holder", undo="remove_holder",
            params={"name": cname + HOLDER_SUFFIX, "image": holder_image, "host": run["host"], "port": port,
                    "labels": holder_labels(run["labels"]), "user": run.get("user")}))
    old = current or aside
    steps.append(PlannedStep(
        key="container", resource=f"container {cname} in {cname}{HOLDER_SUFFIX}'s network",
        action="replace" if old else "create", detail=why, call="run_release", undo="remove_started",
        params={**run, "name": cname, "final": cname, "holder": holder_id, "port": port}))
    steps.append(PlannedStep(key="health", resource=f"wait for {cname} itself to answer /health", action="create",
                             call="wait_answering", params={"name": cname, "timeout": timeout}))
    if old is not None:
        steps.append(PlannedStep(key="old", resource=f"old container {cname}{PREVIOUS_SUFFIX} ({old.id[:12]})", action="delete",
                                 detail="once the new one answers", call="remove_container", params={"id": old.id, "stop": False}))
    if holder is not None and not fits:
        steps.append(PlannedStep(key="old-net", resource=f"old port holder {holder.name}{PREVIOUS_SUFFIX} ({holder.id[:12]})",
                                 action="delete", call="remove_container", params={"id": holder.id, "stop": False}))
    return steps, notes
