"""Weave files (``.weave.yaml``, format "1.0"): parse, validate, compile.

A weave file declares ``agents`` (model, tools, inputs, outputs, config,
prompt), ``weaves`` (named lists of agents), optional ``env`` and optional
``deployment`` defaults. :func:`load_weave` and :func:`parse_weave` turn
one into a :class:`WeaveSpec`, or raise :class:`~weave_nb.core.errors.WeaveSpecError`
with a message, the place in the file where known, and a suggestion.

:meth:`WeaveSpec.to_runtime_dict` is the compiled form written as
``weave.json`` next to the standard-library runtime; it never holds env
values, only their names.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Mapping

from ..core.errors import WeaveSpecError
from .validator import ENV_BODY_RE, ENV_REF_RE, SUPPORTED_VERSIONS, choices_hint, validate
from .yaml_loader import MAX_WEAVE_BYTES

__all__ = [
    "AgentSpec",
    "WeaveDef",
    "WeaveSpec",
    "SUPPORTED_VERSIONS",
    "MAX_WEAVE_BYTES",
    "RUNTIME_FORMAT",
    "load_weave",
    "parse_weave",
]

RUNTIME_FORMAT = "weave-runtime/1"


@dataclass(frozen=True)
class AgentSpec:
    """One agent of a weave file.

    Attributes:
        name: the agent's key under ``agents``.
        model: model id, optionally prefixed ``mock:``, ``openai:``, ``anthropic:``.
        tools: declared tool names (recorded; the standard runtime does not run tools).
        inputs: names of the agents whose outputs this agent reads.
        outputs: key under which this agent's output is published.
        config: model settings such as ``temperature``, ``max_tokens``, ``system``.
        prompt: optional instruction template using ``{input}`` and
            ``{<dependency name or output key>}`` placeholders.
    """

    name: str
    model: str
    tools: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    outputs: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None


@dataclass(frozen=True)
class WeaveDef:
    """A named workflow: the agents it runs.

    Attributes:
        name: the weave's key under ``weaves``.
        description: free text, ``""`` when absent.
        agents: agent names as listed in the file.
    """

    name: str
    description: str
    agents: tuple[str, ...]


@dataclass(frozen=True)
class WeaveSpec:
    """A validated weave file.

    Attributes:
        version: format version, always one of :data:`SUPPORTED_VERSIONS`.
        agents: agent name -> :class:`AgentSpec`, in file order.
        weaves: weave name -> :class:`WeaveDef`, in file order.
        env: raw env values (may contain ``${VAR}`` references).
        deployment: raw deployment defaults, ``{}`` when absent.
        source: where the text came from (a path or ``"<string>"``).
    """

    version: str
    agents: dict[str, AgentSpec]
    weaves: dict[str, WeaveDef]
    env: dict[str, str]
    deployment: dict[str, Any]
    source: str = "<string>"
    _orders: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def default_weave(self) -> str | None:
        """The weave to run when none is named: the only one, else ``None``."""
        return next(iter(self.weaves)) if len(self.weaves) == 1 else None

    def execution_order(self, weave_name: str) -> list[str]:
        """Agents of a weave in dependency order.

        Dependencies come first; among agents that are ready at the same
        time, the order in the weave's ``agents`` list wins, so the result is
        stable.

        Args:
            weave_name: a key of :attr:`weaves`.

        Returns:
            Agent names, each exactly once.

        Raises:
            WeaveSpecError: if the weave does not exist.
        """
        if weave_name not in self.weaves:
            raise WeaveSpecError(
                f"Unknown weave {weave_name!r} in {self.source}.",
                choices_hint(weave_name, self.weaves, "weaves"),
            )
        return list(self._orders[weave_name])

    def to_runtime_dict(self) -> dict[str, Any]:
        """The compiled spec the runtime reads (written as ``weave.json``).

        Deterministic (keys sorted, lists in file/execution order), JSON
        serialisable, with each weave's execution order precomputed. Env
        *values* are never included, only the sorted key names, and the
        source path is left out so the same file gives the same bytes on
        every machine.

        Returns:
            A dict of this shape (``"format"`` is :data:`RUNTIME_FORMAT`)::

                {"format": "weave-runtime/1", "version": "1.0",
                 "agents": {"writer": {"model": "claude-3-opus", "tools": [],
                                       "inputs": ["researcher"], "outputs": "draft_article",
                                       "config": {"temperature": 0.7}, "prompt": null}, ...},
                 "weaves": {"content_pipeline": {"description": "...",
                                                 "agents": ["researcher", "writer"],
                                                 "order": ["researcher", "writer"]}},
                 "env_keys": ["OPENAI_API_KEY", "STYLE"]}
        """
        agents = {}
        for name in sorted(self.agents):
            a = self.agents[name]
            agents[name] = {
                "config": _sorted_copy(a.config),
                "inputs": list(a.inputs),
                "model": a.model,
                "outputs": a.outputs,
                "prompt": a.prompt,
                "tools": list(a.tools),
            }
        weaves = {}
        for name in sorted(self.weaves):
            w = self.weaves[name]
            weaves[name] = {
                "agents": list(w.agents),
                "description": w.description,
                "order": list(self._orders[name]),
            }
        return {
            "agents": agents,
            "env_keys": sorted(self.env),
            "format": RUNTIME_FORMAT,
            "version": self.version,
            "weaves": weaves,
        }

    def resolve_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """Substitute ``${VAR}`` and ``${VAR:-default}`` in the env values.

        ``${VAR:-default}`` uses the default when ``VAR`` is unset or empty;
        ``$${`` is a literal ``${``.

        Args:
            environ: where variables are looked up (e.g. ``os.environ``
                merged with ``--env`` values).

        Returns:
            env key -> resolved value, in file order.

        Raises:
            WeaveSpecError: if a referenced variable without a default is
                not set; the message names every such variable.
        """
        resolved: dict[str, str] = {}
        missing: list[str] = []
        for key, raw in self.env.items():
            resolved[key] = _substitute(raw, environ, missing)
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            raise WeaveSpecError(
                f"Environment variable(s) {names} referenced in the env section of "
                f"{self.source} are not set.",
                f"Set {names} in your environment or pass --env NAME=VALUE.",
            )
        return resolved


def load_weave(path: str | Path) -> WeaveSpec:
    """Read and validate a ``.weave.yaml`` file.

    Only a regular file of at most :data:`MAX_WEAVE_BYTES` (1 MiB) is read;
    its type and size are checked before reading, so a device such as
    ``/dev/zero`` or a FIFO is refused at once instead of read forever.

    Args:
        path: the file to read.

    Returns:
        The validated :class:`WeaveSpec` with ``source`` set to the path.

    Raises:
        WeaveSpecError: if the file is missing, is a directory or not a
            regular file, is larger than 1 MiB, cannot be read or decoded, or
            does not describe a valid weave.
    """
    if not isinstance(path, (str, os.PathLike)) or "\0" in os.fspath(path):
        raise WeaveSpecError(
            f"The weave file path must be a path without NUL bytes, got {type(path).__name__} {_short(path)}.",
            "Pass the path of a .weave.yaml file as a string, e.g. \"app.weave.yaml\".",
        )
    p = Path(path)
    return parse_weave(_read_weave_file(p), source=str(p))


def _read_weave_file(p: Path) -> str:
    """The text of weave file ``p``, checked to be a regular file under the size cap before reading."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise WeaveSpecError(
            f"Weave file not found: {p}.",
            "Check the path, or start from one of the examples in examples/.",
        ) from None
    except OSError as exc:
        if p.is_dir():
            raise _is_a_directory(p) from None
        raise WeaveSpecError(
            f"Cannot read weave file {p}: {exc.strerror or exc}.",
            "Check the path and its permissions.",
        ) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _is_a_directory(p)
        if not stat.S_ISREG(st.st_mode):
            raise WeaveSpecError(
                f"{p} is not a regular file (it is {_file_kind(st.st_mode)}), so it is not read as a weave file.",
                "Pass the path of a .weave.yaml file; to use generated text, write it to a file first "
                "or pass it as weave_text.",
            )
        if st.st_size > MAX_WEAVE_BYTES:
            raise WeaveSpecError(
                f"{p} is {st.st_size:,} bytes; a weave file may be at most {MAX_WEAVE_BYTES // 1024} KiB.",
                "A weave describes agents, not data: move large prompts or data out of the file.",
            )
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_WEAVE_BYTES + 1)  # never more than the cap, even if the file grows meanwhile
    except OSError as exc:
        raise WeaveSpecError(
            f"Cannot read weave file {p}: {exc.strerror or exc}.",
            "Check the path and its permissions.",
        ) from None
    finally:
        os.close(fd)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WeaveSpecError(
            f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
            "Save the weave file as UTF-8.",
        ) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_a_directory(p: Path) -> WeaveSpecError:
    return WeaveSpecError(
        f"{p} is a directory, not a weave file.",
        f"Pass the .weave.yaml file inside it, e.g. {p / 'app.weave.yaml'}.",
    )


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def parse_weave(text: str, source: str = "<string>") -> WeaveSpec:
    """Parse and validate weave-file text.

    Args:
        text: YAML text of a weave file.
        source: a name for messages (usually the file path).

    Returns:
        The validated :class:`WeaveSpec`.

    Raises:
        WeaveSpecError: on YAML syntax errors (with line and column), wrong
            types (naming the field path), unknown agents, dependency
            cycles, empty weaves, an unsupported version, text that is not a
            string or is over 1 MiB, or aliases that expand past the limits.
    """
    if not isinstance(text, str):
        raise WeaveSpecError(
            f"The weave text from {source} must be a string, got {type(text).__name__}.",
            "Pass the YAML as str (decode bytes first, e.g. data.decode('utf-8')).",
        )
    parts = validate(text, source, AgentSpec, WeaveDef)
    return WeaveSpec(source=source, **parts)


def _sorted_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted_copy(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_copy(v) for v in value]
    return value


def _substitute(raw: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def repl(match: re.Match) -> str:
        m = ENV_BODY_RE.match(match.group(1))
        name, default = m.group(1), m.group(2)
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return ""
        return value

    parts = raw.split("$${")
    return "${".join(ENV_REF_RE.sub(repl, part) for part in parts)


def find_weave_file(folder: str | os.PathLike[str] = ".") -> str:
    """The weave file in ``folder``: ``weave.yaml`` or the only ``*.weave.yaml``.

    Raises:
        WeaveSpecError: none, or more than one, was found.
    """
    folder = Path(folder)
    for name in ("weave.yaml", ".weave.yaml"):
        if (folder / name).is_file():
            return str(folder / name)
    found = sorted(folder.glob("*.weave.yaml"))
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise WeaveSpecError(
            "no weave file given and none found in the current folder",
            "pass --config FILE.weave.yaml (see examples/), or write the weave in a %%weave_deploy cell",
        )
    raise WeaveSpecError(
        f"several weave files here ({', '.join(p.name for p in found)}); which one?", "pass --config FILE"
    )
