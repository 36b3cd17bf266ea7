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
import uuid

from weave_nb.sandbox.emulators.gcf_fake_functions import EMPTY_POLICY, ApiError


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


class InvokerMixin:
    """Function URLs behind Cloud Run's invoker check, the token endpoint and a metadata server's token answers
    (part of ``FakeCloudFunctions``)."""

    METADATA_ACCOUNT = "fake-sa@demo-proj.iam.gserviceaccount.com"

    # ------------------------------------------------------------------ invoking
    def _invoke_url(self, name: str) -> str:
        _, project, _, location, _, fid = name.split("/")
        return f"{self.url}/run/{project}/{location}/{fid}"

    def _invoke_target(self, project: str, location: str, fid: str, authorization: str | None) -> str:
        """The process URL to forward a call to, after Cloud Run's invoker check, by the traffic split.

        Raises:
            ApiError: 404 no such served function; 403 private and no token; 401 a token
                that is not a well-formed, unexpired JWT for this function's URL.
        """
        name = f"projects/{project}/locations/{location}/functions/{fid}"
        with self._lock:
            fn = self._functions.get(name)
            service = (fn or {}).get("serviceConfig", {}).get("service", "")
            policy = self._policies.get(service, EMPTY_POLICY)
        if fn is None or not any(n.startswith(service + "/revisions/") for n in list(self._procs)):
            raise ApiError(404, f"no function is served at {self._invoke_url(name)}")
        public = any(b.get("role") == "roles/run.invoker" and "allUsers" in b.get("members", [])
                     for b in policy.get("bindings", []))
        if self.invoker_auth and not public:
            if not authorization or not authorization.startswith("Bearer "):
                raise ApiError(403, "Your client does not have permission to get URL from this server "
                                    "(the function is private: send an identity token)", "PERMISSION_DENIED")
            problem = token_problem(authorization[len("Bearer "):].strip(), fn.get("url") or self._invoke_url(name))
            if problem:
                raise ApiError(401, f"The access token could not be verified: {problem}", "UNAUTHENTICATED")
        with self._lock:
            proc = self._route(service)  # the revision the traffic split picks (see gcf_fake_run)
        if proc is None:
            raise ApiError(503, "no revision of this service is ready to serve the request", "UNAVAILABLE")
        return proc.url

    def identity_token(self, audience: str, email: str = "tester@demo-proj.iam.gserviceaccount.com") -> str:
        """A well-formed identity token for ``audience`` (with a made-up signature) that the proxy accepts."""
        return make_token({"iss": "https://accounts.google.com", "aud": audience, "azp": email, "email": email,
                           "sub": "1" * 21, "iat": int(time.time()), "exp": int(time.time()) + 3600})

    def _api_token(self, form: dict) -> dict:
        """Google's token endpoint for service-account keys (JWT-bearer grant); the assertion's signature is not checked."""
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not form.get("assertion"):
            raise ApiError(400, "invalid_grant: a JWT-bearer assertion is required")
        claims = token_claims(form["assertion"])
        if claims is None:
            raise ApiError(400, "invalid_grant: the assertion is not a JWT")
        if claims.get("target_audience"):
            return {"id_token": self.identity_token(claims["target_audience"], claims.get("iss", ""))}
        return {"access_token": f"ya29.fake-{uuid.uuid4().hex[:8]}", "expires_in": 3599, "token_type": "Bearer"}

