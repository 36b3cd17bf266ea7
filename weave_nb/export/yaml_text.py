"""Deterministic YAML text for the container exports (a header comment, then the documents)."""

from __future__ import annotations

from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """SafeDumper that indents sequences under their key and never writes aliases."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # noqa: D401 - PyYAML hook
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # quote anything with ':' (ports, UID:GID): YAML 1.1 readers may take 10001:10001 for a number
    style = "|" if "\n" in value else '"' if ":" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(header: str, *documents: Any) -> bytes:
    """``documents`` as YAML (``---`` between them), after ``header`` as ``#`` comment lines.

    Keys keep their insertion order (the renderers build them in a fixed
    order), long strings stay on one line, so the same input always gives
    the same bytes.
    """
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096,
                         allow_unicode=True, explicit_start=len(documents) > 1)
    return ("\n".join(lines) + "\n" + body).encode()
