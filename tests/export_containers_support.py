"""Shared pieces of the compose/kubernetes export tests: a weave, a source, writing files out."""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path
from typing import Any, Mapping

from weave_nb.core.manager import DeploymentManager
from weave_nb.export.source import ExportSource, source_for

FAKE_SECRET = "sk-weave-export-FAKE-7d41c09be2"  # must never appear in an exported file

WEAVE = textwrap.dedent(
    """\
    version: "1.0"
    agents:
      greeter:
        model: mock
        outputs: greeting
        config:
          system: Greet the user warmly.
    weaves:
      hello:
        description: Say hello
        agents: [greeter]
    """
)


def make_source(home: Path, **values: Any) -> ExportSource:
    """An ExportSource for the hello weave with ``values`` (name, provider, env, ...) over the defaults."""
    base = {"name": "demo", "provider": "docker", "weave_text": WEAVE,
            "env": {"OPENAI_API_KEY": FAKE_SECRET, "WEAVE_MODEL_BACKEND": "mock"}}
    return source_for(DeploymentManager(home=home), {**base, **values})


def write_files(files: Mapping[str, bytes], folder: Path) -> Path:
    """Write ``render``'s output under ``folder`` (the core's writer does this in ``weave export``)."""
    for rel, data in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder


def secret_forms(value: str) -> list[bytes]:
    """The ways a value could leak into a file: as is, and base64 (a Secret's ``data``)."""
    raw = value.encode()
    return [raw, base64.b64encode(raw)]
