"""What goes into a weave's Docker image: names, labels, the Dockerfile and the build context.

Pure functions, no engine calls (and no ``import docker``), so all of it is
tested without an engine. The image holds the stdlib runtime and
``weave.json`` only: nothing is pip-installed, and ``weave.json`` is copied
last so a changed weave rebuilds one small layer. Environment values are
never part of it; the provider passes them when it runs the container.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass

from ...core.artifact import SPEC_FILE
from ...core.ownership import marks
from ...core.errors import ConfigError

LABEL_MANAGED = "weave-nb.managed"
LABEL_NAME = "weave-nb.name"
LABEL_OWNER = "weave-nb.owner"
LABEL_HASH = "weave-nb.hash"
LABEL_SETTINGS = "weave-nb.settings"
LABEL_ENDPOINT = "weave-nb.endpoint"
CONTAINER_PORT = 8080
APP_DIR = "/app"
REPOSITORY_PREFIX = "weave-nb"
CONTAINER_PREFIX = "weave-nb-"
DEFAULT_USER = "10001:10001"

# One path component of a repository name, as the Docker distribution spec defines it.
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")

_HEALTH_PROBE = (
    "import sys, urllib.request; "
    f"r = urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}/health', timeout=2); "
    "sys.exit(0 if r.status == 200 else 1)"
)
_PYTHON_CHECK = (
    "import sys; "
    "sys.exit(0) if sys.version_info >= (3, 9) else sys.exit('weave-nb needs Python 3.9 or newer in the base image, found ' + sys.version)"
)


@dataclass(frozen=True)
class ImageRecipe:
    """Everything needed to build one image.

    Attributes:
        dockerfile: the generated Dockerfile text.
        context: the build context, an uncompressed tar archive (Dockerfile included).
        repository: the local repository, e.g. ``weave-nb/demo``.
        tag: a short hash of the Dockerfile and the artifact: the same inputs give the same tag.
        labels: the labels every image and container of this deployment carries.
    """

    dockerfile: str
    context: bytes
    repository: str
    tag: str
    labels: Mapping[str, str]

    @property
    def ref(self) -> str:
        """``repository:tag``."""
        return f"{self.repository}:{self.tag}"


def check_docker_name(name: str) -> None:
    """Check that a deployment name can name a Docker image and container.

    Raises:
        ConfigError: it has upper-case letters or a separator Docker does not allow.
    """
    if not _COMPONENT.match(name):
        lower = name.lower()
        hint = f"use --name {lower}" if _COMPONENT.match(lower) else (
            "use lower-case letters and digits, separated by single '-', '_' or '.' (not at the end)"
        )
        raise ConfigError(f"{name!r} is not a valid name for a Docker image", hint)


def check_user(user: str) -> None:
    """Check the ``user`` option (``NAME``, ``UID`` or ``UID:GID``; never root).

    Raises:
        ConfigError: malformed, or root.
    """
    if not _USER.match(user):
        raise ConfigError(f"user {user!r} is not a valid Docker user", "write it as UID:GID, e.g. 10001:10001")
    if user.split(":")[0] in ("root", "0"):
        raise ConfigError("the container must not run as root", f"leave the user option unset (default {DEFAULT_USER})")


def repository_for(name: str, registry: str | None = None) -> str:
    """The image repository of a deployment, optionally under a registry host."""
    repo = f"{REPOSITORY_PREFIX}/{name}"
    return f"{registry.rstrip('/')}/{repo}" if registry else repo


def container_name(name: str) -> str:
    """The container name of a deployment."""
    return CONTAINER_PREFIX + name


def base_labels(name: str, content_hash: str, owner: str | None = None) -> dict[str, str]:
    """The labels every image of the deployment carries: the ownership marks and the weave's hash.

    Args:
        name: the deployment name.
        content_hash: the artifact's content hash.
        owner: the inventory's owner id (``ownership.marks("docker", ...)``); ``None`` leaves the owner mark out.
    """
    if owner is None:
        return {LABEL_MANAGED: "true", LABEL_NAME: name, LABEL_HASH: content_hash}
    return {**marks("docker", name, owner), LABEL_HASH: content_hash}


def render_dockerfile(base_image: str, user: str, labels: Mapping[str, str], health_interval: float = 1.0) -> str:
    """The Dockerfile for a weave image.

    Layers, cheapest to change last: the base image, a build-time check that
    it has a usable ``python3``, the runtime package, run settings (user,
    port, health check, command; metadata only), then ``weave.json`` and the
    labels.

    Args:
        base_image: the ``FROM`` image.
        user: the non-root user the server runs as.
        labels: image labels.
        health_interval: seconds between health probes.

    Returns:
        The Dockerfile text.
    """
    interval = f"{max(health_interval, 0.1):g}s"
    label_args = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    lines = [
        "# generated by weave-nb: the stdlib runtime and weave.json, nothing pip-installed",
        f"FROM {base_image}",
        f"RUN [\"python3\", \"-c\", {json.dumps(_PYTHON_CHECK)}]",
        f"WORKDIR {APP_DIR}",
        f"COPY weave_runtime/ {APP_DIR}/weave_runtime/",
        "ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1",
        f"USER {user}",
        f"EXPOSE {CONTAINER_PORT}",
        (f"HEALTHCHECK --interval={interval} --timeout=3s --start-period=30s --retries=3 "
         f"CMD [\"python3\", \"-c\", {json.dumps(_HEALTH_PROBE)}]"),
        f"CMD [\"python3\", \"-m\", \"weave_runtime.server\", \"--host\", \"0.0.0.0\", \"--port\", \"{CONTAINER_PORT}\"]",
        f"COPY {SPEC_FILE} {APP_DIR}/{SPEC_FILE}",
        f"LABEL {label_args}",
        "",
    ]
    return "\n".join(lines)


def build_context(files: Mapping[str, bytes], dockerfile: str) -> bytes:
    """A deterministic tar archive of ``files`` plus the Dockerfile.

    Entries are sorted, owned by root, mode 0644 and dated 0, so the same
    files always give the same archive (and the builder's cache hits).
    """
    buf = io.BytesIO()
    entries = dict(files)
    entries["Dockerfile"] = dockerfile.encode()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_recipe(
    name: str,
    files: Mapping[str, bytes],
    content_hash: str,
    base_image: str,
    user: str = DEFAULT_USER,
    health_interval: float = 1.0,
    owner: str | None = None,
) -> ImageRecipe:
    """Put together the Dockerfile, build context, repository, tag and labels.

    Args:
        name: the deployment name (already checked by :func:`check_docker_name`).
        files: the artifact's files (``weave_runtime/*.py`` and ``weave.json``).
        content_hash: the artifact's content hash (label ``weave-nb.hash``).
        base_image: the ``FROM`` image.
        user: the non-root user.
        health_interval: seconds between health probes.
        owner: this inventory's owner id, labelled on the image (so it is part of the tag too).

    Returns:
        The :class:`ImageRecipe`.
    """
    labels = base_labels(name, content_hash, owner)
    dockerfile = render_dockerfile(base_image, user, labels, health_interval)
    tag = hashlib.sha256(dockerfile.encode() + content_hash.encode()).hexdigest()[:16]
    return ImageRecipe(
        dockerfile=dockerfile,
        context=build_context(files, dockerfile),
        repository=repository_for(name),
        tag=tag,
        labels=labels,
    )


def parse_volume(spec: str) -> tuple[str, str, str]:
    """Split a volume in the ``HOST:CONTAINER[:ro|rw]`` form.

    ``HOST`` is a path (``./data``, ``/srv/x``, ``~/x``) or a named volume.

    Returns:
        ``(host, container, mode)``.

    Raises:
        ValueError: the form is wrong or the container path is not absolute.
    """
    parts = spec.split(":")
    mode = "rw"
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        mode = parts.pop()
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"volume {spec!r} must look like ./data:/app/data (HOST:CONTAINER[:ro])")
    host, target = parts
    if not target.startswith("/"):
        raise ValueError(f"volume {spec!r}: the container path must be absolute, e.g. /app/data")
    return host, target, mode
