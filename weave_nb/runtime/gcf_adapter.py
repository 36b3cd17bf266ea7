"""Google Cloud Functions (functions-framework) entry point.

The generated ``main.py`` of an artifact calls :func:`handle` with the Flask
request it receives. Only ``request.method``, ``request.path``,
``request.get_data()`` and ``request.headers`` are used, so Flask is never
imported here. Standard library only.
"""

from __future__ import annotations

from . import app

__all__ = ["handle"]


def handle(request) -> tuple[bytes, int, dict]:
    """Answer one Cloud Functions HTTP request.

    Args:
        request: a Flask / functions-framework request object.

    Returns:
        ``(body bytes, status, headers)``, the tuple Flask accepts as a response.
    """
    try:
        headers = dict(request.headers)
    except (TypeError, ValueError):
        headers = {}
    status, out_headers, body = app.handle(request.method, request.path, request.get_data(), headers, platform="gcp")
    return body, status, out_headers
