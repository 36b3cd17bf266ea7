"""Private folders and files under ``$WEAVE_HOME``: 0700 folders, 0600 files.

The home holds the inventory (endpoints, resource ids), server logs (which
may quote requests and upstream answers) and artifacts, so nothing in it is
readable by other users. Modes are set explicitly (``os.open`` with a mode,
then ``chmod``), so they do not depend on the process umask. Standard
library only; every module that writes under the home uses these helpers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable

__all__ = ["DIR_MODE", "FILE_MODE", "private_dir", "private_file", "open_private", "write_private", "write_once"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def _chmod(path: Path | int, mode: int) -> None:
    try:
        if isinstance(path, int):
            os.fchmod(path, mode)
        else:
            os.chmod(path, mode)
    except PermissionError:  # not ours (a shared parent): leave it as it is
        pass


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` and its missing parents as 0700 folders; tighten ``path`` itself if it exists.

    Args:
        path: the folder.

    Returns:
        ``path`` as a Path.

    Raises:
        OSError: it cannot be created.
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        _chmod(folder, DIR_MODE)
    if not missing:
        _chmod(path, DIR_MODE)
    return path


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty if missing, and make it 0600 (an existing one keeps its content).

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    try:
        _chmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def open_private(path: str | os.PathLike[str], append: bool = True) -> BinaryIO:
    """Open ``path`` for binary writing (appending by default), created or tightened to 0600.

    Returns:
        The open binary file (use it as a context manager).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    _chmod(fd, FILE_MODE)
    return os.fdopen(fd, "ab" if append else "wb")


def write_private(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` (replacing its content) as a 0600 file.

    Returns:
        ``path`` as a Path.
    """
    with open_private(path, append=False) as fh:
        fh.write(data)
    return Path(path)


def write_once(path: str | os.PathLike[str], make: Callable[[], bytes]) -> bytes:
    """The content of ``path``, written from ``make()`` the first time (a salt, an owner id).

    The first writer writes a temporary 0600 file and links it into place, so
    processes starting at once agree on one content and no reader ever sees
    a half-written file.

    Returns:
        The file's content.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        if data:
            return data
    except FileNotFoundError:
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.write(fd, make())
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes()
