"""The image build context the container exports ship: the docker provider's own Dockerfile, user and labels.

``compose`` and ``kubernetes`` both write it under ``image/`` so that
``docker build image/`` (or ``docker compose build``) makes the same image
``weave deploy --provider docker`` builds: :func:`make_recipe` gives the
Dockerfile, the labels (ownership marks and the weave's hash) and the tag;
the files are the artifact's (``weave_runtime/*.py``, ``weave.json``).
Nothing here talks to an engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.errors import ConfigError
from ..providers.docker.image import (
    CONTAINER_PORT,
    DEFAULT_USER,
    ImageRecipe,
    check_docker_name,
    check_user,
    make_recipe,
)

if TYPE_CHECKING:  # pragma: no cover
    from .source import ExportSource

IMAGE_DIR = "image"
ENV_EXAMPLE = ".env.example"
HEALTH_PATH = "/health"
PORT = CONTAINER_PORT
# the in-container health probe (the Dockerfile's, written out so the Compose file shows it)
HEALTH_PROBE = (
    "import sys, urllib.request; "
    f"r = urllib.request.urlopen('http://127.0.0.1:{PORT}{HEALTH_PATH}', timeout=2); "
    "sys.exit(0 if r.status == 200 else 1)"
)

_NUMERIC_USER = re.compile(r"^(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class ContainerSettings:
    """The docker provider's settings that a container export expresses.

    Attributes:
        base_image: the ``FROM`` image.
        user: the non-root user (``UID:GID`` or a name).
        health_interval: the Dockerfile's own probe interval (the provider's option).
        volumes: ``HOST:CONTAINER[:ro]`` binds (docker provider only).
    """

    base_image: str
    user: str
    health_interval: float
    volumes: tuple[str, ...] = ()


def settings_of(src: "ExportSource") -> ContainerSettings:
    """The container settings of ``src``: the docker provider's options, or their defaults for other providers.

    Raises:
        ConfigError: the name cannot name a Docker image, or the user is root.
    """
    from ..providers.docker.provider import DockerOptions  # the defaults live with the provider

    check_docker_name(src.name)
    opts = src.provider_impl.options(src.config) if src.provider == "docker" else DockerOptions()
    check_user(opts.user)
    return ContainerSettings(base_image=opts.image, user=opts.user, health_interval=opts.health_interval,
                             volumes=tuple(opts.volumes))


def recipe_of(src: "ExportSource", settings: ContainerSettings) -> ImageRecipe:
    """The docker provider's image recipe for ``src`` (same Dockerfile, labels and tag as a deploy)."""
    art = src.artifact
    return make_recipe(src.name, art.files, art.content_hash, settings.base_image, settings.user,
                       settings.health_interval, src.owner)


def image_files(recipe: ImageRecipe, artifact_files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The build context as files under ``image/``: the artifact's files and the Dockerfile.

    Tarred with :func:`~weave_nb.providers.docker.image.build_context` they are
    exactly the context the docker provider sends to the engine.

    Returns:
        ``{"image/Dockerfile": ..., "image/weave.json": ..., "image/weave_runtime/...": ...}``.
    """
    out = {f"{IMAGE_DIR}/{name}": bytes(data) for name, data in sorted(artifact_files.items())}
    out[f"{IMAGE_DIR}/Dockerfile"] = recipe.dockerfile.encode()
    return out


def numeric_user(user: str) -> tuple[int, int]:
    """``(uid, gid)`` of a ``UID[:GID]`` user, for Kubernetes' ``runAsUser``/``runAsGroup``.

    Raises:
        ConfigError: the user is a name (Kubernetes cannot check a name is not root) or is root.
    """
    m = _NUMERIC_USER.match(user)
    if not m:
        raise ConfigError(f"user {user!r} is a name; Kubernetes needs a numeric UID to enforce runAsNonRoot",
                          f"set --option user=UID:GID (default {DEFAULT_USER})")
    uid = int(m.group(1))
    gid = int(m.group(2)) if m.group(2) is not None else uid
    if uid == 0:
        raise ConfigError("the container must not run as root", f"leave the user option unset (default {DEFAULT_USER})")
    return uid, gid


def env_example(src: "ExportSource", reader: str) -> bytes:
    """``.env.example``: every environment variable name of ``src`` with an empty value (never a value).

    Args:
        src: the export source (its ``env_names`` and ``secret_names``).
        reader: what reads the filled-in ``.env``, for the header comment.
    """
    lines = [
        f"# Environment of weave-nb deployment {src.name}: copy this file to .env and fill in the values.",
        f"# Read by {reader}; keep .env out of version control. The export never writes a value.",
    ]
    lines += [f"{name}=" for name in src.env_names]
    if src.secret_names:
        lines.append("# managed secrets (--secret): given to the container as environment variables too")
        lines += [f"{name}=" for name in src.secret_names]
    return ("\n".join(lines) + "\n").encode()
