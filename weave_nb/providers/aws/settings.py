"""AWS provider options, Lambda limits and names: everything checked before any remote call.

This module does not import boto3, so validation stays cheap.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.config import DeploymentConfig
from ...core.errors import ConfigError

FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
EXECUTION_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,64}$")
MEMORY_RANGE = (128, 10240)
TIMEOUT_RANGE = (1, 900)
MAX_ZIPPED = 50 * 1024 * 1024
MAX_UNZIPPED = 250 * 1024 * 1024
RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)
DEFAULT_MEMORY = 256
DEFAULT_TIMEOUT = 60
API_TIMEOUT_LIMIT = 30
ALIAS = "live"
FUNCTION_PREFIX = "weave-"
ROLE_PREFIX = "weave-nb-"
TAG_MANAGED = "weave-nb:managed"
TAG_NAME = "weave-nb:name"
TAG_OWNER = "weave-nb:owner"
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-iso-", "aws-iso"))
TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
    '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
)


class AwsOptions(BaseModel):
    """Options of the ``aws`` provider (``--option KEY=VALUE`` or the flags named below).

    Attributes:
        endpoint: ``url`` (a Function URL, default), ``api`` (an API Gateway HTTP API) or ``none``.
        runtime: the Lambda runtime (``--runtime``).
        architecture: ``x86_64`` or ``arm64`` (``--architecture``).
        keep_on_failure: keep what a failed deploy created (``--keep-on-failure``).
        purge_logs: undeploy also deletes the log group (as ``weave undeploy --purge-logs`` does).
        role_arn: use this existing execution role instead of creating ``weave-nb-<name>``.
        log_retention_days: set the log group's retention (creates the group if needed).
        endpoint_url: send every AWS call here (LocalStack, an emulator); default AWS_ENDPOINT_URL.
        function_name: the Lambda function's name (default ``weave-<name>``).
        instance_role: allow credentials from the EC2/ECS instance role (a network lookup).
        role_propagation_seconds: how long to retry while a new role cannot be assumed yet.
    """

    model_config = ConfigDict(extra="forbid")

    endpoint: Literal["url", "api", "none"] = "url"
    runtime: str = "python3.12"
    architecture: Literal["x86_64", "arm64"] = "x86_64"
    keep_on_failure: bool = False
    purge_logs: bool = False
    role_arn: str | None = None
    log_retention_days: int | None = None
    endpoint_url: str | None = None
    function_name: str | None = None
    instance_role: bool = False
    role_propagation_seconds: float = Field(default=60.0, gt=0, le=600)

    @field_validator("runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if value not in RUNTIMES:
            raise ValueError(f"unsupported runtime; choose one of {', '.join(RUNTIMES)}")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not EXECUTION_ROLE_ARN.match(value):
            raise ValueError("must be an IAM role ARN such as arn:aws:iam::123456789012:role/my-lambda-role")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, value: int | None) -> int | None:
        if value is not None and value not in LOG_RETENTION_DAYS:
            raise ValueError(f"must be one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL such as http://127.0.0.1:4566")
        return value


def function_name(config: DeploymentConfig, opts: AwsOptions) -> str:
    """The Lambda function name of a deployment (``weave-<name>`` unless set)."""
    return opts.function_name or f"{FUNCTION_PREFIX}{config.name}"


def role_name(config: DeploymentConfig) -> str:
    """The execution role weave-nb creates for a deployment."""
    return f"{ROLE_PREFIX}{config.name}"


def check_limits(config: DeploymentConfig, opts: AwsOptions, regions: set[str] | None) -> None:
    """Check names, memory, timeout, type and region against Lambda's limits.

    Raises:
        ConfigError: the first setting out of range, with what is allowed.
    """
    if config.type not in (None, "lambda"):
        raise ConfigError(f"deployment type {config.type!r} is not available on aws", "use --type lambda (the default)")
    fname = function_name(config, opts)
    if not FUNCTION_NAME.match(fname):
        raise ConfigError(
            f"the Lambda function name {fname!r} (derived from the deployment name) is not valid: "
            "Lambda allows 1-64 letters, digits, '-' or '_'",
            f"choose a deployment name of at most {64 - len(FUNCTION_PREFIX)} characters, or set --option function_name=...",
        )
    if opts.role_arn is None and not ROLE_NAME.match(role_name(config)):
        raise ConfigError(
            f"the IAM role name {role_name(config)!r} would be longer than 64 characters",
            f"choose a deployment name of at most {64 - len(ROLE_PREFIX)} characters, or pass --option role_arn=...",
        )
    memory = config.memory_mb or DEFAULT_MEMORY
    if not MEMORY_RANGE[0] <= memory <= MEMORY_RANGE[1]:
        raise ConfigError(
            f"memory {memory} MB is outside Lambda's range", f"choose --memory between {MEMORY_RANGE[0]} and {MEMORY_RANGE[1]} MB"
        )
    timeout = config.timeout_seconds or DEFAULT_TIMEOUT
    if not TIMEOUT_RANGE[0] <= timeout <= TIMEOUT_RANGE[1]:
        raise ConfigError(
            f"timeout {timeout} s is outside Lambda's range", f"choose --timeout between {TIMEOUT_RANGE[0]} and {TIMEOUT_RANGE[1]} seconds"
        )
    if config.region and regions is not None and config.region not in regions:
        raise ConfigError(
            f"{config.region!r} is not a known AWS region for Lambda",
            "use a region such as us-east-1, eu-west-1 or ap-southeast-2",
        )
    reserved = [k for k in config.env if k.startswith("AWS_") or k in ("_HANDLER", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")]
    if reserved:
        raise ConfigError(
            f"environment variable {reserved[0]} is reserved by Lambda", "rename it; Lambda sets AWS_* variables itself"
        )


def check_size(zipped: int, unzipped: int) -> None:
    """Check an artifact against Lambda's package limits (50 MB zipped, 250 MB unzipped).

    Raises:
        ConfigError: the package is too large.
    """
    if zipped > MAX_ZIPPED:
        raise ConfigError(
            f"the package is {zipped / 2**20:.1f} MB zipped; Lambda takes at most 50 MB for a direct upload",
            "make the weave smaller (fewer or smaller files); nothing was uploaded",
        )
    if unzipped > MAX_UNZIPPED:
        raise ConfigError(
            f"the package is {unzipped / 2**20:.1f} MB unzipped; Lambda allows at most 250 MB",
            "make the weave smaller (fewer or smaller files); nothing was uploaded",
        )


def code_sha256(data: bytes) -> str:
    """Lambda's ``CodeSha256``: base64 of the SHA-256 of the zip."""
    import hashlib

    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass(frozen=True)
class FunctionSettings:
    """The function configuration weave-nb wants (compared field by field with Lambda's)."""

    runtime: str
    handler: str
    memory: int
    timeout: int
    architecture: str
    env: tuple[tuple[str, str], ...]
    role_arn: str | None = None

    def differences(self, live: dict) -> list[str]:
        """Names of the settings that differ from a ``GetFunction`` ``Configuration`` (never values)."""
        diffs = []
        if live.get("Runtime") != self.runtime:
            diffs.append("runtime")
        if live.get("Handler") != self.handler:
            diffs.append("handler")
        if int(live.get("MemorySize") or 0) != self.memory:
            diffs.append("memory")
        if int(live.get("Timeout") or 0) != self.timeout:
            diffs.append("timeout")
        if (live.get("Architectures") or ["x86_64"])[0] != self.architecture:
            diffs.append("architecture")
        if dict((live.get("Environment") or {}).get("Variables") or {}) != dict(self.env):
            diffs.append("environment")
        if self.role_arn and live.get("Role") != self.role_arn:
            diffs.append("role")
        return diffs

    def api_config(self) -> dict:
        """The keyword arguments shared by create_function and update_function_configuration."""
        out = {
            "Runtime": self.runtime,
            "Handler": self.handler,
            "MemorySize": self.memory,
            "Timeout": self.timeout,
            "Environment": {"Variables": dict(self.env)},
        }
        if self.role_arn:
            out["Role"] = self.role_arn
        return out


def desired_settings(config: DeploymentConfig, opts: AwsOptions, handler: str, env: dict[str, str]) -> FunctionSettings:
    """The :class:`FunctionSettings` for a config (role filled in later when created)."""
    return FunctionSettings(
        runtime=opts.runtime,
        handler=handler,
        memory=config.memory_mb or DEFAULT_MEMORY,
        timeout=config.timeout_seconds or DEFAULT_TIMEOUT,
        architecture=opts.architecture,
        env=tuple(sorted({**env, "WEAVE_DEPLOYMENT": config.name}.items())),  # as apply sets it
        role_arn=opts.role_arn,
    )


def partition_of(region: str) -> str:
    """The AWS partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``...)."""
    return next((part for prefix, part in PARTITIONS if region.startswith(prefix)), "aws")


def basic_policy_arn(region: str) -> str:
    """AWSLambdaBasicExecutionRole's ARN in the partition of ``region``."""
    return BASIC_EXECUTION_POLICY.replace("arn:aws:", f"arn:{partition_of(region)}:", 1)


LOG_POLICY_NAME = "weave-nb-logs"  # the execution role's inline policy, instead of AWSLambdaBasicExecutionRole
_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
_ACCOUNT = re.compile(r"^\d{12}$")


def log_policy_document(region: str, account_id: str, function_name: str) -> dict:
    """The execution role's log permissions, scoped to the function's own log group.

    AWSLambdaBasicExecutionRole allows ``logs:CreateLogGroup``,
    ``logs:CreateLogStream`` and ``logs:PutLogEvents`` on ``*``: every log
    group of the account. This document allows them only on
    ``/aws/lambda/<function_name>`` (the group Lambda writes to) in
    ``region`` of ``account_id``.

    Args:
        region: the function's region, e.g. ``eu-west-1`` (the partition follows from it).
        account_id: the 12-digit account id (e.g. from the role ARN).
        function_name: the Lambda function's name (not an ARN).

    Returns:
        The IAM policy document, for ``iam.put_role_policy(PolicyName=LOG_POLICY_NAME,
        PolicyDocument=json.dumps(doc))``.

    Raises:
        ValueError: a part is malformed or holds a wildcard, which would widen the grant.
    """
    if not _REGION.fullmatch(region or ""):
        raise ValueError("the region must look like eu-west-1")
    if not _ACCOUNT.fullmatch(account_id or ""):
        raise ValueError("the account id must be 12 digits")
    if not FUNCTION_NAME.fullmatch(function_name or ""):
        raise ValueError("the function name must be 1-64 letters, digits, '-' or '_'")
    group = f"arn:{partition_of(region)}:logs:{region}:{account_id}:log-group:/aws/lambda/{function_name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "CreateOwnLogGroup", "Effect": "Allow", "Action": "logs:CreateLogGroup",
             "Resource": [group, f"{group}:*"]},
            {"Sid": "WriteOwnLogStreams", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{group}:*"},
        ],
    }


def account_of(arn: str) -> str:
    """The 12-digit account id in an ARN (``arn:aws:iam::123456789012:role/x`` → ``123456789012``)."""
    return arn.split(":")[4]


def tags_for(name: str, owner: str) -> dict[str, str]:
    """The tags every resource of deployment ``name`` made by inventory ``owner`` carries (the ownership marks)."""
    from ...core import ownership

    return ownership.marks("tag", name, owner)
