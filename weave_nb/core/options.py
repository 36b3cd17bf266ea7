"""Provider options, read from each provider's ``options_model`` (a pydantic model).

One source for every front end: the help lists each provider's options
from its model's fields and descriptions (so a plug-in provider's options
show up too), and a bad option is reported in plain words with a "did you
mean" instead of pydantic's wording.
"""

from __future__ import annotations

import difflib
import re
import typing
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, ValidationError

_ATTRIBUTE = re.compile(r"^\s{4,}(\w+):\s*(.+)$")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _docstring_attributes(model: type[BaseModel]) -> dict[str, str]:
    """``name: text`` lines of the model docstring's ``Attributes:`` section."""
    out: dict[str, str] = {}
    inside = False
    for line in (model.__doc__ or "").splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if inside:
            found = _ATTRIBUTE.match(line)
            if found:
                out[found.group(1)] = found.group(2).strip()
            elif line.strip() and not line.startswith(" " * 8):
                inside = False
    return out


def _type_name(annotation: Any) -> str:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return "|".join(str(a) for a in args)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return _type_name(rest[0]) if len(rest) == 1 else "|".join(_type_name(a) for a in rest)
    if typing.get_origin(annotation) in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    return getattr(annotation, "__name__", str(annotation))


def option_fields(model: type[BaseModel]) -> list[tuple[str, str, str]]:
    """``(name, type, description)`` of each option a model takes, in declaration order.

    The description is the field's ``description``, else its line in the
    model docstring's ``Attributes:`` section, plus its default.
    """
    documented = _docstring_attributes(model)
    out = []
    for name, info in model.model_fields.items():
        text = (info.description or documented.get(name, "")).replace("``", "").rstrip(".")
        if info.default_factory is None and info.default not in (None, "", [], False) and "default" not in text:
            text = f"{text} (default {info.default})" if text else f"default {info.default}"
        out.append((name, _type_name(info.annotation), text))
    return out


def options_help(models: Mapping[str, type[BaseModel] | None], width: int = 24) -> str:
    """The text listing every provider's options (for ``--help``).

    Args:
        models: provider name -> its options model (``None``: the provider could not be loaded).
        width: column of the descriptions.
    """
    lines = ["provider options (--option KEY=VALUE, repeatable):"]
    for provider, model in models.items():
        if model is None:
            lines.append(f"  {provider}: (not installed)")
            continue
        fields = option_fields(model)
        if not fields:
            lines.append(f"  {provider}: (none)")
            continue
        lines.append(f"  {provider}:")
        for name, kind, text in fields:
            head = f"    {name}={kind}"
            lines.append(f"{head:<{width + 4}} {text}".rstrip() if len(head) < width + 4 else f"{head}\n{'':<{width + 4}} {text}".rstrip())
    return "\n".join(lines)


def plain_words(msg: str) -> str:
    """pydantic's wording, in plain words."""
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = msg.split(", unable to")[0]
    for old, new in (("Input should be", "must be"), ("String should", "must"), ("Value should", "must"),
                     ("List should", "must"), ("Field required", "is required")):
        msg = msg.replace(old, new)
    return msg


# deployment settings people pass as --option by mistake, and the flag that sets each
SETTING_FLAGS = {"name": "--name", "provider": "--provider", "type": "--type", "region": "--region",
                 "memory_mb": "--memory", "timeout_seconds": "--timeout", "env": "--env", "public": "--public",
                 "host": "--host", "port": "--port"}


def _a_setting(word: str) -> str:
    """``" (did you mean the setting 'memory_mb'? pass --memory)"`` when ``word`` is close to a deployment setting."""
    close = difflib.get_close_matches(word, list(SETTING_FLAGS), n=1, cutoff=0.6)
    if not close:
        return ""
    if close[0] == word:
        return f" ({word!r} is a deployment setting, not a provider option: pass {SETTING_FLAGS[word]})"
    return f" (did you mean the setting {close[0]!r}? pass {SETTING_FLAGS[close[0]]})"


def describe_option_errors(exc: ValidationError, model: type[BaseModel], provider: str) -> tuple[str, str]:
    """A ValidationError from an options model as ``(message, suggestion)`` in plain words.

    Never echoes the values given (an option may hold a secret).
    """
    known = list(model.model_fields)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "value"
        if err.get("type") == "extra_forbidden":
            parts.append(f"unknown option {where!r}{did_you_mean(where, known) or _a_setting(where)}")
        elif err.get("type") == "missing":
            parts.append(f"option {where!r} is required")
        else:
            text = plain_words(err.get("msg", "is invalid"))
            parts.append(f"{where} {text}" if text.startswith(("must ", "is ")) else f"{where}: {text}")
    listed = ", ".join(known) if known else "none"
    suggestion = f"the {provider} options are: {listed}; `weave deploy --help` describes them"
    return f"invalid {provider} options: " + "; ".join(parts), suggestion
