"""Weave files (``.weave.yaml``, format "1.0"): parse, validate, compile.

A weave file declares ``agents`` (model, tools, inputs, outputs, config,
prompt), ``weaves`` (named lists of agents), optional ``env`` and optional
``deployment`` defaults. :func:`load_weave` and :func:`parse_weave` turn
one into a :class:`WeaveSpec`, or raise :class:`~weave_nb.errors.WeaveSpecError`
with a message, the place in the file where known, and a suggestion.

:meth:`WeaveSpec.to_runtime_dict` is the compiled form written as
``weave.json`` next to the standard-library runtime; it never holds env
values, only their names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import WeaveSpecError

__all__ = [
    "AgentSpec",
    "WeaveDef",
    "WeaveSpec",
    "SUPPORTED_VERSIONS",
    "RUNTIME_FORMAT",
    "load_weave",
    "parse_weave",
]

SUPPORTED_VERSIONS = ("1.0",)
RUNTIME_FORMAT = "weave-runtime/1"

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENV_REF_RE = re.compile(r"\$\{([^}]*)\}")
_ENV_BODY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")

_TOP_KEYS = ("version", "agents", "weaves", "env", "deployment")
_AGENT_KEYS = ("model", "tools", "inputs", "outputs", "config", "prompt")
_WEAVE_KEYS = ("description", "agents")
_NUMBER_CONFIG = ("temperature", "top_p")


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
                _choices_hint(weave_name, self.weaves, "weaves"),
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
            ``{"format", "version", "agents", "weaves", "env_keys"}``.
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

    Args:
        path: the file to read.

    Returns:
        The validated :class:`WeaveSpec` with ``source`` set to the path.

    Raises:
        WeaveSpecError: if the file is missing, is a directory, cannot be
            read or decoded, or does not describe a valid weave.
    """
    p = Path(path)
    if p.is_dir():
        raise WeaveSpecError(
            f"{p} is a directory, not a weave file.",
            f"Pass the .weave.yaml file inside it, e.g. {p / 'app.weave.yaml'}.",
        )
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WeaveSpecError(
            f"Weave file not found: {p}.",
            "Check the path, or create a starter file with `weave init`.",
        ) from None
    except UnicodeDecodeError as exc:
        raise WeaveSpecError(
            f"{p} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
            "Save the weave file as UTF-8.",
        ) from None
    except OSError as exc:
        raise WeaveSpecError(
            f"Cannot read weave file {p}: {exc.strerror or exc}.",
            "Check the path and its permissions.",
        ) from None
    return parse_weave(text, source=str(p))


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
            cycles, empty weaves, or an unsupported version.
    """
    data, marks = _load_yaml(text, source)
    return _Validator(source, marks).spec(data)


# --------------------------------------------------------------------------- YAML


def _load_yaml(text: str, source: str) -> tuple[Any, dict[tuple, tuple[int, int]]]:
    """Load YAML, keeping ``path -> (line, column)`` (1-based) for messages."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        marks: dict[tuple, tuple[int, int]] = {}
        if node is not None:
            _collect_marks(node, (), marks, source)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise WeaveSpecError(
            f"YAML syntax error in {source}{where}: {problem}.",
            "Fix the YAML syntax; check indentation and quoting near that line.",
        ) from None
    except yaml.YAMLError as exc:
        raise WeaveSpecError(f"Cannot parse {source} as YAML: {exc}.", "Fix the YAML syntax.") from None
    finally:
        loader.dispose()
    return data, marks


def _collect_marks(node: yaml.Node, path: tuple, marks: dict, source: str) -> None:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                line = key_node.start_mark.line + 1
                raise WeaveSpecError(
                    f"Duplicate key {key!r} in {source} at line {line}"
                    + (f" (under {_dotted(path)})" if path else "") + ".",
                    "Each key may appear once; rename or merge the duplicates.",
                )
            seen.add(key)
            _collect_marks(value_node, path + (key,), marks, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_marks(item, path + (i,), marks, source)


# --------------------------------------------------------------------------- validation


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


def _choices_hint(name: str, choices, what: str) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    known = ", ".join(choices) or "none"
    if close:
        return f"Did you mean {close[0]!r}? Known {what}: {known}."
    return f"Known {what}: {known}."


def _sorted_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _sorted_copy(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted_copy(v) for v in value]
    return value


class _Validator:
    """Turns loaded YAML data into a WeaveSpec, raising on the first problem."""

    def __init__(self, source: str, marks: dict[tuple, tuple[int, int]]) -> None:
        self.source = source
        self.marks = marks

    def fail(self, path: tuple, message: str, suggestion: str | None = None) -> WeaveSpecError:
        where = ""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.marks:
                where = f", line {self.marks[path[:cut]][0]}"
                break
        return WeaveSpecError(f"{self.source}{where}: {message}", suggestion)

    def expect(self, path: tuple, value: Any, types: tuple, wanted: str) -> Any:
        if isinstance(value, bool) and bool not in types:
            ok = False
        else:
            ok = isinstance(value, types)
        if not ok:
            raise self.fail(path, f"{_dotted(path)} must be {wanted}, got {_type_name(value)} {value!r}.",
                            f"Write {_dotted(path)} as {wanted}.")
        return value

    def known_keys(self, path: tuple, data: dict, allowed: tuple) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(path + (key,), f"unknown field {key!r} in {_dotted(path)}.",
                                _choices_hint(str(key), allowed, "fields"))

    def name(self, path: tuple, value: Any, what: str) -> str:
        self.expect(path, value, (str,), "a string")
        if not _NAME_RE.match(value):
            raise self.fail(path, f"invalid {what} name {value!r}.",
                            "Use letters, digits, '_' or '-', starting with a letter or '_' (max 64).")
        return value

    def spec(self, data: Any) -> WeaveSpec:
        if data is None:
            raise self.fail((), "the file is empty.", "Start from `weave init` or an example in examples/.")
        self.expect((), data, (dict,), "a mapping with version, agents and weaves")
        self.known_keys((), data, _TOP_KEYS)
        version = self.version(data.get("version"))
        agents = self.agents(data.get("agents"))
        weaves = self.weaves(data.get("weaves"), agents)
        env = self.env(data.get("env"))
        deployment = data.get("deployment") or {}
        self.expect(("deployment",), deployment, (dict,), "a mapping")
        self.check_cycles(agents)
        self.check_prompts(agents)
        orders = {name: tuple(_topological(w.agents, agents)) for name, w in weaves.items()}
        return WeaveSpec(version=version, agents=agents, weaves=weaves, env=env,
                         deployment=dict(deployment), source=self.source, _orders=orders)

    def version(self, value: Any) -> str:
        supported = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
        if value is None:
            raise self.fail((), "missing 'version'.", f'Add `version: "1.0"` at the top (supported: {supported}).')
        if isinstance(value, float) and not isinstance(value, bool):
            value = repr(value)  # an unquoted 1.0 reads as a float
        if not isinstance(value, str) or value not in SUPPORTED_VERSIONS:
            raise self.fail(("version",), f"unsupported version {value!r}.",
                            f"Supported versions: {supported}; write it quoted, e.g. version: \"1.0\".")
        return value

    def agents(self, data: Any) -> dict[str, AgentSpec]:
        if not data:
            raise self.fail(("agents",) if data is not None else (), "no agents defined.",
                            "Add an 'agents' mapping with at least one agent, e.g. "
                            "`agents: {helper: {model: mock}}`.")
        self.expect(("agents",), data, (dict,), "a mapping of agent name to settings")
        agents: dict[str, AgentSpec] = {}
        for name, body in data.items():
            path = ("agents", name)
            self.name(path, name, "agent")
            if isinstance(body, str):  # shorthand: `helper: gpt-4`
                body = {"model": body}
            self.expect(path, body, (dict,), "a mapping with at least 'model'")
            self.known_keys(path, body, _AGENT_KEYS)
            if "model" not in body:
                raise self.fail(path, f"agent {name!r} has no 'model'.", "Add e.g. `model: gpt-4` (or `model: mock`).")
            model = self.expect(path + ("model",), body["model"], (str,), "a string")
            if not model.strip():
                raise self.fail(path + ("model",), f"{_dotted(path + ('model',))} is empty.", "Name a model, e.g. gpt-4.")
            agents[name] = AgentSpec(
                name=name,
                model=model.strip(),
                tools=self.str_list(path + ("tools",), body.get("tools")),
                inputs=self.str_list(path + ("inputs",), body.get("inputs")),
                outputs=self.outputs(path + ("outputs",), body.get("outputs"), name),
                config=self.config(path + ("config",), body.get("config")),
                prompt=self.prompt(path + ("prompt",), body.get("prompt")),
            )
        for agent in agents.values():
            for i, dep in enumerate(agent.inputs):
                if dep not in agents:
                    raise self.fail(("agents", agent.name, "inputs"),
                                    f"agent {agent.name!r} takes inputs from unknown agent {dep!r}.",
                                    _choices_hint(dep, agents, "agents"))
        return agents

    def str_list(self, path: tuple, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        self.expect(path, value, (list,), "a string or a list of strings")
        for i, item in enumerate(value):
            self.expect(path + (i,), item, (str,), "a string")
        return tuple(dict.fromkeys(value))

    def outputs(self, path: tuple, value: Any, default: str) -> str:
        if value is None:
            return default
        return self.name(path, value, "output")

    def config(self, path: tuple, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        self.expect(path, value, (dict,), "a mapping")
        for key in value:
            self.expect(path + (key,), key, (str,), "a string key")
        for key in _NUMBER_CONFIG:
            if key in value:
                self.expect(path + (key,), value[key], (int, float), "a number")
        if "max_tokens" in value:
            mt = self.expect(path + ("max_tokens",), value["max_tokens"], (int,), "a positive integer")
            if mt <= 0:
                raise self.fail(path + ("max_tokens",), f"{_dotted(path + ('max_tokens',))} must be positive.",
                                "Use e.g. max_tokens: 1024.")
        if "system" in value:
            self.expect(path + ("system",), value["system"], (str,), "a string")
        return dict(value)

    def prompt(self, path: tuple, value: Any) -> str | None:
        if value is None:
            return None
        return self.expect(path, value, (str,), "a string")

    def weaves(self, data: Any, agents: dict[str, AgentSpec]) -> dict[str, WeaveDef]:
        if not data:
            raise self.fail(("weaves",) if data is not None else (), "no weaves defined.",
                            f"Add e.g. `weaves: {{main: {{agents: [{next(iter(agents))}]}}}}`.")
        self.expect(("weaves",), data, (dict,), "a mapping of weave name to definition")
        weaves: dict[str, WeaveDef] = {}
        for name, body in data.items():
            path = ("weaves", name)
            self.name(path, name, "weave")
            if isinstance(body, list):  # shorthand: `main: [a, b]`
                body = {"agents": body}
            self.expect(path, body, (dict,), "a mapping with 'agents'")
            self.known_keys(path, body, _WEAVE_KEYS)
            description = body.get("description") or ""
            self.expect(path + ("description",), description, (str,), "a string")
            members = body.get("agents")
            if not members:
                raise self.fail(path, f"weave {name!r} has no agents.",
                                f"List the agents it runs, e.g. `agents: [{next(iter(agents))}]`.")
            members = self.str_list(path + ("agents",), members)
            raw = body["agents"] if isinstance(body["agents"], list) else [body["agents"]]
            if len(members) != len(raw):
                dup = next(a for a in raw if raw.count(a) > 1)
                raise self.fail(path + ("agents",), f"weave {name!r} lists agent {dup!r} twice.",
                                "List each agent once.")
            for member in members:
                if member not in agents:
                    raise self.fail(path + ("agents",), f"weave {name!r} uses unknown agent {member!r}.",
                                    _choices_hint(member, agents, "agents"))
            for member in members:
                for dep in agents[member].inputs:
                    if dep not in members:
                        raise self.fail(path + ("agents",),
                                        f"weave {name!r} runs agent {member!r}, which takes inputs from "
                                        f"{dep!r}, but {dep!r} is not in the weave.",
                                        f"Add {dep!r} to weaves.{name}.agents, or change agents.{member}.inputs.")
            keys: dict[str, str] = {}
            for member in members:
                key = agents[member].outputs
                if key in keys:
                    raise self.fail(path + ("agents",),
                                    f"agents {keys[key]!r} and {member!r} in weave {name!r} both write "
                                    f"output {key!r}.", "Give each agent a distinct 'outputs' key.")
                keys[key] = member
            weaves[name] = WeaveDef(name=name, description=description, agents=members)
        return weaves

    def env(self, data: Any) -> dict[str, str]:
        if data is None:
            return {}
        self.expect(("env",), data, (dict,), "a mapping of NAME to value")
        env: dict[str, str] = {}
        for key, value in data.items():
            path = ("env", key)
            if not isinstance(key, str) or not _ENV_NAME_RE.match(key):
                raise self.fail(path, f"invalid env name {key!r}.", "Use letters, digits and '_' (e.g. OPENAI_API_KEY).")
            self.expect(path, value, (str, int, float), "a string (quote it)")
            value = str(value)
            for ref in _ENV_REF_RE.findall(value.replace("$${", "")):
                if not _ENV_BODY_RE.match(ref):
                    raise self.fail(path, f"env.{key} has a malformed reference ${{{ref}}}.",
                                    "Write ${NAME} or ${NAME:-default}.")
            env[key] = value
        return env

    def check_cycles(self, agents: dict[str, AgentSpec]) -> None:
        state: dict[str, int] = {}  # 1 = on stack, 2 = done
        stack: list[str] = []

        def visit(name: str) -> None:
            state[name] = 1
            stack.append(name)
            for dep in agents[name].inputs:
                if state.get(dep) == 1:
                    cycle = stack[stack.index(dep):] + [dep]
                    raise self.fail(("agents", dep, "inputs"),
                                    f"dependency cycle between agents: {' -> '.join(cycle)}.",
                                    "Remove one of these 'inputs' so the agents can run in order.")
                if state.get(dep) is None:
                    visit(dep)
            stack.pop()
            state[name] = 2

        for name in agents:
            if name not in state:
                visit(name)

    def check_prompts(self, agents: dict[str, AgentSpec]) -> None:
        for agent in agents.values():
            if agent.prompt is None:
                continue
            allowed = {"input"} | set(agent.inputs) | {agents[d].outputs for d in agent.inputs}
            for ref in _PLACEHOLDER_RE.findall(agent.prompt):
                if ref not in allowed:
                    raise self.fail(("agents", agent.name, "prompt"),
                                    f"agents.{agent.name}.prompt uses unknown placeholder {{{ref}}}.",
                                    f"Use {{input}} or an output of the agents in its inputs: "
                                    f"{', '.join(sorted(allowed))}.")


def _topological(members: tuple[str, ...], agents: dict[str, AgentSpec]) -> list[str]:
    """Kahn's algorithm; ready agents are taken in weave-list order."""
    pending = {m: set(agents[m].inputs) for m in members}
    order: list[str] = []
    while pending:
        ready = next(m for m in members if m in pending and not pending[m])
        order.append(ready)
        del pending[ready]
        for deps in pending.values():
            deps.discard(ready)
    return order


def _substitute(raw: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def repl(match: re.Match) -> str:
        m = _ENV_BODY_RE.match(match.group(1))
        name, default = m.group(1), m.group(2)
        value = environ.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return ""
        return value

    parts = raw.split("$${")
    return "${".join(_ENV_REF_RE.sub(repl, part) for part in parts)
