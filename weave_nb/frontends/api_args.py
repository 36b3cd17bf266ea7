"""Checks of the Python API's arguments: a wrong type is a ConfigError with a hint, never a raw exception.

Private to :mod:`weave_nb.frontends.api`. Each function returns the value to use
(normalised where that is harmless, e.g. a ``Path`` becomes ``str``) or
raises :class:`~weave_nb.core.errors.ConfigError` before anything is created.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..core.config import check_provider_name
from ..core.errors import ConfigError


def _type(value: Any) -> str:
    return type(value).__name__


def mapping(value: Any, what: str, example: str) -> dict[str, Any] | None:
    """``value`` as a dict with string keys, or ``None``.

    Raises:
        ConfigError: not a mapping, or a key is not a string.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{what} must be a mapping (a dict), got {_type(value)}", f"write it as {example}")
    for key in value:
        if not isinstance(key, str):
            raise ConfigError(f"{what} keys must be strings, got {_type(key)} {key!r:.40}", f"write it as {example}")
    return dict(value)


def provider(value: Any) -> str | None:
    """An optional provider name (``None``: the default or the recorded one)."""
    return None if value is None else check_provider_name(value)


def flag(value: Any, what: str) -> bool:
    """A true/false argument; ``1`` or ``"yes"`` are refused so a typo never flips a default."""
    if not isinstance(value, bool):
        raise ConfigError(f"{what} must be True or False, got {_type(value)} {value!r:.40}", f"pass {what}=True or {what}=False")
    return value


def deploy_args(provider_name: Any, weave_file: Any, weave_text: Any, env: Any, options: Any, defaults: Any,
                sink: Any = None, dry_run: Any = False) -> dict[str, Any]:
    """Check :func:`weave_nb.deploy` / :func:`weave_nb.plan` arguments.

    Returns:
        ``{"provider", "weave_file", "env", "options", "defaults"}``, checked
        (``weave_file`` as ``str``).

    Raises:
        ConfigError: an argument has the wrong type.
    """
    if weave_file is not None and not isinstance(weave_file, (str, os.PathLike)):
        raise ConfigError(f"weave_file must be a path (str or pathlib.Path), got {_type(weave_file)}",
                          'pass e.g. weave_file="app.weave.yaml"')
    if weave_text is not None and not isinstance(weave_text, str):
        raise ConfigError(f"weave_text must be the YAML text (str), got {_type(weave_text)}",
                          "pass the file's text, e.g. weave_text=Path('app.weave.yaml').read_text()")
    if weave_file is not None and weave_text is not None:
        raise ConfigError("give weave_file or weave_text, not both", "drop one of them")
    if sink is not None and not callable(sink):
        raise ConfigError(f"sink must be a function taking one event, got {_type(sink)}",
                          "pass e.g. sink=print, or leave it out to print progress lines")
    flag(dry_run, "dry_run")
    env_map = mapping(env, "env", 'env={"OPENAI_API_KEY": "..."}')
    for key, val in (env_map or {}).items():
        if not isinstance(val, str):  # never echo the value: it may be a secret
            raise ConfigError(f"env[{key!r}] must be a string, got {_type(val)}", f'write it as env={{"{key}": "..."}} (quote numbers)')
    return {
        "provider": provider(provider_name),
        "weave_file": os.fspath(weave_file) if weave_file is not None else None,
        "env": env_map,
        "options": mapping(options, "options", 'options={"runtime": "python3.12"}'),
        "defaults": mapping(defaults, "defaults", 'defaults={"region": "us-east-1"}'),
    }


def status_filter(value: Any) -> str | None:
    """An optional status to filter on, lower-cased; one of :class:`DeploymentStatus`."""
    from ..core.listing import check_status

    return check_status(value)


def invoke_args(text: Any, weave: Any, options: Mapping[str, Any]) -> None:
    """Check :func:`weave_nb.invoke` arguments (``options``: its extra keywords)."""
    if not isinstance(text, str):
        raise ConfigError(f"input must be a string, got {_type(text)}", "pass the text, e.g. input=\"hello\" (json.dumps data first)")
    if weave is not None and not isinstance(weave, str):
        raise ConfigError(f"weave must be a weave's name (str), got {_type(weave)}", "pass e.g. weave=\"main\", or leave it out")
    unknown = sorted(set(options) - {"local", "timeout"})
    if unknown:
        raise ConfigError(f"unknown argument(s) {', '.join(unknown)} for invoke", "invoke takes input, provider, weave, local and timeout")
    if "local" in options:
        flag(options["local"], "local")
    timeout = options.get("timeout", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 3600:
        raise ConfigError(f"timeout must be a number of seconds between 0 and 3600, got {timeout!r:.40}", "pass e.g. timeout=60")


def tail(value: Any) -> int:
    """How many log lines: a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"tail must be a positive whole number of lines, got {value!r:.40}", "pass e.g. tail=100")
    return value
