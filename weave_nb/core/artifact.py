"""The deployable artifact: the stdlib runtime plus the compiled weave, zipped.

The zip is byte-for-byte the same for the same inputs (fixed timestamps and
permissions, sorted entries), so its SHA-256 is a content hash that tells an
unchanged redeploy from a changed one.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

RUNTIME_PACKAGE = "weave_runtime"
LAMBDA_HANDLER = f"{RUNTIME_PACKAGE}.lambda_adapter.handler"
SERVER_MODULE = f"{RUNTIME_PACKAGE}.server"
SPEC_FILE = "weave.json"
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact:
    """A built artifact.

    Attributes:
        data: the zip bytes.
        content_hash: SHA-256 hex digest of ``data``.
        files: the entries' names and contents, in zip order.
        spec: the compiled weave (``weave.json``) as a dict.
    """

    data: bytes
    content_hash: str
    files: Mapping[str, bytes] = field(repr=False)
    spec: Mapping[str, Any] = field(repr=False)

    @property
    def size(self) -> int:
        """Zipped size in bytes."""
        return len(self.data)

    @property
    def unzipped_size(self) -> int:
        """Total size of the entries in bytes."""
        return sum(len(v) for v in self.files.values())

    def write(self, path: str | Path) -> Path:
        """Write the zip to ``path`` (a private 0600 file) and return it."""
        from .private_files import write_private

        return write_private(path, self.data)

    def extract(self, folder: str | Path) -> Path:
        """Write the entries into ``folder`` (created if needed; 0700 folders, 0600 files) and return it."""
        from .private_files import private_dir, write_private

        folder = Path(folder)
        for name, content in self.files.items():
            target = folder / name
            private_dir(target.parent)
            write_private(target, content)
        return folder


def runtime_files() -> dict[str, bytes]:
    """The runtime package's source files, keyed by their path inside an artifact."""
    from importlib import resources  # imported when an artifact is built, not when the package loads

    pkg = resources.files("weave_nb.runtime")
    out = {}
    for entry in sorted(pkg.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".py"):
            out[f"{RUNTIME_PACKAGE}/{entry.name}"] = entry.read_bytes()
    return out


def compile_spec(spec: Any) -> bytes:
    """Serialise a WeaveSpec's runtime form deterministically (sorted keys, no env values)."""
    return json.dumps(spec.to_runtime_dict(), sort_keys=True, separators=(",", ":")).encode()


def build_artifact(spec: Any, extra_files: Mapping[str, bytes] | None = None) -> Artifact:
    """Build the artifact for a weave.

    Args:
        spec: a ``WeaveSpec``.
        extra_files: more entries (for example ``main.py`` and ``requirements.txt``
            for Cloud Functions); they may not replace runtime files.

    Returns:
        The :class:`Artifact`.

    Raises:
        ValueError: an extra file would replace a runtime file or ``weave.json``.
    """
    spec_bytes = compile_spec(spec)
    files = runtime_files()
    files[SPEC_FILE] = spec_bytes
    for name, content in (extra_files or {}).items():
        if name in files:
            raise ValueError(f"{name} is part of the runtime and cannot be replaced")
        files[name] = content
    ordered = dict(sorted(files.items()))
    data = zip_bytes(ordered)
    return Artifact(
        data=data, content_hash=hashlib.sha256(data).hexdigest(), files=ordered, spec=json.loads(spec_bytes)
    )


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    """Zip ``files`` deterministically: sorted names, fixed time and mode, deflate level 9."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()
