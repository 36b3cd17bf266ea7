"""Reading engine state: docker-py's Container models as what a plan needs, a DeploymentInfo, ports and binds.

Pure functions over docker-py model objects (``Container.labels``,
``.status``, ``.health``, ``.ports``; ``.attrs`` only where no property
exists) and the config; no engine calls of their own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...core.config import DeploymentConfig, DeploymentInfo, DeploymentStatus
from .image import CONTAINER_PORT, LABEL_OWNER, parse_volume


@dataclass(frozen=True)
class Seen:
    """One container as the planner saw it.

    Attributes:
        id, name: the container's id and name.
        labels: its labels (the ownership marks among them).
        status: ``running``, ``exited``, ``created``, ``restarting``...
        health: ``healthy``, ``starting``, ``unhealthy``, or ``None`` without a health check.
        port, host_ip: the host port and address it publishes the server on (``None`` when none).
        image: the image reference it was created from; ``image_id`` the image's id.
        network: its network mode (``container:<id>`` when it joined a port holder's namespace).
        user: the user it runs as.
    """

    id: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    status: str = ""
    health: str | None = None
    port: int | None = None
    host_ip: str = ""
    image: str = ""
    image_id: str = ""
    network: str = ""
    user: str = ""

    @property
    def serving(self) -> bool:
        """True when it runs and Docker reports it healthy."""
        return self.status == "running" and self.health == "healthy"

    def summary(self) -> dict[str, Any]:
        """What a plan's ``observed`` keeps of it (no env, no secrets)."""
        return {"id": self.id, "name": self.name, "status": self.status, "health": self.health, "port": self.port,
                "image": self.image, "owner": self.labels.get(LABEL_OWNER)}


def seen(container: Any) -> Seen:
    """A :class:`Seen` from a ``docker.models.containers.Container``."""
    port, host_ip = published(container)
    health = container.health
    return Seen(
        id=container.id, name=container.name, labels=dict(container.labels or {}), status=container.status,
        health=None if health == "unknown" else health, port=port, host_ip=host_ip,
        image=(container.attrs.get("Config") or {}).get("Image", ""),  # the reference it was made from: no property has it
        image_id=container.attrs.get("Image", ""),
        network=(container.attrs.get("HostConfig") or {}).get("NetworkMode") or "",
        user=(container.attrs.get("Config") or {}).get("User") or "",
    )


def published(container: Any) -> tuple[int | None, str]:
    """The host port and address a container publishes the server on.

    A running container's ``ports`` say where it listens; a stopped one has
    none, so its requested bindings (``HostConfig.PortBindings``) are read.
    """
    key = f"{CONTAINER_PORT}/tcp"
    bindings = (container.ports or {}).get(key) or ((container.attrs.get("HostConfig") or {}).get("PortBindings") or {}).get(key) or []
    for binding in bindings:
        if str(binding.get("HostPort") or "").isdigit():
            return int(binding["HostPort"]), binding.get("HostIp") or ""
    return None, ""


def reach(host: str) -> str:
    """The address to reach a port published on ``host`` from this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


def describe(container: Any, name: str, holder: Any = None) -> DeploymentInfo:
    """A DeploymentInfo from a ``Container`` model (``holder``: its port holder, which publishes the port)."""
    s = seen(container)
    if s.port is None and holder is not None:
        s = replace(s, port=published(holder)[0], host_ip=published(holder)[1])
    running = s.status == "running"
    if running and s.health in ("healthy", None):
        status = DeploymentStatus.ACTIVE
    elif running and s.health == "starting":
        status = DeploymentStatus.DEPLOYING
    else:
        status = DeploymentStatus.FAILED
    endpoint = f"http://{reach(s.host_ip)}:{s.port}" if s.port else None
    return DeploymentInfo(
        name=name, provider="docker", status=status, endpoint=endpoint, region="docker",
        version=s.image.rsplit(":", 1)[-1] if ":" in s.image else None,
        health=s.health or s.status,
        details={"container": s.name, "container_id": s.id, "image": s.image, "port": s.port,
                 "owner": s.labels.get(LABEL_OWNER)},
    )


def publish_host(config: DeploymentConfig) -> str:
    """The host address to publish on (``--public`` opens 127.0.0.1 up to 0.0.0.0)."""
    host = "127.0.0.1" if config.host == "localhost" else config.host
    return "0.0.0.0" if config.public and host == "127.0.0.1" else host


def server_env(config: DeploymentConfig) -> dict[str, str]:
    """Environment for the runtime server in the container (see ``weave_runtime.server``).

    The server binds 0.0.0.0 inside the container, so by itself it would accept
    any ``Host``; published on a loopback address, it must answer only the
    loopback names (on any port: the published port is not the container's),
    or a web page could read it through DNS rebinding. Published on a
    non-loopback address (``--public``, ``--host``), any Host is accepted.
    """
    host = publish_host(config)
    if not (host.startswith("127.") or host == "::1"):
        return {}
    names = ["127.0.0.1", "localhost", "[::1]", f"[{host}]" if ":" in host else host]
    return {"WEAVE_ALLOWED_HOSTS": ",".join(dict.fromkeys(names))}


def probe_host(config: DeploymentConfig) -> str:
    """The address to reach the published port at from this machine."""
    return reach(publish_host(config))


def tag_of(image: Any) -> str | None:
    """The tag of an ``Image`` model's first repository tag, or ``None``."""
    tags = image.tags or []
    return tags[0].rsplit(":", 1)[-1] if tags else None


def binds_for(volumes: list[str], config: DeploymentConfig) -> list[str]:
    """Volumes as engine binds: relative host paths resolve against the weave file's folder (or the cwd).

    Nothing is created here (the plan calls it); :func:`make_bind_folders` does that when the container starts.
    """
    base = Path(config.weave_file).resolve().parent if config.weave_file else Path.cwd()
    out = []
    for spec in volumes:
        host, target, mode = parse_volume(spec)
        if host.startswith((".", "/", "~")):
            path = Path(os.path.expanduser(host))
            host = str(path if path.is_absolute() else (base / path).resolve())
        out.append(f"{host}:{target}:{mode}")
    return out


def make_bind_folders(binds: list[str]) -> None:
    """Create the host folders of path binds (``/abs/path:/target:mode``) that do not exist yet."""
    for bind in binds:
        host = bind.split(":", 1)[0]
        if host.startswith("/"):
            Path(host).mkdir(parents=True, exist_ok=True)
