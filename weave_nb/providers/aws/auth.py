"""AWS credentials, region and endpoint, found through the AuthenticationManager.

Sources, strongest first:

* the deployment's ``auth`` settings: ``method: api_key`` with
  ``access_key_id`` / ``secret_access_key`` (/ ``session_token``), kept as
  secrets; ``method: iam_role`` with ``role_arn``, ``session_name`` and an
  optional ``external_id`` (STS AssumeRole on top of the base credentials;
  the external id may also come from ``AWS_ROLE_EXTERNAL_ID``, and is never
  recorded);
  ``method: config_file`` with ``profile``;
* the AuthenticationManager's chain: environment variables
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``,
  ``AWS_PROFILE``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
  ``AWS_ENDPOINT_URL``), then ``$WEAVE_HOME/credentials.yaml``;
* the shared AWS files (``~/.aws/credentials``, ``~/.aws/config``) and their
  profiles, read by botocore.

Nothing here makes a remote call except :func:`open_session` for ``iam_role``.
"""

from __future__ import annotations

import getpass
import os
import re
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from ...core.auth import AuthenticationManager
from ...core.config import DeploymentConfig
from ...core.errors import ConfigError, CredentialsError
from .client import Session, make_boto_session

HOW = (
    "provide AWS credentials in one of these ways: "
    "(1) environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys); "
    "(2) a profile in ~/.aws/credentials or ~/.aws/config, chosen with AWS_PROFILE or auth method config_file + profile; "
    "(3) auth method api_key with access_key_id and secret_access_key; "
    "(4) auth method iam_role with role_arn (and external_id) on top of any of these; "
    "(5) AWS: entries in $WEAVE_HOME/credentials.yaml. "
    "For LocalStack or an emulator, also set AWS_ENDPOINT_URL (any non-empty keys work there)"
)
REGION_HOW = "pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), or put a region in your AWS profile"
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,64}$")


def _plain(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def profile_name(auth: AuthenticationManager, config: DeploymentConfig) -> str | None:
    """The AWS profile to use: ``auth.profile`` or ``AWS_PROFILE`` (``None``: botocore's default)."""
    return auth.setting("aws", "AWS_PROFILE", "profile", auth=config.auth)


def static_keys(auth: AuthenticationManager, config: DeploymentConfig) -> dict[str, SecretStr] | None:
    """The access key pair (and session token) if one is given, kept as secrets."""
    key_id = auth.lookup("aws", "AWS_ACCESS_KEY_ID", auth=config.auth)
    secret = auth.lookup("aws", "AWS_SECRET_ACCESS_KEY", auth=config.auth)
    if key_id is None and secret is None:
        return None
    if key_id is None or secret is None:
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        raise CredentialsError(f"an AWS access key pair is incomplete: {missing} is missing", HOW)
    out = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
    token = auth.lookup("aws", "AWS_SESSION_TOKEN", auth=config.auth)
    if token is not None:
        out["aws_session_token"] = token
    return out


def _base_session(auth: AuthenticationManager, config: DeploymentConfig) -> Any:
    keys = static_keys(auth, config)
    method = config.auth.method if config.auth else None
    if keys is not None and method != "config_file":
        return make_boto_session(**{k: v.get_secret_value() for k, v in keys.items()}), "api_key" if method == "api_key" else "env_vars"
    profile = profile_name(auth, config)
    try:
        return make_boto_session(profile_name=profile) if profile else make_boto_session(), "config_file"
    except Exception as exc:  # botocore.exceptions.ProfileNotFound and friends
        raise CredentialsError(f"AWS profile {profile!r} could not be loaded: {type(exc).__name__}", HOW) from None


def _has_file_credentials(boto: Any, allow_instance_role: bool) -> bool:
    """Whether botocore finds credentials without touching the network (unless allowed)."""
    core = boto._session  # the botocore session; its credential resolver is public API
    resolver = core.get_component("credential_provider")
    if not allow_instance_role:
        for name in ("iam-role", "container-role"):
            try:
                resolver.remove(name)
            except Exception:  # noqa: BLE001 - not present in this botocore
                pass
    try:
        return resolver.load_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken profile counts as none found
        return False


def _shared_sources(auth: AuthenticationManager, config: DeploymentConfig) -> bool:
    """Whether botocore could find credentials anywhere but the environment keys and instance metadata.

    A profile, a web-identity token file or any of the files botocore reads
    (shared credentials and config, the legacy boto files). When none is
    there, botocore would find nothing either, so the answer needs no boto3.
    """
    env = os.environ
    if profile_name(auth, config) or env.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return True
    home = Path.home()
    files = [
        env.get("AWS_SHARED_CREDENTIALS_FILE") or home / ".aws" / "credentials",
        env.get("AWS_CONFIG_FILE") or home / ".aws" / "config",
        env.get("BOTO_CONFIG") or "/etc/boto.cfg",
        home / ".boto",
        env.get("AWS_CREDENTIAL_FILE") or home / ".aws" / "credentials",
    ]
    return any(Path(f).expanduser().exists() for f in files)


def region_of(auth: AuthenticationManager, config: DeploymentConfig) -> str | None:
    """The region: ``--region``, then AWS_REGION / AWS_DEFAULT_REGION, then the profile's."""
    if config.region:
        return config.region
    found = auth.setting("aws", "AWS_REGION", "AWS_DEFAULT_REGION", "region", auth=config.auth)
    if found:
        return found
    profile = profile_name(auth, config)
    try:
        return (make_boto_session(profile_name=profile) if profile else make_boto_session()).region_name
    except Exception:  # noqa: BLE001 - unknown profile: reported by check_credentials
        return None


def endpoint_of(auth: AuthenticationManager, config: DeploymentConfig, option: str | None) -> str | None:
    """The endpoint override: the ``endpoint_url`` option, auth setting, or AWS_ENDPOINT_URL."""
    return option or auth.setting("aws", "AWS_ENDPOINT_URL", "endpoint_url", auth=config.auth)


def session_key(auth: AuthenticationManager, config: DeploymentConfig, region: str, endpoint_url: str | None) -> str | None:
    """A digest naming the session :func:`open_session` would make, or ``None`` when it must not be reused.

    Sessions that assume a role are not reused (their credentials expire). The
    digest covers the keys themselves, so changed credentials make a new
    session; it is a hash, never the secret.
    """
    import hashlib

    method = config.auth.method if config.auth else None
    if method == "iam_role":
        return None
    keys = static_keys(auth, config)
    parts = [region, endpoint_url or "", method or "", profile_name(auth, config) or ""]
    if keys is not None and method != "config_file":
        parts += [keys[k].get_secret_value() for k in sorted(keys)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def known_regions() -> set[str]:
    """Every region of every AWS partition, from botocore's bundled ``partitions.json``.

    That file is a few KB; the per-service ``endpoints.json`` (over 1 MB) is
    never parsed just to check a region name.
    """
    from .client import shared_loader

    data = shared_loader().load_data("partitions")
    out: set[str] = set()
    for partition in data.get("partitions", []):
        out.update(partition.get("regions", {}))
    return out


def check(auth: AuthenticationManager, config: DeploymentConfig, allow_instance_role: bool = False) -> str:
    """Make sure credentials exist, without any remote call.

    Returns:
        The method that will be used (env_vars, api_key, config_file, iam_role).

    Raises:
        CredentialsError: none found; the message lists the ways to provide them.
    """
    method = config.auth.method if config.auth else None
    if method not in (None, "env_vars", "api_key", "iam_role", "config_file"):
        raise CredentialsError(f"auth method {method!r} does not apply to AWS", HOW)
    if method == "iam_role":
        arn = config.auth.get("role_arn") if config.auth else None
        if not arn or not ROLE_ARN.match(arn):
            raise CredentialsError(
                "auth method iam_role needs role_arn, e.g. arn:aws:iam::123456789012:role/deployer", HOW
            )
    if method == "api_key" and static_keys(auth, config) is None:
        raise CredentialsError("auth method api_key needs access_key_id and secret_access_key", HOW)
    keys = static_keys(auth, config)
    if keys is not None and method != "config_file":  # what _base_session would use, without loading boto3
        return "iam_role" if method == "iam_role" else "api_key" if method == "api_key" else "env_vars"
    if keys is None and not allow_instance_role and not _shared_sources(auth, config):
        raise CredentialsError("no AWS credentials found", HOW)
    boto, used = _base_session(auth, config)
    if not _has_file_credentials(boto, allow_instance_role):
        raise CredentialsError("no AWS credentials found", HOW)
    return "iam_role" if method == "iam_role" else used


def open_session(
    auth: AuthenticationManager, config: DeploymentConfig, region: str, endpoint_url: str | None, client_factory: Any = None
) -> Session:
    """Make the :class:`Session` to deploy with (assuming a role if asked).

    Args:
        auth: the AuthenticationManager.
        config: the deployment config (its ``auth`` settings).
        region: the region.
        endpoint_url: an endpoint override, or ``None``.
        client_factory: ``(session) -> AwsClient`` used for the STS call (retries, injected sleep).

    Raises:
        CredentialsError: the role could not be assumed.
    """
    boto, used = _base_session(auth, config)
    method = config.auth.method if config.auth else None
    if method != "iam_role":
        return Session(boto=boto, region=region, endpoint_url=endpoint_url, method=used)
    assert config.auth is not None
    base = Session(boto=boto, region=region, endpoint_url=endpoint_url, method=used)
    sts = client_factory(base) if client_factory else None
    params: dict[str, Any] = {
        "RoleArn": config.auth.get("role_arn"),
        "RoleSessionName": config.auth.get("session_name") or _session_name(),
    }
    external_id = auth.setting("aws", "AWS_ROLE_EXTERNAL_ID", "external_id", auth=config.auth)
    if external_id:
        params["ExternalId"] = external_id
    if config.auth.get("duration_seconds"):
        params["DurationSeconds"] = int(config.auth.get("duration_seconds") or 3600)
    try:
        creds = (sts.call("sts", "assume_role", **params) if sts else boto.client("sts", region_name=region, endpoint_url=endpoint_url).assume_role(**params))["Credentials"]
    except Exception as exc:  # noqa: BLE001 - reported without secrets
        from .client import error_code, error_message

        raise CredentialsError(
            f"could not assume role {params['RoleArn']}: {error_code(exc) or type(exc).__name__} {error_message(exc)[:200]}",
            "check the role's trust policy allows your identity (and the external id, if it needs one)",
        ) from None
    assumed = make_boto_session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    return Session(boto=assumed, region=region, endpoint_url=endpoint_url, method="iam_role")


def _session_name() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "user"
    return re.sub(r"[^\w+=,.@-]", "-", f"weave-nb-{user}")[:64]


def require_region(region: str | None) -> str:
    """Return ``region`` or raise a ConfigError saying how to set one."""
    if not region:
        raise ConfigError("no AWS region given", REGION_HOW)
    return region
