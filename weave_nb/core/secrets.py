"""Managed secrets (``--secret NAME``, ``deployment.secrets``): names checked, values found, never shown.

A managed secret is an environment variable whose value is kept out of the
function's plain environment: AWS stores it in Secrets Manager and gives the
function only its ARN, GCP references a Secret Manager secret from
``secretEnvironmentVariables``, Docker mounts it as a file readable only by
the container's user, and ``local`` passes it as an ordinary environment
value. The value comes from ``--env NAME=VALUE`` or the user's environment,
as every env value does, and is held as a ``SecretStr``.
"""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import SecretStr

from .errors import ConfigError

SECRET_ARNS_VAR = "WEAVE_SECRET_ARNS"  # aws: JSON {NAME: secret ARN}, read by the runtime at cold start
SECRET_FILES_VAR = "WEAVE_SECRET_FILES"  # docker: NAME,NAME... whose values are files in WEAVE_SECRETS_DIR
SECRETS_DIR_VAR = "WEAVE_SECRETS_DIR"
SECRETS_DIR = "/run/secrets"


def check_secret_names(value: Any) -> list[str]:
    """The secret names of ``--secret`` or ``deployment.secrets``: environment variable names, each once.

    Raises:
        ValueError: not a list of names (a pydantic validator turns it into a ConfigError naming the field).
    """
    from .config import ENV_NAME

    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError("must be a list of environment variable names")
    out: list[str] = []
    for number, name in enumerate(value, 1):
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ValueError(f"entry #{number} is not an environment variable name (letters, digits and '_')")
        if name.startswith(("WEAVE_", "AWS_")):
            raise ValueError(f"{name} is reserved (WEAVE_* and AWS_* are set by weave-nb and the cloud)")
        if name not in out:
            out.append(name)
    return out


def with_secret_values(config: Any, environ: Mapping[str, str]) -> Any:
    """``config`` with each secret's value in its ``env`` (from ``--env``, else ``environ``).

    Raises:
        ConfigError: a secret has no value anywhere (the hint says how to give one); nothing was created.
    """
    if not config.secrets:
        return config
    env = dict(config.env)
    missing = []
    for name in config.secrets:
        if name in env:
            continue
        if environ.get(name):
            env[name] = SecretStr(environ[name])
        else:
            missing.append(name)
    if missing:
        raise ConfigError(f"secret {', '.join(missing)} has no value",
                          f"set it in your environment (export {missing[0]}=...) or pass --env {missing[0]}=...; "
                          "nothing was created")
    return config.model_copy(update={"env": env})


def split_env(env: Mapping[str, str], secrets: list[str] | tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """``(plain, secret)``: the environment without the secrets, and the secrets' values."""
    plain = {k: v for k, v in env.items() if k not in secrets}
    return plain, {k: env[k] for k in secrets if k in env}
