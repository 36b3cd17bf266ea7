"""A credential provider that reads ``KEY=VALUE`` lines from a ``.env``-style file."""

from __future__ import annotations

import os
from pathlib import Path

from weave_nb import CredentialProvider


class DotenvCredentialProvider(CredentialProvider):
    """Credential values from a dotenv file, optionally per provider.

    A line ``FOLDER_TOKEN=abc`` answers for every provider; ``folder.FOLDER_TOKEN=abc``
    only for the ``folder`` provider. Blank lines and ``#`` comments are skipped.

    Args:
        path: the file to read (read again on every lookup, so edits apply at once).
    """

    name = "dotenv"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _values(self) -> dict[str, str]:
        if not self.path.is_file():
            return {}
        values: dict[str, str] = {}
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
        return values

    def get(self, provider: str, key: str) -> str | None:
        """Return ``provider.KEY`` or ``KEY`` from the file, or ``None``."""
        values = self._values()
        return values.get(f"{provider}.{key}") or values.get(key) or None

    def __repr__(self) -> str:  # never show values
        return f"DotenvCredentialProvider(path={str(self.path)!r})"
