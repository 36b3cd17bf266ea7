"""``--format sam``: an AWS SAM template (``template.yaml``) of what an aws deploy makes.

The function is an ``AWS::Serverless::Function`` whose ``CodeUri`` is the zip
beside the template (``sam deploy`` uploads it), with
``AutoPublishAlias: live`` (a new version and the alias move on each code or
settings change) and, for the Function URL endpoint, ``FunctionUrlConfig``
(``AWS_IAM`` unless ``--public``). The role (with the provider's
``weave-nb-logs`` policy), the log group and, for ``--endpoint api``, the
HTTP API pieces are the same resources as in the CloudFormation export, so
names, tags and settings match ``weave deploy``.
"""

from __future__ import annotations

from typing import Any

import yaml

from .aws_model import model_of
from .cloudformation import (
    LAMBDA_SKIPS,
    PUBLIC_URL_SKIP,
    checkov_skips,
    endpoint_resources,
    log_group_resource,
    parameters,
    role_ref,
    secret_resources,
    role_resource,
)
from .readme import aws_readme

FORMAT = "sam"
PROVIDERS = ("aws",)
TEMPLATE = "template.yaml"


class _Dumper(yaml.SafeDumper):
    """Block style, keys in insertion order, long strings unwrapped: the same bytes every time."""


def template(src: Any) -> dict[str, Any]:
    """The SAM template of ``src`` as a dict."""
    m = model_of(src)
    params, env = parameters(m, with_code=False)
    resources: dict[str, Any] = dict(secret_resources(m))
    if m.role:
        resources["WeaveRole"] = role_resource(m)
    resources["WeaveLogGroup"] = log_group_resource(m)
    props: dict[str, Any] = {
        "FunctionName": m.function,
        "Description": m.description,
        "CodeUri": m.artifact,
        "Role": role_ref(m),
        "Runtime": m.runtime,
        "Handler": m.handler,
        "MemorySize": m.memory,
        "Timeout": m.timeout,
        "Architectures": [m.architecture],
        "AutoPublishAlias": "live",
        "Tags": dict(sorted(m.tags.items())),
    }
    if env:
        props["Environment"] = {"Variables": env}
    skips = list(LAMBDA_SKIPS)
    if m.endpoint == "url":
        props["FunctionUrlConfig"] = {"AuthType": m.auth_type}
        if m.public:
            skips.append(PUBLIC_URL_SKIP)
    resources["WeaveFunction"] = {"Type": "AWS::Serverless::Function", "DependsOn": ["WeaveLogGroup"],
                                  "Metadata": checkov_skips(skips), "Properties": props}
    alias = {"Ref": "WeaveFunctionAliaslive"}  # the alias SAM makes for AutoPublishAlias: live
    if m.endpoint == "api":
        resources.update(endpoint_resources(m, alias, {"Ref": "WeaveFunction"}, "WeaveFunctionAliaslive"))
    elif m.endpoint == "url" and m.public:
        # SAM adds the InvokeFunctionUrl permission for AuthType NONE; AWS also wants lambda:InvokeFunction via the URL
        resources["WeaveUrlInvokePermission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": alias, "Action": "lambda:InvokeFunction", "Principal": "*", "InvokedViaFunctionUrl": True}}
    out: dict[str, Any] = {
        "FunctionName": {"Description": "the Lambda function", "Value": m.function},
        "AliasArn": {"Description": "the live alias", "Value": alias},
    }
    if m.endpoint == "url":
        out["Endpoint"] = {"Description": "the Function URL", "Value": {"Fn::GetAtt": ["WeaveFunctionUrl", "FunctionUrl"]}}
    elif m.endpoint == "api":
        out["Endpoint"] = {"Description": "the HTTP API", "Value": {"Fn::GetAtt": ["WeaveHttpApi", "ApiEndpoint"]}}
    doc: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"weave-nb deployment {m.name} (exported by weave export; what weave deploy --provider aws makes)",
    }
    if params:
        doc["Parameters"] = params
    doc["Resources"] = resources
    doc["Outputs"] = out
    return doc


def dump_yaml(data: Any) -> bytes:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=10_000).encode()


def render(src: Any) -> dict[str, bytes]:
    """``template.yaml``, the zip it names and README.md."""
    m = model_of(src)
    return {
        TEMPLATE: dump_yaml(template(src)),
        m.artifact: src.artifact.data,
        "README.md": aws_readme(FORMAT, m).encode(),
    }
