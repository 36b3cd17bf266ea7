"""Weave-file YAML: loaded with positions, bounded in size, expansion and nesting.

Private to :mod:`weave_nb.spec.model` (through :mod:`weave_nb.spec.validator`).
:func:`load_yaml` returns the data and ``path -> (line, column)`` for
messages, or raises :class:`~weave_nb.core.errors.WeaveSpecError` naming the
source and place: text over 1 MiB, a character YAML refuses (NUL...), a
syntax error, nesting too deep, duplicate keys, or aliases that would
expand past the limits (a "billion laughs").
"""

from __future__ import annotations

from typing import Any

import yaml

from ..core.errors import WeaveSpecError

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
                    + (f" (under {dotted(path)})" if path else "") + ".",
                    "Each key may appear once; rename or merge the duplicates.",
                )
            seen.add(key)
            _collect_marks(value_node, path + (key,), marks, source, visited)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_marks(item, path + (i,), marks, source, visited)


def dotted(path: tuple) -> str:
    """A field path for messages: ``("agents", "w", "inputs", 0)`` -> ``agents.w.inputs[0]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"
