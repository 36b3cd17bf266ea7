"""Validation of weave files: YAML with positions, then field-by-field checks.

Private to :mod:`weave_nb.spec`, which turns the parts returned by
:func:`validate` into its public dataclasses. Every problem is raised as a
:class:`~weave_nb.errors.WeaveSpecError` naming the file, the line where
known, the field path (``agents.writer.model``) and a suggestion.
"""

from __future__ import annotations

import difflib
import heapq
import re
from typing import TYPE_CHECKING, Any

import yaml

from .errors import WeaveSpecError

if TYPE_CHECKING:
    from .spec import AgentSpec, WeaveDef

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


# --------------------------------------------------------------------------- YAML


# Bounds on what a weave file may expand to. The file itself is at most
# MAX_WEAVE_BYTES (checked before reading); aliases (``*name``) may reuse a
# node many times, so the expanded size is bounded separately: without it a
# 600-byte "billion laughs" file expands to gigabytes when it is compiled.
MAX_WEAVE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
MAX_EXPANDED_CHARS = 8 * 1024 * 1024


try:
    from yaml.cyaml import CParser as _CParser
except ImportError:  # PyYAML built without libyaml
    _CParser = None

if _CParser is not None:

    class _Loader(_CParser, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):  # type: ignore[misc]
        """libyaml's scanner and parser (about 4x faster on a 20,000-agent file) with PyYAML's composer.

        Not ``CSafeLoader``: its composer recurses in C and crashes the
        process (SIGSEGV) on a line of 100,000 ``[``; the Python composer
        raises RecursionError instead, which is reported as "nested too deeply".
        """

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            yaml.constructor.SafeConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)
            self.anchors = {}

        check_node = yaml.composer.Composer.check_node
        get_node = yaml.composer.Composer.get_node
        get_single_node = yaml.composer.Composer.get_single_node
        compose_document = yaml.composer.Composer.compose_document
        compose_node = yaml.composer.Composer.compose_node
        compose_scalar_node = yaml.composer.Composer.compose_scalar_node
        compose_sequence_node = yaml.composer.Composer.compose_sequence_node
        compose_mapping_node = yaml.composer.Composer.compose_mapping_node

else:
    _Loader = yaml.SafeLoader  # type: ignore[misc,assignment]


def check_expansion(root: yaml.Node, source: str) -> None:
    """Reject a node graph whose aliases expand past :data:`MAX_EXPANDED_NODES` / :data:`MAX_EXPANDED_CHARS`.

    Composing YAML shares an aliased node instead of copying it, so the graph
    stays small while its expansion (what ``json.dumps`` of the weave writes)
    may be astronomically large. Each node's expanded size is computed once,
    bottom-up, without recursion: linear in the size of the file. An alias
    inside the node it names (a recursive structure) is rejected too.

    Raises:
        WeaveSpecError: naming the line of the node that grows too big.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values, characters), aliases expanded
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    active: set[int] = set()
    while todo:
        node, children_done = todo.pop()
        key = id(node)
        if key in sizes:  # an alias pushed twice before it was measured
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[key] = (1, len(node.value))
            continue
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value
        if not children_done:
            active.add(key)
            todo.append((node, True))
            for child in children:
                if id(child) in active:
                    raise WeaveSpecError(
                        f"{source}, line {child.start_mark.line + 1}: a YAML alias refers to the value that "
                        f"contains it (a recursive alias).",
                        "Write the value out instead of referring to itself.",
                    )
                if id(child) not in sizes:  # else an alias of a value already measured
                    todo.append((child, False))
            continue
        active.discard(key)
        values, chars = 1, 0
        for child in children:
            v, c = sizes[id(child)]
            values += v
            chars += c
        sizes[key] = (values, chars)
        if values > MAX_EXPANDED_NODES or chars > MAX_EXPANDED_CHARS:
            raise WeaveSpecError(
                f"{source}, line {node.start_mark.line + 1}: with its YAML aliases (*name) expanded, this value "
                f"would hold more than {MAX_EXPANDED_NODES:,} values or {MAX_EXPANDED_CHARS // (1024 * 1024)} MiB "
                f"of text (an alias bomb?).",
                "Use aliases only to reuse small values; write large values out once.",
            )


def check_text_size(text: str, source: str) -> None:
    """Reject weave text larger than :data:`MAX_WEAVE_BYTES` (UTF-8 encoded)."""
    if len(text) > MAX_WEAVE_BYTES or (len(text) * 4 > MAX_WEAVE_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_WEAVE_BYTES):
        raise WeaveSpecError(
            f"{source} is larger than {MAX_WEAVE_BYTES // 1024} KiB, the limit for a weave file.",
            "A weave describes agents, not data: move large prompts or data out of the file.",
        )


def load_yaml(text: str, source: str) -> tuple[Any, dict[tuple, tuple[int, int]]]:
    """Load YAML, keeping ``path -> (line, column)`` (1-based) for messages.

    Raises:
        WeaveSpecError: text over :data:`MAX_WEAVE_BYTES`, a character YAML
            does not allow (such as NUL), a syntax error, nesting too deep, or
            aliases expanding past :data:`MAX_EXPANDED_NODES` values /
            :data:`MAX_EXPANDED_CHARS` characters.
    """
    check_text_size(text, source)
    loader = None
    try:
        loader = _Loader(text)  # the reader checks every character here
        node = loader.get_single_node()
        marks: dict[tuple, tuple[int, int]] = {}
        if node is not None:
            check_expansion(node, source)
            _collect_marks(node, (), marks, source, set())
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:
        raise WeaveSpecError(f"{source} is nested too deeply to be a weave file.",
                             "Check the indentation of the file.") from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise WeaveSpecError(
            f"YAML syntax error in {source}{where}: {problem}.",
            "Fix the YAML syntax; check indentation and quoting near that line.",
        ) from None
    except yaml.YAMLError as exc:
        raise WeaveSpecError(f"Cannot parse {source} as YAML: {' '.join(str(exc).split())}.",
                             "Fix the YAML syntax.") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, marks


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str) -> WeaveSpecError:
    """A character YAML does not accept (NUL, other control characters): say which and where."""
    pos = exc.position if isinstance(exc.position, int) else 0
    if _Loader is not yaml.SafeLoader:  # libyaml counts UTF-8 bytes, the Python reader characters
        text = text.encode("utf-8", "surrogatepass")[:pos].decode("utf-8", "replace")
        pos = len(text)
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or b"\0")
    name = "a NUL byte" if char == 0 else f"the character U+{char:04X}"
    return WeaveSpecError(
        f"{source} contains {name} at line {line}, column {column}, which YAML does not allow.",
        "Remove it: a weave file is plain UTF-8 text (NUL bytes often mean a binary or UTF-16 file).",
    )


def _collect_marks(node: yaml.Node, path: tuple, marks: dict, source: str, visited: set) -> None:
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if id(node) in visited:  # an alias: walked once already (and no alias bombs)
        return
    visited.add(id(node))
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
            _collect_marks(value_node, path + (key,), marks, source, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_marks(item, path + (i,), marks, source, visited)


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
