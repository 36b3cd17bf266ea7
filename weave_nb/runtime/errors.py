"""Errors of the weave runtime (standard library only).

The runtime cannot import ``weave_nb``, so it has its own two exceptions:
:class:`RequestError` carries the HTTP status a caller should see, and
:class:`ModelError` reports a model backend failure. Messages never hold
secrets; :func:`scrub` removes them from text that came from elsewhere.
"""

from __future__ import annotations

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")


class RequestError(Exception):
    """A request the runtime refuses, with the HTTP status to answer.

    Args:
        status: HTTP status code (400, 404, 405, ...).
        message: a plain message, safe to send to the caller.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class ModelError(Exception):
    """A model backend failed (rejected key, HTTP error, bad response).

    Args:
        message: what went wrong; never contains an API key.
        status: the upstream HTTP status, if there was one.
        retryable: whether the failure was transient (after retries ran out).
    """

    def __init__(self, message: str, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retryable = retryable


def secret_values(environ, names=()) -> list[str]:
    """Values to hide: env vars that look secret, plus the ones named.

    Args:
        environ: the environment mapping.
        names: extra variable names whose values must be hidden (e.g. the
            spec's ``env_keys``).

    Returns:
        Non-trivial values (4+ characters), longest first.
    """
    found = set()
    for key, value in environ.items():
        upper = key.upper()
        if key in names or any(word in upper for word in _SECRET_WORDS):
            if value and len(value) >= 4:
                found.add(value)
    return sorted(found, key=len, reverse=True)


def secret_forms(value: str) -> list[str]:
    """The ways ``value`` may appear in an error: as is, JSON-escaped (ASCII or
    not, ``/`` escaped or not, twice over for JSON inside JSON) and repr-escaped.

    Returns:
        The distinct forms, longest first.
    """
    import json

    forms = {value}
    for once in (json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]):
        forms.update((once, once.replace("/", "\\/"), json.dumps(once)[1:-1]))
    return sorted(forms, key=len, reverse=True)


def scrub(text: str, secrets) -> str:
    """Replace every occurrence of each secret in ``text``, in any of its
    :func:`secret_forms`, with ``***``.

    Args:
        text: text that may echo a secret (an upstream error body).
        secrets: the values to remove.

    Returns:
        The text with the secrets replaced.
    """
    forms = sorted({form for secret in secrets if secret for form in secret_forms(secret)}, key=len, reverse=True)
    for form in forms:
        text = text.replace(form, "***")
    return text
