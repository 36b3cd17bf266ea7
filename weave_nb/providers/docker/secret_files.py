"""Managed secrets in a Docker container: files in ``/run/secrets``, readable only by the container's user.

Each ``--secret NAME`` becomes the file ``/run/secrets/NAME`` (mode 0400, in a
folder of mode 0500, both owned by the container's user), copied into the
created container before it starts (the Engine API's archive upload). The
value is never in the image, an image layer, the container's environment,
``docker inspect`` or a file under ``$WEAVE_HOME``: it lives in the
container's own writable layer and goes with the container. The container's
environment only says which names to read (``WEAVE_SECRET_FILES``), and the
runtime reads them at its first request (:mod:`weave_runtime.secret_loader`).
"""

from __future__ import annotations

import io
import re
import tarfile
from typing import Mapping

from ...core.errors import ConfigError
from ...core.secrets import SECRET_FILES_VAR, SECRETS_DIR

_NUMERIC = re.compile(r"^(\d+)(?::(\d+))?$")


def check_secret_user(user: str, secrets: list[str] | tuple[str, ...]) -> None:
    """Secrets are owned by the container's user: it must be numeric (``UID`` or ``UID:GID``) to know who that is.

    Raises:
        ConfigError: secrets with a named user; nothing was created.
    """
    if secrets and not _NUMERIC.match(user or ""):
        raise ConfigError(f"--secret needs a numeric container user to own the secret files, not {user!r}",
                          "leave --option user unset (default 10001:10001) or give it as UID:GID")


def owner_ids(user: str) -> tuple[int, int]:
    """``(uid, gid)`` of a numeric ``UID[:GID]`` (the gid defaults to the uid)."""
    found = _NUMERIC.match(user)
    if not found:
        raise ConfigError(f"the container user {user!r} is not numeric", "give it as UID:GID")
    return int(found.group(1)), int(found.group(2) or found.group(1))


def secrets_archive(values: Mapping[str, str], user: str) -> bytes:
    """A tar to unpack at ``/``: ``run/secrets/`` (0500) and one file per secret (0400), owned by ``user``."""
    uid, gid = owner_ids(user)
    buffer = io.BytesIO()
    folder = SECRETS_DIR.strip("/")
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entry = tarfile.TarInfo(folder)
        entry.type, entry.mode, entry.uid, entry.gid = tarfile.DIRTYPE, 0o500, uid, gid
        tar.addfile(entry)
        for name, value in sorted(values.items()):
            data = value.encode("utf-8")
            entry = tarfile.TarInfo(f"{folder}/{name}")
            entry.size, entry.mode, entry.uid, entry.gid = len(data), 0o400, uid, gid
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def secrets_env(secrets: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The container's environment entry naming the secret files (names only)."""
    return {SECRET_FILES_VAR: ",".join(secrets)} if secrets else {}
