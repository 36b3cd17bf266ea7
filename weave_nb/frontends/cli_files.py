"""Files the command line writes: ``weave init`` (a starter weave) and ``weave package`` (the artifact).

Both refuse to overwrite an existing file without ``--force`` and write
through a temporary file, so an interrupted command leaves no half file.
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError
from .starters import STARTERS


def _refuse_existing(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", "pass --force to overwrite it, or -o to write another file")


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_starter(example: str, output: str, force: bool = False) -> str:
    """Write the starter weave ``example`` to ``output``.

    Returns:
        What to tell the user (the file and the command that deploys it).

    Raises:
        ConfigError: ``output`` exists and ``force`` is false.
    """
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder", "pass a file name with -o, e.g. -o my.weave.yaml")
    _refuse_existing(path, force)
    _write_atomic(path, STARTERS[example].encode())
    config = "" if path.name == ".weave.yaml" and path.parent.resolve() == Path.cwd().resolve() else f" --config {output}"
    return f"wrote {output} (the {example} starter)\nnext:\n  weave deploy --name {example}{config}"


def write_package(mgr: Any, args: argparse.Namespace) -> str:
    """``weave package``: build the artifact a deploy would ship and write it.

    The zip for local, aws and gcp (and plug-ins); for docker the image's build
    context as a tar (or unpacked into a folder when ``--output`` ends in ``/``).

    Returns:
        What was written, with the artifact's content hash (the one a deploy records).
    """
    values = {"name": args.name, "provider": args.provider, "weave_file": args.weave_file}
    config, provider, artifact = mgr.package(values)
    recipe = getattr(provider, "recipe", None)
    if recipe is not None and config.provider == "docker":
        data = recipe(config, artifact, provider.options(config), mgr.inventory.owner_id).context
        what, default = "docker build context", f"{config.name}-docker.tar"
    else:
        data = artifact.data
        what, default = f"{config.provider} artifact", f"{config.name}-{config.provider}.zip"
    output = args.output or default
    if output.endswith(("/", os.sep)):
        folder = Path(output)
        if folder.exists() and any(folder.iterdir()) and not args.force:
            raise ConfigError(f"{folder} is not empty", "pass --force to write into it, or name another folder")
        folder.mkdir(parents=True, exist_ok=True)
        if recipe is not None and config.provider == "docker":
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(folder, filter="data")
        else:
            artifact.extract(folder)
        target = str(folder)
    else:
        path = Path(output)
        _refuse_existing(path, args.force)
        _write_atomic(path, data)
        target = output
    return f"wrote {target} ({what}, {len(data)} bytes, content hash {artifact.content_hash})"
