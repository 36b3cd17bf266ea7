"""``weave export``: find the format module, check the provider, render, and write the folder.

The folder gets the format's files (template, artifact, README.md) plus
``.weave-export.json``, a small record naming the deployment, format and
provider and the files written. That record is how a later export of the
same deployment knows the folder is its own: it may then replace the files
(and removes the ones it listed that the new export no longer writes); any
other non-empty folder is refused unless ``force``. Every file is written
through a temporary file, with fixed modes and no timestamps inside, so the
same input gives the same bytes.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any, Mapping

from ..core.errors import ConfigError
from ..core.options import did_you_mean

FORMATS = ("sam", "cloudformation", "terraform", "compose", "kubernetes")
RECORD = ".weave-export.json"
DEFAULT_ROOT = "weave-export"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote.

    Attributes:
        name: the deployment name.
        format: the format (``sam``, ``terraform``...).
        provider: the provider whose settings were exported.
        folder: the folder written.
        files: the files written, relative to ``folder``, sorted (the record file excluded).
        content_hash: the artifact's content hash (the one a deploy records).
    """

    name: str
    format: str
    provider: str
    folder: Path
    files: tuple[str, ...] = field(default_factory=tuple)
    content_hash: str = ""

    def summary(self) -> str:
        """One line per file, for the CLI and the magic."""
        lines = [f"wrote {self.folder} ({self.format} export of {self.name} on {self.provider}, content hash {self.content_hash[:16]})"]
        lines += [f"  {name}" for name in self.files]
        lines.append(f"next: read {Path(self.folder) / 'README.md'} for the {self.format} deploy commands")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())


def format_module(name: str) -> ModuleType:
    """The module ``weave_nb.export.<name>`` (FORMAT, PROVIDERS, render).

    Raises:
        ConfigError: an unknown format, or one whose module is not part of this build.
    """
    fmt = (name or "").strip().lower()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {name!r}{did_you_mean(fmt, FORMATS)}",
                          f"choose one of: {', '.join(FORMATS)}")
    try:
        module = importlib.import_module(f"{__package__}.{fmt}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{fmt}":
            raise
        raise ConfigError(f"the export format {fmt!r} is not available in this version of weave-nb",
                          f"choose one of: {', '.join(available_formats())}") from None
    return module


def available_formats() -> list[str]:
    """The formats whose module is installed, in :data:`FORMATS` order."""
    import importlib.util

    return [f for f in FORMATS if importlib.util.find_spec(f"{__package__}.{f}") is not None]


def choose_provider(module: ModuleType, given: str | None) -> str:
    """``given`` (checked against the format's PROVIDERS) or the format's default provider.

    Raises:
        ConfigError: the format cannot express that provider's settings.
    """
    providers = tuple(module.PROVIDERS)
    if not given:
        return providers[0]
    provider = given.strip().lower()
    if provider not in providers:
        raise ConfigError(f"the {module.FORMAT} format cannot export a {provider} deployment",
                          f"use --provider {' or --provider '.join(providers)} with --format {module.FORMAT}")
    return provider


def default_folder(name: str, fmt: str) -> Path:
    """``./weave-export/NAME-FORMAT``."""
    return Path(DEFAULT_ROOT) / f"{name}-{fmt}"


def check_folder(folder: Path, name: str, fmt: str, force: bool) -> list[str]:
    """Refuse a folder that holds something other than an earlier export of this deployment in this format.

    Returns:
        The files the earlier export listed (to remove those the new one no longer writes).

    Raises:
        ConfigError: ``folder`` is a file, or a non-empty folder that is not ours (and not ``force``).
    """
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder", "pass another folder with -o")
    if not folder.exists() or not any(folder.iterdir()):
        return []
    previous = _read_record(folder)
    if previous is not None and previous.get("name") == name and previous.get("format") == fmt:
        return [f for f in previous.get("files", []) if isinstance(f, str)]
    if force:
        return []
    what = (f"an export of {previous.get('name')!r} ({previous.get('format')})" if previous is not None
            else "files that no export of this deployment wrote")
    raise ConfigError(f"{folder} is not empty: it holds {what}",
                      "pass --force to write into it anyway, or choose another folder with -o")


def _read_record(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _safe_relative(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts or name != str(path):
        raise ValueError(f"a format module returned an unsafe path {name!r}")
    return name


def write_files(folder: Path, files: Mapping[str, bytes], old: list[str]) -> None:
    """Write ``files`` under ``folder`` (atomically, mode 0644, folders 0755), removing ``old`` ones not rewritten."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
        target = folder / _safe_relative(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(files[name])
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    for name in old:
        if name not in files and name != RECORD:
            try:
                (folder / _safe_relative(name)).unlink(missing_ok=True)
            except ValueError:
                continue


def record_bytes(src: Any, fmt: str, files: Mapping[str, bytes]) -> bytes:
    """The ``.weave-export.json`` record: deployment, format, provider, artifact hash and files (no time, no value)."""
    record = {
        "weave_nb_export": 1,
        "name": src.name,
        "format": fmt,
        "provider": src.provider,
        "content_hash": src.artifact.content_hash,
        "files": sorted(files),
    }
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()


def generic_readme(src: Any, fmt: str, files: Mapping[str, bytes]) -> bytes:
    """A README for a format module that wrote none: what the folder holds."""
    listed = "\n".join(f"- `{name}`" for name in sorted(files))
    return (f"# {src.name}: {fmt} export\n\nWritten by `weave export {src.name} --format {fmt} --provider {src.provider}`.\n\n"
            f"Files:\n\n{listed}\n\nEnvironment values are not in these files: supply them when you deploy.\n").encode()


def export_deployment(manager: Any, values: Mapping[str, Any], fmt: str, output: str | os.PathLike[str] | None = None,
                      force: bool = False, defaults: Mapping[str, Any] | None = None) -> ExportResult:
    """Export the deployment ``values`` describe (as for a deploy) in format ``fmt`` into a folder.

    Args:
        manager: the DeploymentManager (its inventory's owner id goes into the ownership marks).
        values: deploy values (``name``, ``provider``, ``weave_file``, ``env``, ``options``...).
        fmt: ``sam``, ``cloudformation``, ``terraform``, ``compose`` or ``kubernetes``.
        output: the folder (default ``./weave-export/NAME-FORMAT``).
        force: write into a non-empty folder that is not an earlier export of this deployment.
        defaults: front-end defaults, as for a deploy.

    Returns:
        The :class:`ExportResult`.

    Raises:
        ConfigError: unknown format, a provider the format cannot express, a folder that is not ours,
            or invalid settings; nothing is written then.
    """
    from .source import source_for

    module = format_module(fmt)
    values = dict(values)
    name = values.get("name")
    if not name:
        raise ConfigError("a deployment name is required", "e.g. weave export demo --format sam")
    from ..core.config import check_name

    check_name(name)
    values["provider"] = choose_provider(module, values.get("provider"))
    folder = Path(output) if output else default_folder(name, module.FORMAT)
    old = check_folder(folder, name, module.FORMAT, force)  # before any work: a refused folder costs nothing
    src = source_for(manager, values, defaults)
    files = dict(module.render(src))
    if "README.md" not in files:
        files["README.md"] = generic_readme(src, module.FORMAT, files)
    files[RECORD] = record_bytes(src, module.FORMAT, {k: v for k, v in files.items() if k != RECORD})
    write_files(folder, files, old)
    return ExportResult(name=src.name, format=module.FORMAT, provider=src.provider, folder=folder,
                        files=tuple(sorted(k for k in files if k != RECORD)), content_hash=src.artifact.content_hash)
