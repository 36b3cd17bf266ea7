"""Identity tokens for the Cloud Functions v2 test fake (see ``gcf_fake``; not Google's service).

Standard library only. The fake cannot verify Google's signatures, so a token
is accepted when it is *well formed*: three base64url parts, a JSON header
naming an algorithm, a JSON payload whose ``aud`` is the function URL and whose
``exp`` lies in the future. Tokens the fake makes carry a random signature.
"""

from __future__ import annotations

import base64
import json
import os
import time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_token(claims: dict) -> str:
    """A JWT with ``claims`` and a made-up RS256 signature."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "gcf-fake"}
    parts = [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(os.urandom(256))]
    return ".".join(parts)


def token_claims(token: str) -> dict | None:
    """The payload of a JWT-shaped ``token`` (signature NOT checked), or ``None`` when it is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        _unb64(parts[2])
    except (ValueError, TypeError):
        return None
    if not isinstance(header, dict) or not header.get("alg") or not isinstance(claims, dict):
        return None
    return claims


def token_problem(token: str, audience: str) -> str | None:
    """Why ``token`` is refused for ``audience`` (``None``: accepted). Structure, audience and expiry only."""
    claims = token_claims(token)
    if claims is None:
        return "not a JWT"
    aud = str(claims.get("aud") or "")
    if aud.rstrip("/") != audience.rstrip("/"):
        return f"audience {aud!r} is not this function's URL"
    try:
        if float(claims.get("exp", 0)) <= time.time():
            return "expired"
    except (TypeError, ValueError):
        return "no valid exp"
    return None
