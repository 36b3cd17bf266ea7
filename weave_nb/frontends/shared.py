"""The front-end core: what the CLI, the magics, the widgets and the Python API share.

- :func:`classify`: the one error classifier (which failure is a user mistake,
  which exit code, what message and hint);
- :func:`invoke_payload`: the request body of a weave call (input, weave, JSON);
- :func:`provider_options_help`: every provider's options, from its options model.

Provider resolution (``DeploymentManager.provider_of``) and the status rule
(:func:`weave_nb.core.listing.effective_status`) live in the core; the presenters
in :mod:`weave_nb.core.present` and :mod:`weave_nb.frontends.render`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..core.errors import ConfigError, CredentialsError, InventoryError, NotFound, ProviderUnavailable, WeaveError, WeaveSpecError
from ..core.present import error_text, with_hint

USAGE_ERRORS = (ConfigError, WeaveSpecError, ProviderUnavailable, CredentialsError, InventoryError)


@dataclass(frozen=True)
class Verdict:
    """How a front end shows one failure.

    Attributes:
        kind: ``usage`` (bad input, nothing was created), ``not_found`` (no such
            deployment), ``failed`` (the operation failed), ``interrupted``
            (Ctrl-C) or ``unexpected`` (a bug or an unexpected library error).
        exit_code: the CLI's exit code (2 for usage errors, 130 after Ctrl-C, else 1).
        message: what went wrong.
        suggestion: what to do about it, or ``None``.
    """

    kind: str
    exit_code: int
    message: str
    suggestion: str | None

    @property
    def user_mistake(self) -> bool:
        """True for bad input or an unknown name: the magics show it as a ``UsageError``."""
        return self.kind in ("usage", "not_found")

    def text(self) -> str:
        """The failure as printed: ``error: ...`` and its hint (``interrupted: ...`` after Ctrl-C)."""
        if self.kind == "interrupted":
            return f"interrupted: {self.suggestion}"
        return error_text(self.message, self.suggestion)

    def plain(self) -> str:
        """The message and its hint, without the ``error:`` prefix (what a UsageError carries)."""
        return with_hint(self.message, self.suggestion)


def classify(exc: BaseException, verbose: bool | None = None, undeploy: str = "undeploy", changes: bool = True) -> Verdict:
    """Decide how every front end shows ``exc``.

    Args:
        exc: the failure.
        verbose: whether the command was run with ``--verbose`` (``None``: the
            command has no such flag); picks the hint of an unexpected error.
        undeploy: how this front end spells undeploy (``%weave_undeploy`` in the magics).
        changes: whether the command changes deployments (deploy, undeploy); an
            interrupted read-only command only says that nothing was changed.

    Returns:
        The :class:`Verdict`.
    """
    if isinstance(exc, USAGE_ERRORS):
        return Verdict("usage", 2, exc.message, exc.suggestion)
    if isinstance(exc, NotFound):
        return Verdict("not_found", 1, exc.message, exc.suggestion)
    if isinstance(exc, WeaveError):
        return Verdict("failed", 1, exc.message, exc.suggestion)
    if isinstance(exc, KeyboardInterrupt):
        if not changes:
            return Verdict("interrupted", 130, "interrupted", "stopped before it finished; nothing was changed")
        return Verdict("interrupted", 130, "interrupted",
                       f"run the same command again to finish, or {undeploy} to clean up what was made")
    hint = "run again with --verbose for the traceback" if verbose is False else "this is a bug; please report it"
    return Verdict("unexpected", 1, f"unexpected {type(exc).__name__}: {exc}", hint)


def invoke_payload(text: str | None = "", weave: str | None = None, data: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The request body of a weave call.

    Args:
        text: the input text (``--input``); given, it replaces ``data``'s ``input``.
        weave: which weave of the file to run (``--weave``); given, it replaces ``data``'s ``weave``.
        data: the whole body as a JSON object, text or mapping (``--json``).

    Returns:
        ``{"input": ..., "weave": ...}`` plus any other field of ``data``.

    Raises:
        ConfigError: ``data`` is not a JSON object.
    """
    payload: dict[str, Any] = {}
    if data is not None and data != "":
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise ConfigError(
                    f"--json is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
                    """pass one JSON object, e.g. --json '{"input": "hello"}'""",
                ) from None
        if not isinstance(data, Mapping):
            raise ConfigError("--json must be a JSON object", """pass one JSON object, e.g. --json '{"input": "hello"}'""")
        payload.update(data)
    if text or "input" not in payload:
        payload["input"] = text or ""
    if weave:
        payload["weave"] = weave
    return payload


def provider_options_help(names: Iterable[str] | None = None) -> str:
    """Every provider's options, from each provider's ``options_model`` (plug-ins included).

    Imports each provider's module, so it is meant for ``--help`` only; a
    provider whose extra is not installed is listed as such.
    """
    from ..core.options import options_help
    from ..core.registry import load_provider_class, provider_names

    models: dict[str, Any] = {}
    for name in names or provider_names():
        try:
            models[name] = load_provider_class(name).options_model
        except WeaveError:
            models[name] = None
    return options_help(models)
