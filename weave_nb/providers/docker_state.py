"""Reading engine state: a container's inspect data as a DeploymentInfo, ports, hosts and volume binds.

Pure functions over plain dicts and the config (no engine calls, no ``import docker``).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import DeploymentConfig, DeploymentInfo, DeploymentStatus
from .docker_image import CONTAINER_PORT, parse_volume


def describe(data: dict, name: str) -> DeploymentInfo:
    """A DeploymentInfo from a container's inspect data."""
    state = data.get("State") or {}
    health = (state.get("Health") or {}).get("Status")
    running = bool(state.get("Running"))
    if running and health in ("healthy", None):
        status = DeploymentStatus.ACTIVE
    elif running and health == "starting":
        status = DeploymentStatus.DEPLOYING
    else:
        status = DeploymentStatus.FAILED
    port = bound_port(data)
    bindings = (data.get("HostConfig") or {}).get("PortBindings") or {}
    host_ip = next((b.get("HostIp") for b in bindings.get(f"{CONTAINER_PORT}/tcp") or []), "") or "0.0.0.0"
    endpoint = f"http://{'127.0.0.1' if host_ip in ('0.0.0.0', '::') else host_ip}:{port}" if port else None
    image = (data.get("Config") or {}).get("Image", "")
    return DeploymentInfo(
        name=name, provider="docker", status=status, endpoint=endpoint, region="docker",
        version=image.rsplit(":", 1)[-1] if ":" in image else None,
        health=health or state.get("Status"),
        details={"container": data.get("Name", "").lstrip("/"), "container_id": data.get("Id"), "image": image, "port": port},
    )


def bound_port(data: dict | None) -> int | None:
    """The host port a container publishes the server on, or ``None``."""
    bindings = ((data or {}).get("HostConfig") or {}).get("PortBindings") or {}
    for binding in bindings.get(f"{CONTAINER_PORT}/tcp") or []:
        if str(binding.get("HostPort") or "").isdigit():
            return int(binding["HostPort"])
    return None


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
    host = publish_host(config)
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def tag_of(img: dict) -> str | None:
    """The tag of an image's first repository tag, or ``None``."""
    tags = img.get("RepoTags") or []
    return tags[0].rsplit(":", 1)[-1] if tags else None


def binds_for(volumes: list[str], config: DeploymentConfig) -> list[str]:
    """Volumes as engine binds: relative host paths resolve against the weave file's folder (or the cwd)."""
    base = Path(config.weave_file).resolve().parent if config.weave_file else Path.cwd()
    out = []
    for spec in volumes:
        host, target, mode = parse_volume(spec)
        if host.startswith((".", "/", "~")):
            path = Path(os.path.expanduser(host))
            path = path if path.is_absolute() else (base / path).resolve()
            path.mkdir(parents=True, exist_ok=True)
            host = str(path)
        out.append(f"{host}:{target}:{mode}")
    return out
