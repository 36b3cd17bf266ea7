"""What an aws deploy would make, as plain values every AWS export format renders from.

Names, settings, tags and the log policy come from the aws provider's own
helpers (:mod:`weave_nb.providers.aws.settings`), so an exported template
describes the same role, function, alias, endpoint and log group as
``weave deploy --provider aws``. Env values are never read here: only names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..core.artifact import LAMBDA_HANDLER
from ..providers.aws import settings as aws

# a sentinel region and account: log_policy_document validates them, the formats swap in their own references
_REGION, _ACCOUNT = "us-east-1", "000000000000"
DEFAULT_RETENTION_DAYS = 30
ARTIFACT_NAME = "{name}-aws.zip"


@dataclass(frozen=True)
class AwsModel:
    """The aws deployment to export.

    Attributes:
        name: the deployment name.
        function: the Lambda function name (``weave-<name>`` unless set).
        role: the execution role name made (``weave-nb-<name>``), or None when ``role_arn`` is given.
        role_arn: the existing execution role to use (``--option role_arn=...``), or None.
        runtime, handler, memory, timeout, architecture: the function settings a deploy sets.
        region: the region the deploy would use.
        endpoint: ``url``, ``api`` or ``none``.
        public: anonymous calls allowed (``--public``).
        retention: the log group's retention in days (the option, else 30).
        tags: the ownership marks (AWS tag spelling).
        env_names: the environment variables the function needs (names only).
        secret_names: the managed secrets (names only): Secrets Manager secrets ``weave/<name>/<NAME>`` whose ARNs
            the function finds in ``WEAVE_SECRET_ARNS``, as a deploy makes them.
        artifact: the zip's file name inside the export folder.
        artifact_key: the S3 key it is uploaded to (holds the content hash: a changed zip gets a new key).
        description: the function's description, as a deploy writes it.
        role_description: the role's description, as a deploy writes it.
    """

    name: str
    function: str
    role: str | None
    role_arn: str | None
    runtime: str
    handler: str
    memory: int
    timeout: int
    architecture: str
    region: str
    endpoint: str
    public: bool
    retention: int
    tags: dict[str, str]
    env_names: tuple[str, ...]
    secret_names: tuple[str, ...]
    artifact: str
    artifact_key: str
    description: str
    role_description: str

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.function}"

    @property
    def auth_type(self) -> str:
        return "NONE" if self.public else "AWS_IAM"


def model_of(src: Any) -> AwsModel:
    """The :class:`AwsModel` of an :class:`~weave_nb.export.source.ExportSource` on aws."""
    config, provider = src.config, src.provider_impl
    opts = provider.options(config)
    from ..providers.aws import auth as aws_auth

    region = aws_auth.require_region(aws_auth.region_of(provider.auth, config))
    return AwsModel(
        name=src.name,
        function=aws.function_name(config, opts),
        role=None if opts.role_arn else aws.role_name(config),
        role_arn=opts.role_arn,
        runtime=opts.runtime,
        handler=LAMBDA_HANDLER,
        memory=config.memory_mb or aws.DEFAULT_MEMORY,
        timeout=config.timeout_seconds or aws.DEFAULT_TIMEOUT,
        architecture=opts.architecture,
        region=region,
        endpoint=opts.endpoint,
        public=bool(config.public),
        retention=opts.log_retention_days or DEFAULT_RETENTION_DAYS,
        tags=aws.tags_for(src.name, src.owner),
        env_names=tuple(src.env_names),
        secret_names=tuple(src.secret_names),
        artifact=ARTIFACT_NAME.format(name=src.name),
        artifact_key=f"weave-nb/{src.name}/{src.artifact.content_hash[:16]}.zip",
        description=f"weave-nb deployment {src.name}",
        role_description=f"Execution role of the weave-nb deployment {src.name}",
    )


def log_policy(fname: str, partition: str, region: str, account: str) -> dict:
    """The provider's ``weave-nb-logs`` policy document with the ARN prefix spelt by the format.

    Args:
        fname: the function name.
        partition, region, account: how the format refers to them (``${AWS::Partition}``, ``${var.region}``...).
    """
    doc = aws.log_policy_document(_REGION, _ACCOUNT, fname)
    prefix = f"arn:aws:logs:{_REGION}:{_ACCOUNT}:"
    wanted = f"arn:{partition}:logs:{region}:{account}:"

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(prefix, wanted)
        if isinstance(value, list):
            return [swap(v) for v in value]
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        return value

    return swap(doc)


def trust_policy() -> dict:
    """The role's trust policy (lambda.amazonaws.com may assume it), as the provider creates it."""
    import json

    return json.loads(aws.TRUST_POLICY)


def parameter_names(names: tuple[str, ...], prefix: str) -> dict[str, str]:
    """A CloudFormation parameter name (alphanumeric only) for each env or secret name, without collisions."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = prefix + re.sub(r"[^A-Za-z0-9]", "", name)
        candidate, n = base, 2
        while candidate in used:
            candidate, n = f"{base}{n}", n + 1
        used.add(candidate)
        out[name] = candidate
    return out


def secret_id(name: str, key: str) -> str:
    """The Secrets Manager name of managed secret ``key`` of deployment ``name`` (the aws provider's)."""
    from ..providers.aws.secret_store import secret_id as provider_secret_id

    return provider_secret_id(name, key)


SECRETS_POLICY = "weave-nb-secrets"  # the role's inline policy: GetSecretValue on the deployment's secrets only
