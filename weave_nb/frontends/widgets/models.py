"""The widgets' models: ``HasTraits`` classes holding values, validation and state (no ipywidgets here).

A view links its widgets to a model's traits; everything a form decides
(is the input valid? why not? is a deploy running? what came of it?) lives
here and is tested without a browser.
"""

from __future__ import annotations

import contextvars
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Mapping

from traitlets import Any as AnyTrait
from traitlets import Bool, CaselessStrEnum, HasTraits, List, Unicode, observe

from ...core.config import ENV_NAME, NAME_PATTERN
STATES = ["idle", "planning", "deploying", "done", "failed"]


def run_in_thread(fn: Callable[[], Any], name: str = "weave-worker") -> tuple[Future, threading.Thread]:
    """Run ``fn`` on a new daemon thread (in a copy of the caller's context).

    Returns:
        ``(future, thread)``: the future holds ``fn``'s result or exception.
    """
    future: Future = Future()
    context = contextvars.copy_context()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(context.run(fn))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            future.set_exception(exc)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    return future, thread


def parse_env_text(text: str, environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """Parse ``KEY=VALUE`` lines (blank lines and ``#`` comments ignored).

    A bare ``KEY`` takes its value from the kernel's environment, so a secret
    never has to be typed into the form (or saved with its widget state).

    Args:
        text: the lines.
        environ: where bare names are looked up (default ``os.environ``).

    Returns:
        ``(env, problems)``; problems never quote a value.
    """
    environ = os.environ if environ is None else environ
    env: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not ENV_NAME.match(key):
            problems.append(f"environment line {number}: the name must be letters, digits and '_' (NAME=value)")
        elif not sep:
            if key in environ:
                env[key] = environ[key]
            else:
                # never echo the line: a secret pasted alone looks like a name
                problems.append(f"environment line {number}: a bare NAME must be set in the kernel's environment "
                                "(or write NAME=value)")
        else:
            env[key] = value
    return env, problems


def _optional_int(text: str, label: str, low: int, high: int, problems: list[str]) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        problems.append(f"{label} must be a whole number")
        return None
    if not low <= value <= high:
        problems.append(f"{label} must be between {low} and {high}")
    return value


class DeployFormModel(HasTraits):
    """The deploy form's values and state.

    ``problems`` lists what is wrong with the input, ``valid`` is true when it
    is empty, and ``reason`` is the first problem (what the form shows next to
    a disabled Deploy button). ``can_deploy`` is ``valid and not busy``.

    Args:
        providers: the provider names the form offers.
        environ: where bare environment names are looked up (default ``os.environ``).
        **values: initial trait values.
    """

    weave_file = Unicode("", help="path of the .weave.yaml (or leave empty and fill weave_text)")
    weave_text = Unicode("", help="the weave YAML itself")
    name = Unicode("")
    provider = Unicode("", help="empty: the weave file's deployment.provider, else local")
    providers = List(Unicode(), default_value=["local"])
    region = Unicode("")
    memory_mb = Unicode("", help="MB, empty for the default")
    timeout_seconds = Unicode("", help="seconds, empty for the default")
    env_text = Unicode("", help="KEY=VALUE lines; values are secret")
    public = Bool(False)

    problems = List(Unicode())
    valid = Bool(False)
    reason = Unicode("")
    busy = Bool(False)
    can_deploy = Bool(False)
    state = CaselessStrEnum(STATES, "idle")
    message = Unicode("")
    result = AnyTrait(None, allow_none=True)

    def __init__(self, providers: list[str] | None = None, environ: Mapping[str, str] | None = None, **values: Any) -> None:
        self.environ = os.environ if environ is None else environ
        super().__init__(**values)
        if providers:
            self.providers = list(providers)
        self.validate()

    @observe("weave_file", "weave_text", "name", "provider", "providers", "region", "memory_mb", "timeout_seconds", "env_text", "public", "busy")
    def _changed(self, change: Any) -> None:
        self.validate()

    def validate(self) -> list[str]:
        """Check every value and update ``problems``, ``valid``, ``reason`` and ``can_deploy``.

        Returns:
            The problems (empty when the input is valid).
        """
        problems: list[str] = []
        if not self.name.strip():
            problems.append("give the deployment a name")
        elif not NAME_PATTERN.match(self.name.strip()):
            problems.append("the name must start with a letter and hold only letters, digits, '-' or '_'")
        if self.provider and self.provider not in self.providers:
            problems.append(f"unknown provider {self.provider!r}; choose one of {', '.join(self.providers)}")
        if self.weave_text.strip() and self.weave_file.strip():
            problems.append("give the weave either as a file or as text, not both")
        elif not self.weave_text.strip() and not self.weave_file.strip():
            problems.append("choose a weave file or paste the weave")
        elif self.weave_file.strip() and not Path(self.weave_file.strip()).expanduser().is_file():
            problems.append(f"no such weave file: {self.weave_file.strip()}")
        _optional_int(self.memory_mb, "memory", 1, 65536, problems)
        _optional_int(self.timeout_seconds, "timeout", 1, 86400, problems)
        problems.extend(parse_env_text(self.env_text, self.environ)[1])
        self.problems = problems
        self.valid = not problems
        self.reason = problems[0] if problems else ""
        self.can_deploy = self.valid and not self.busy
        return problems

    def values(self) -> dict[str, Any]:
        """The form as DeploymentConfig values for the manager (``None`` = not given).

        Raises:
            ValueError: the input is not valid (check ``problems`` first).
        """
        if self.validate():
            raise ValueError(self.reason)
        scratch: list[str] = []
        values: dict[str, Any] = {
            "name": self.name.strip(),
            "provider": self.provider or None,
            "region": self.region.strip() or None,
            "memory_mb": _optional_int(self.memory_mb, "memory", 1, 65536, scratch),
            "timeout_seconds": _optional_int(self.timeout_seconds, "timeout", 1, 86400, scratch),
            "public": self.public or None,
            "env": parse_env_text(self.env_text, self.environ)[0] or None,
        }
        if self.weave_text.strip():
            values["weave_text"] = self.weave_text
        else:
            values["weave_file"] = self.weave_file.strip()
        return values


class BoardModel(HasTraits):
    """The deployments board's state: rows, selection, pending confirmation, results.

    ``rows`` are ``DeploymentInfo.row()`` dicts, newest first; ``selected``
    is ``"provider/name"`` or empty; ``confirming`` is the key awaiting an
    undeploy confirmation.
    """

    provider = Unicode("", help="only this provider (empty: all)")
    rows = List()
    notes = List(Unicode())
    selected = Unicode("")
    confirming = Unicode("")
    invoke_input = Unicode("")
    busy = Bool(False)
    message = Unicode("")
    last_result = AnyTrait(None, allow_none=True)
    can_act = Bool(False)

    @observe("selected", "busy", "rows")
    def _changed(self, change: Any) -> None:
        keys = {self.key(r) for r in self.rows}
        if self.selected and self.selected not in keys:
            self.selected = ""
            return
        self.can_act = bool(self.selected) and not self.busy
        if self.confirming and self.confirming != self.selected:
            self.confirming = ""

    @staticmethod
    def key(row: dict[str, Any]) -> str:
        """The ``provider/name`` key of a row."""
        return f"{row['provider']}/{row['name']}"

    def selection(self) -> tuple[str, str] | None:
        """``(provider, name)`` of the selected row, or ``None``."""
        if not self.selected:
            return None
        provider, _, name = self.selected.partition("/")
        return provider, name

    def labels(self) -> list[tuple[str, str]]:
        """``(label, key)`` pairs for the row picker: ``name [provider]``, one per row (the table shows the rest)."""
        return [(f"{row['name']} [{row['provider']}]", self.key(row)) for row in self.rows]
