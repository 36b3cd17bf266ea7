"""Validation of weave files: YAML with positions, then field-by-field checks.

Private to :mod:`weave_nb.spec.model`, which turns the parts returned by
:func:`validate` into its public dataclasses. Every problem is raised as a
:class:`~weave_nb.core.errors.WeaveSpecError` naming the file, the line where
known, the field path (``agents.writer.model``) and a suggestion.
"""

from __future__ import annotations

import difflib
import heapq
import re
from typing import TYPE_CHECKING, Any

from ..core.errors import WeaveSpecError
from .yaml_loader import dotted as _dotted
from .yaml_loader import load_yaml

if TYPE_CHECKING:
    from .model import AgentSpec, WeaveDef

SUPPORTED_VERSIONS = ("1.0",)

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ENV_REF_RE = re.compile(r"\$\{([^}]*)\}")
ENV_BODY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.S)
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")

_TOP_KEYS = ("version", "agents", "weaves", "env", "deployment")
_AGENT_KEYS = ("model", "tools", "inputs", "outputs", "config", "prompt")
_WEAVE_KEYS = ("description", "agents")
_NUMBER_CONFIG = ("temperature", "top_p")


def validate(text: str, source: str, agent_cls: type, weave_cls: type) -> dict[str, Any]:
    """Parse and check weave-file text.

    Args:
        text: YAML text.
        source: name used in messages (a path or ``"<string>"``).
        agent_cls: class built for each agent (``AgentSpec``).
        weave_cls: class built for each weave (``WeaveDef``).

    Returns:
        ``{"version", "agents", "weaves", "env", "deployment", "_orders"}``,
        the keyword arguments of ``WeaveSpec`` except ``source``.

    Raises:
        WeaveSpecError: on the first problem found.
    """
    data, marks = load_yaml(text, source)
    return _Validator(source, marks, agent_cls, weave_cls).spec(data)


# --------------------------------------------------------------------------- validation


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string",
            list: "list", dict: "mapping"}.get(type(value), type(value).__name__)


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def choices_hint(name: str, choices, what: str) -> str:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    known = ", ".join(choices) or "none"
    if close:
        return f"Did you mean {close[0]!r}? Known {what}: {known}."
    return f"Known {what}: {known}."


class _Validator:
    """Turns loaded YAML data into a WeaveSpec, raising on the first problem."""

    def __init__(self, source: str, marks: dict[tuple, tuple[int, int]], agent_cls: type, weave_cls: type) -> None:
        self.source = source
        self.marks = marks
        self.agent_cls = agent_cls
        self.weave_cls = weave_cls

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
            shown = "" if path[:1] == ("env",) else " " + _short_repr(value)  # env may hold secrets
            raise self.fail(path, f"{_dotted(path)} must be {wanted}, got {_type_name(value)}{shown}.",
                            f"Write {_dotted(path)} as {wanted}.")
        return value

    def known_keys(self, path: tuple, data: dict, allowed: tuple) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(path + (key,), f"unknown field {key!r} in {_dotted(path)}.",
                                choices_hint(str(key), allowed, "fields"))

    def name(self, path: tuple, value: Any, what: str) -> str:
        self.expect(path, value, (str,), "a string")
        if not NAME_RE.match(value):
            raise self.fail(path, f"invalid {what} name {value!r}.",
                            "Use letters, digits, '_' or '-', starting with a letter or '_' (max 64).")
        return value

    def spec(self, data: Any) -> dict[str, Any]:
        if data is None:
            raise self.fail((), "the file is empty.", "Start from one of the examples in examples/.")
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
        return {"version": version, "agents": agents, "weaves": weaves, "env": env,
                "deployment": dict(deployment), "_orders": orders}

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
                raise self.fail(path + ("model",), f"{_dotted(path + ('model',))} is empty.",
                                "Name a model, e.g. gpt-4.")
            agents[name] = self.agent_cls(
                name=name,
                model=model.strip(),
                tools=self.str_list(path + ("tools",), body.get("tools")),
                inputs=self.str_list(path + ("inputs",), body.get("inputs")),
                outputs=self.outputs(path + ("outputs",), body.get("outputs"), name),
                config=self.config(path + ("config",), body.get("config")),
                prompt=self.prompt(path + ("prompt",), body.get("prompt")),
            )
        for agent in agents.values():
            for dep in agent.inputs:
                if dep not in agents:
                    raise self.fail(("agents", agent.name, "inputs"),
                                    f"agent {agent.name!r} takes inputs from unknown agent {dep!r}.",
                                    choices_hint(dep, agents, "agents"))
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
        self.plain(path, value)
        return dict(value)

    def plain(self, path: tuple, value: Any) -> None:
        """Check that ``value`` holds only what JSON can carry (YAML also makes dates, bytes, sets)."""
        todo = [(path, value)]
        while todo:
            where, item = todo.pop()
            if isinstance(item, dict):
                todo.extend((where + (str(k),), v) for k, v in item.items())
            elif isinstance(item, list):
                todo.extend((where + (i,), v) for i, v in enumerate(item))
            elif item is not None and not isinstance(item, (str, int, float, bool)):
                raise self.fail(where, f"{_dotted(where)} must be text, a number, true/false, a list or a mapping, "
                                       f"got {_type_name(item)} {_short_repr(item)}.",
                                "Quote the value to keep it as text, e.g. \"2024-01-01\".")

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
                seen: set = set()
                dup = next(a for a in raw if a in seen or seen.add(a))
                raise self.fail(path + ("agents",), f"weave {name!r} lists agent {dup!r} twice.",
                                "List each agent once.")
            member_set = set(members)
            for member in members:
                if member not in agents:
                    raise self.fail(path + ("agents",), f"weave {name!r} uses unknown agent {member!r}.",
                                    choices_hint(member, agents, "agents"))
            for member in members:
                for dep in agents[member].inputs:
                    if dep not in member_set:
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
            weaves[name] = self.weave_cls(name=name, description=description, agents=members)
        return weaves

    def env(self, data: Any) -> dict[str, str]:
        if data is None:
            return {}
        self.expect(("env",), data, (dict,), "a mapping of NAME to value")
        env: dict[str, str] = {}
        for key, value in data.items():
            path = ("env", key)
            if not isinstance(key, str) or not ENV_NAME_RE.match(key):
                raise self.fail(path, f"invalid env name {key!r}.",
                                "Use letters, digits and '_' (e.g. OPENAI_API_KEY).")
            self.expect(path, value, (str, int, float), "a string (quote it)")
            value = str(value)
            for ref in ENV_REF_RE.findall(value.replace("$${", "")):
                if not ENV_BODY_RE.match(ref):
                    raise self.fail(path, f"env.{key} has a malformed reference ${{{ref}}}.",
                                    "Write ${NAME} or ${NAME:-default}.")
            env[key] = value
        return env

    def check_cycles(self, agents: dict[str, AgentSpec]) -> None:
        """Depth-first search with an explicit stack (a 10,000-agent chain must not hit the recursion limit)."""
        state: dict[str, int] = {}  # 1 = on the path, 2 = done
        for root in agents:
            if root in state:
                continue
            state[root] = 1
            path = [root]
            todo = [iter(agents[root].inputs)]
            while todo:
                dep = next(todo[-1], None)
                if dep is None:
                    todo.pop()
                    state[path.pop()] = 2
                elif state.get(dep) == 1:
                    cycle = path[path.index(dep):] + [dep]
                    if len(cycle) > 12:  # keep the message one readable line
                        cycle = cycle[:5] + [f"... ({len(cycle) - 10} more)"] + cycle[-5:]
                    raise self.fail(("agents", dep, "inputs"),
                                    f"dependency cycle between agents: {' -> '.join(cycle)}.",
                                    "Remove one of these 'inputs' so the agents can run in order.")
                elif dep not in state:
                    state[dep] = 1
                    path.append(dep)
                    todo.append(iter(agents[dep].inputs))

    def check_prompts(self, agents: dict[str, AgentSpec]) -> None:
        for agent in agents.values():
            if agent.prompt is None:
                continue
            allowed = {"input"} | set(agent.inputs) | {agents[d].outputs for d in agent.inputs}
            for ref in PLACEHOLDER_RE.findall(agent.prompt):
                if ref not in allowed:
                    raise self.fail(("agents", agent.name, "prompt"),
                                    f"agents.{agent.name}.prompt uses unknown placeholder {{{ref}}}.",
                                    f"Use {{input}} or an output of the agents in its inputs: "
                                    f"{', '.join(sorted(allowed))}.")


def _topological(members: tuple[str, ...], agents: dict[str, AgentSpec]) -> list[str]:
    """Kahn's algorithm; among ready agents the one listed first in the weave goes first.

    O((agents + inputs) log agents): a heap of ready agents keyed by list position.
    """
    position = {m: i for i, m in enumerate(members)}
    waiting = {m: len(agents[m].inputs) for m in members}
    users: dict[str, list[str]] = {m: [] for m in members}
    for m in members:
        for dep in agents[m].inputs:
            users[dep].append(m)
    ready = [position[m] for m in members if not waiting[m]]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = members[heapq.heappop(ready)]
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if not waiting[user]:
                heapq.heappush(ready, position[user])
    return order
