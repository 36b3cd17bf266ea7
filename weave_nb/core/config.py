"""The deployment data model: what to deploy, what was deployed, and plans.

All models are pydantic v2 and validated at the edge. Secrets (environment
values, credentials) are ``SecretStr``: they never show in a repr, a dump, a
DataFrame or an error message.
"""

from __future__ import annotations

import datetime as _dt
import enum
import ipaddress
import re
from typing import Any, Literal, Mapping, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .plan import Plan, PlannedStep  # noqa: F401 - re-exported: the plan model lives in core.plan
from .errors import ConfigError

NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")  # match it with fullmatch: "$" also matches before a final "\n"
NAME_RULE = "must start with a letter and hold only letters, digits, '-' or '_' (at most 63 characters)"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_WORDS = ("key", "secret", "token", "password", "credential")
AuthMethod = Literal["env_vars", "api_key", "service_account", "iam_role", "oauth", "config_file"]
AUTH_METHODS: tuple[str, ...] = get_args(AuthMethod)


def utcnow() -> _dt.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return _dt.datetime.now(_dt.timezone.utc)


class DeploymentStatus(str, enum.Enum):
    """The life cycle of a deployment."""

    PENDING = "pending"
    DEPLOYING = "deploying"
    ACTIVE = "active"
    FAILED = "failed"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"

    def __str__(self) -> str:
        return self.value


class AuthConfig(BaseModel):
    """How to authenticate with a provider.

    ``method`` is one of env_vars, api_key, service_account, iam_role, oauth,
    config_file (or ``None`` to let the provider discover credentials).
    ``params`` holds the method's inputs; any whose name contains key, secret,
    token, password or credential is kept as a ``SecretStr``.
    """

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True, defer_build=True)

    method: AuthMethod | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("params", mode="before")
    @classmethod
    def _secret_params(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, val in value.items():
            if val is not None and any(w in key.lower() for w in SECRET_WORDS) and not isinstance(val, SecretStr):
                val = SecretStr(str(val))
            out[key] = val
        return out

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> "AuthConfig | None":
        """Build from a flat mapping such as ``{"method": "api_key", "access_key_id": ...}``."""
        if not data:
            return None
        data = dict(data)
        method = data.pop("method", None)
        params = dict(data.pop("params", {}) or {})
        params.update(data)
        return cls(method=method, params=params)

    def get(self, key: str) -> str | None:
        """Return a parameter's plain value (secrets revealed), or ``None``."""
        val = self.params.get(key)
        if isinstance(val, SecretStr):
            return val.get_secret_value()
        return None if val is None else str(val)


class DeploymentConfig(BaseModel):
    """What to deploy and where. Precedence: flags > magic/CLI > the weave file's ``deployment``.

    Provider-specific settings go in ``options`` and are validated by that
    provider's own options model (see ``DeploymentProvider.options_model``).
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, defer_build=True)

    name: str
    provider: str = "local"
    type: str | None = None
    region: str | None = None
    memory_mb: int | None = Field(default=None, gt=0)
    timeout_seconds: int | None = Field(default=None, gt=0)
    env: dict[str, SecretStr] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list, description="env names kept in the provider's secret store (--secret)")
    weave_file: str | None = None
    weave_text: str | None = Field(default=None, repr=False)
    public: bool = False
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=0, le=65535)
    options: dict[str, Any] = Field(default_factory=dict)
    auth: AuthConfig | None = None
    adopt: bool = Field(default=False, description="take over resources of this name that this inventory did not make")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(NAME_RULE)
        return value

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("env", mode="before")
    @classmethod
    def _env(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return parse_env_pairs(value)
        if isinstance(value, dict):
            for number, key in enumerate(value, 1):
                if not isinstance(key, str) or not ENV_NAME.match(key):
                    # never echo the name: it may be a pasted secret
                    raise ValueError(f"an env entry is not a valid environment variable name (entry #{number}; "
                                     "use letters, digits and '_')")
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> Any:
        from .secrets import check_secret_names

        return check_secret_names(value)

    @field_validator("auth", mode="before")
    @classmethod
    def _auth(cls, value: Any) -> Any:
        if isinstance(value, dict) and "params" not in value:
            return AuthConfig.from_mapping(value)
        return value

    def env_plain(self) -> dict[str, str]:
        """Return the environment with values revealed, for handing to a provider API."""
        return {k: v.get_secret_value() for k, v in self.env.items()}


def check_name(name: Any) -> str:
    """The one check of a deployment name, made before anything is looked up or created.

    Names become file names (lock files, artifact folders) and cloud resource
    names, so only :data:`NAME_PATTERN` is accepted: a letter, then letters,
    digits, ``-`` or ``_``, at most 63 characters in all.

    Args:
        name: the name as given (any type).

    Returns:
        ``name``, unchanged.

    Raises:
        ConfigError: ``name`` is not a string matching :data:`NAME_PATTERN`.
    """
    if isinstance(name, str) and NAME_PATTERN.fullmatch(name):
        return name
    shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:37] + "..."
    if not isinstance(name, str):
        shown = f"{shown} (a {type(name).__name__}, not a string)"
    elif len(name) > 63:
        shown = f"{shown} ({len(name)} characters)"
    raise ConfigError(
        f"invalid deployment name {shown}: {NAME_RULE}",
        f"use a name matching {NAME_PATTERN.pattern}, e.g. demo or my-weave_2; nothing was looked up or created",
    )


def check_provider_name(provider: Any) -> str:
    """A provider name as given (``aws``, ``local``, a plug-in), normalised to lower case.

    Raises:
        ConfigError: not a string of letters, digits, ``-`` or ``_``.
    """
    if isinstance(provider, str) and NAME_PATTERN.fullmatch(provider.strip()):
        return provider.strip().lower()
    shown = repr(provider) if len(repr(provider)) <= 40 else repr(provider)[:37] + "..."
    raise ConfigError(f"invalid provider name {shown}", "name one of: local, aws, gcp, docker, or an installed plug-in")


def parse_env_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Turn ``["A=1", "B=two"]`` into a dict.

    Raises:
        ConfigError: an item has no ``=`` or an invalid variable name (the item is never quoted).
    """
    out: dict[str, str] = {}
    for number, item in enumerate(pairs, 1):
        key, sep, val = str(item).partition("=")
        key = key.strip()
        if not sep or not ENV_NAME.match(key):
            # never echo the item, nor its name part: it may be a pasted secret
            raise ConfigError(f"an --env entry is not NAME=VALUE with a valid NAME (entry #{number})",
                              "write it as --env NAME=value; a NAME holds letters, digits and '_', "
                              "and does not start with a digit")
        out[key] = val
    return out


def make_config(values: dict[str, Any], defaults: dict[str, Any] | None = None) -> DeploymentConfig:
    """Merge explicit values over weave-file defaults and validate.

    ``None`` values in ``values`` do not override defaults. Unknown default
    keys go into ``options``.

    Raises:
        ConfigError: a value is invalid; the message names the field.
    """
    if "adopt" in (defaults or {}):
        raise ConfigError(
            "a weave file cannot ask to adopt resources (deployment.adopt)",
            "remove `adopt` from the file's deployment section; taking over what another inventory made is "
            "your decision alone: pass --adopt",
        )
    merged: dict[str, Any] = {}
    known = set(DeploymentConfig.model_fields)
    options: dict[str, Any] = {}
    for key, val in (defaults or {}).items():
        if key == "options":
            options.update(val or {})
        elif key in known:
            merged[key] = val
        else:
            options[key] = val
    for key, val in values.items():
        if val is None:
            continue
        if key == "options":
            options.update({k: v for k, v in val.items() if v is not None})
        elif key == "secrets" and merged.get("secrets"):  # the weave file's secrets and --secret both apply
            merged["secrets"] = [*merged["secrets"], *(val if isinstance(val, (list, tuple)) else [val])]
        elif key == "env" and merged.get("env"):
            merged["env"] = {**merged["env"], **(parse_env_pairs(val) if isinstance(val, (list, tuple)) else val)}
        else:
            merged[key] = val
    merged["options"] = options
    try:
        return DeploymentConfig(**merged)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc), "fix the value and run again; nothing was created") from None


def describe_validation_error(exc: ValidationError) -> str:
    """Turn a pydantic error into one readable line per problem, never echoing input values."""
    from .options import did_you_mean, plain_words

    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "value"
        if err.get("type") == "extra_forbidden":
            parts.append(f"{where}: unknown setting{did_you_mean(where, DeploymentConfig.model_fields)}")
        else:
            parts.append(f"{where}: {plain_words(err.get('msg', 'invalid'))}")
    return "invalid deployment settings: " + "; ".join(parts)


class Resource(BaseModel):
    """One thing a deployment made (a process, a role, a function, an image...)."""

    model_config = ConfigDict(defer_build=True)

    kind: str
    id: str
    attrs: dict[str, Any] = Field(default_factory=dict)
    created_at: _dt.datetime = Field(default_factory=utcnow)


class DeploymentInfo(BaseModel):
    """What is deployed: the inventory's row merged with the provider's live view."""

    model_config = ConfigDict(defer_build=True)

    name: str
    provider: str
    status: DeploymentStatus = DeploymentStatus.PENDING
    endpoint: str | None = None
    region: str | None = None
    created_at: _dt.datetime = Field(default_factory=utcnow)
    updated_at: _dt.datetime = Field(default_factory=utcnow)
    content_hash: str | None = None
    settings_hash: str | None = None
    version: str | None = None
    message: str | None = None
    drift: str | None = None
    health: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    resources: list[Resource] = Field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """A flat dict for tables and DataFrames (no secrets are ever stored here)."""
        return {
            "name": self.name,
            "provider": self.provider,
            "status": self.status.value,
            "region": self.region,
            "endpoint": self.endpoint,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "drift": self.drift,
            "health": self.health,
            "version": self.version,
            "message": self.message,
        }

    def _repr_html_(self) -> str:
        from .present import deployment_html

        return deployment_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.summary())

    def summary(self) -> str:
        """A one-line text summary."""
        text = f"{self.name} [{self.provider}] {self.status.value}"
        if self.endpoint:
            text += f" (was {self.endpoint})" if self.status == DeploymentStatus.DESTROYED else f" {self.endpoint}"
        if self.drift:
            text += f" (drift: {self.drift})"
        if self.details.get("sandbox"):
            text += " (sandbox, not the real cloud)"
        return text


def file_defaults(section: Mapping[str, Any], provider: str | None) -> dict[str, Any]:
    """The weave file's ``deployment`` defaults that apply to ``provider``.

    A section written for another provider (``provider: aws`` when deploying
    to ``gcp``) keeps only its portable settings (memory, timeout, env);
    its region, type and options belong to that other provider.
    """
    base = dict(section)
    written_for = str(base.get("provider") or "").lower()
    if provider and written_for and written_for != provider.strip().lower():
        for key in ("provider", "region", "type", "options"):
            base.pop(key, None)
        base = {k: v for k, v in base.items() if k in ("memory_mb", "timeout_seconds", "env", "public", "secrets")}
    return base


# Settings a weave file (data people share) may not make: only the user, by a
# flag, an API argument or a magic option, may choose them.
USER_ONLY_OPTIONS = {
    "python": "the interpreter run on this machine",
    "endpoint_url": "where AWS calls, with your credentials and the weave's env values, are sent",
    "api_endpoint": "where Google Cloud calls, with your credentials and the weave's env values, are sent",
    "run_api_endpoint": "where Cloud Run calls, with your credentials, are sent",
    "registry": "where the image is pushed, with your registry login",
}
USER_ONLY_ENV_PREFIX = "WEAVE_ALLOWED_"  # the weave server's browser rules (WEAVE_ALLOWED_ORIGINS, ...)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    host = str(host).strip().lower().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_file_powers(section: Mapping[str, Any], env_names: Any = ()) -> None:
    """Refuse the weave file settings that only the user may choose.

    A weave file may not choose an executable or where credentials go
    (:data:`USER_ONLY_OPTIONS`, as ``deployment.options.X`` or
    ``deployment.X``), bind to a non-loopback address (``deployment.host``),
    open the endpoint (``deployment.public: true``), nor set the server's
    ``WEAVE_ALLOWED_*`` browser rules (in ``env`` or ``deployment.env``).

    Args:
        section: the weave file's ``deployment`` section.
        env_names: the names in the weave file's top-level ``env``.

    Raises:
        ConfigError: naming the setting and the flag to pass instead (values are never echoed).
    """
    def refuse(what: str, why: str, flag: str) -> ConfigError:
        return ConfigError(f"the weave file sets {what}: a weave file may not choose {why}",
                           f"remove it from the file; if you trust the value, pass {flag} yourself")

    section = section or {}
    options = section.get("options") if isinstance(section.get("options"), Mapping) else {}
    for key, why in USER_ONLY_OPTIONS.items():
        for where, found in ((f"deployment.options.{key}", key in options), (f"deployment.{key}", key in section)):
            if found:
                raise refuse(where, why, f"--option {key}=... (API: options={{'{key}': ...}})")
    host = section.get("host")
    if host is not None and not is_loopback(str(host)):
        raise refuse("deployment.host to a non-loopback address", "to expose the server to the network",
                     "--host ADDRESS (API: host=...)")
    if section.get("public") not in (None, False):
        raise refuse("deployment.public", "to open the endpoint to unauthenticated calls", "--public (API: public=True)")
    env = section.get("env") if isinstance(section.get("env"), Mapping) else {}
    for where, names in (("deployment.env", env), ("env", env_names or ())):
        for name in names:
            if str(name).upper().startswith(USER_ONLY_ENV_PREFIX):
                raise refuse(f"{where}.{name}", "which web pages and host names may call the weave server",
                             f"--env {name}=...")
