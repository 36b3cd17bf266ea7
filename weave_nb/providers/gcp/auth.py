"""Credentials, project and endpoints for the GCP provider.

Resolution order for credentials (the first that is configured wins):

1. ``oauth``: an access token from ``auth`` (``access_token``) or
   ``GOOGLE_OAUTH_ACCESS_TOKEN``;
2. ``service_account``: a key file from ``auth`` (``service_account_file``)
   or ``GOOGLE_APPLICATION_CREDENTIALS``;
3. application default credentials: the gcloud ADC file
   (``gcloud auth application-default login``), or the metadata server when
   running on Google Cloud (``GCE_METADATA_HOST`` or ``K_SERVICE`` set).

Nothing here makes a network call: tokens are fetched by the client library
on its first request.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.auth import AuthenticationManager
from ...core.config import AuthConfig
from ...core.errors import CredentialsError

HOW_TO_AUTH = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or GOOGLE_OAUTH_ACCESS_TOKEN to an access "
    "token, or run `gcloud auth application-default login`; or pass auth={'method': 'service_account', "
    "'service_account_file': PATH} / {'method': 'oauth', 'access_token': TOKEN}"
)
HOW_TO_PROJECT = "set GCP_PROJECT_ID (or GOOGLE_CLOUD_PROJECT), or pass --project PROJECT"


@dataclass
class GcpSession:
    """What the clients need: credentials, project and endpoints (no secret in its repr)."""

    credentials: Any
    project: str
    method: str
    api_endpoint: str | None = None
    run_api_endpoint: str | None = None

    def __repr__(self) -> str:
        return f"GcpSession(project={self.project!r}, method={self.method!r}, api_endpoint={self.api_endpoint!r})"


def _adc_file(auth: AuthenticationManager) -> Path | None:
    env = auth.environ
    base = env.get("CLOUDSDK_CONFIG") or os.path.join(env.get("HOME") or str(Path.home()), ".config", "gcloud")
    path = Path(base) / "application_default_credentials.json"
    return path if path.is_file() else None


def find_method(auth: AuthenticationManager, cfg: AuthConfig | None) -> tuple[str, Any]:
    """Decide how to authenticate, without any network call.

    Returns:
        ``(method, value)``: ``("oauth", SecretStr)``, ``("service_account", path)``,
        ``("adc", path)`` or ``("metadata", None)``.

    Raises:
        CredentialsError: nothing is configured; the message lists the ways.
    """
    wanted = cfg.method if cfg else None
    if wanted in (None, "oauth"):
        token = auth.lookup("gcp", "GOOGLE_OAUTH_ACCESS_TOKEN", "access_token", auth=cfg)
        if token:
            return "oauth", token
        if wanted == "oauth":
            raise CredentialsError("auth method oauth needs an access token", HOW_TO_AUTH)
    if wanted in (None, "service_account", "config_file"):
        path = auth.setting("gcp", "GOOGLE_APPLICATION_CREDENTIALS", "service_account_file", "credentials_file", auth=cfg)
        if path:
            path = str(Path(path).expanduser())
            if not Path(path).is_file():
                raise CredentialsError(f"the service-account key file {path} does not exist", HOW_TO_AUTH)
            return "service_account", path
        if wanted in ("service_account", "config_file"):
            raise CredentialsError(f"auth method {wanted} needs a key file", HOW_TO_AUTH)
    if wanted in (None, "env_vars"):
        adc = _adc_file(auth)
        if adc:
            return "adc", str(adc)
        if auth.environ.get("GCE_METADATA_HOST") or auth.environ.get("K_SERVICE"):
            return "metadata", None
    raise CredentialsError("no Google Cloud credentials found", HOW_TO_AUTH)


def find_project(auth: AuthenticationManager, cfg: AuthConfig | None, option: str | None, method: str, value: Any) -> str:
    """The project id: option, environment, then the key or ADC file.

    Raises:
        CredentialsError: no project is set anywhere.
    """
    project = option or auth.setting("gcp", "GCP_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "project", auth=cfg)
    if not project and method in ("service_account", "adc") and value:
        try:
            data = json.loads(Path(value).read_text())
        except (OSError, ValueError):
            raise CredentialsError(f"the credentials file {value} is not valid JSON", HOW_TO_AUTH) from None
        project = data.get("project_id") or data.get("quota_project_id")
    if not project:
        raise CredentialsError("no Google Cloud project is set", HOW_TO_PROJECT)
    return project


def endpoints(auth: AuthenticationManager, cfg: AuthConfig | None, api: str | None, run: str | None) -> tuple[str | None, str | None]:
    """API endpoint overrides: options first, then WEAVE_GCP_API_ENDPOINT / WEAVE_GCP_RUN_ENDPOINT."""
    api = api or auth.setting("gcp", "WEAVE_GCP_API_ENDPOINT", "api_endpoint", auth=cfg)
    run = run or auth.setting("gcp", "WEAVE_GCP_RUN_ENDPOINT", "run_api_endpoint", auth=cfg) or api
    return api, run


def make_credentials(method: str, value: Any) -> Any:
    """Build google-auth credentials for a method found by :func:`find_method` (no network call)."""
    if method == "oauth":
        from google.oauth2.credentials import Credentials

        return Credentials(token=value.get_secret_value())
    if method == "service_account":
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_file(
                value, scopes=["https://www.googleapis.com/auth/cloud-platform"]
            )
        except (ValueError, KeyError) as exc:
            raise CredentialsError(f"the service-account key file {value} is not usable: {exc}", HOW_TO_AUTH) from None
    if method == "adc":
        import google.auth

        creds, _ = google.auth.load_credentials_from_file(value, scopes=["https://www.googleapis.com/auth/cloud-platform"])
        return creds
    from google.auth import compute_engine

    return compute_engine.Credentials()
