"""``--format cloudformation``: a CloudFormation template (JSON) of what an aws deploy makes.

Resources: the execution role ``weave-nb-<name>`` with the inline policy
``weave-nb-logs`` (the provider's own document, scoped to the function's log
group), the log group with its retention, the function ``weave-<name>``
(code from the zip in S3: the ``ArtifactBucket``/``ArtifactKey``
parameters), a published version, the ``live`` alias, and the endpoint: a
Function URL on ``live`` (``AWS_IAM`` unless ``--public``, then with the two
permissions AWS requires) or an HTTP API (``--endpoint api``). Every
resource carries the ownership tags. Each environment variable is a
``NoEcho`` parameter; each managed secret a Secrets Manager dynamic
reference. The version's logical id holds a hash of the code and settings,
so a changed export publishes a new version and moves the alias.

checkov findings that do not apply are skipped next to the resource, each
with its reason (``Metadata.checkov.skip``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .aws_model import SECRETS_POLICY, AwsModel, log_policy, model_of, parameter_names, secret_id, trust_policy
from .readme import aws_readme

FORMAT = "cloudformation"
PROVIDERS = ("aws",)
TEMPLATE = "template.json"
DEPLOYMENT_VAR = "WEAVE_DEPLOYMENT"

# checkov findings that a weave deploy does not address either, with the reason (shared by sam and terraform)
LAMBDA_SKIPS = (
    ("CKV_AWS_115", "concurrency is left to the account limit, as weave deploy does; set ReservedConcurrentExecutions to cap it"),
    ("CKV_AWS_116", "called synchronously through its URL or API: a failed call is answered to the caller, no event is lost"),
    ("CKV_AWS_117", "the function calls public LLM APIs and needs no private network; a VPC would need a NAT gateway"),
    ("CKV_AWS_173", "environment values are encrypted at rest with the AWS managed key; secrets belong in managed secrets"),
    ("CKV_AWS_272", "the package is built by weave export from this folder's zip; code signing needs a signing profile"),
)
LOG_SKIPS = (
    ("CKV_AWS_158", "the log group uses CloudWatch's default encryption; a customer managed KMS key is optional"),
)
PUBLIC_URL_SKIP = ("CKV_AWS_258", "--public asked for a Function URL anyone may call (AuthType NONE)")


def checkov_skips(pairs: Any) -> dict:
    """``Metadata`` that makes checkov skip each ``(check id, reason)``."""
    return {"checkov": {"skip": [{"id": cid, "comment": why} for cid, why in pairs]}}


def sub(value: Any) -> Any:
    """Wrap every string holding a ``${AWS::...}`` reference in ``Fn::Sub``."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if "${AWS::" in value else value
    if isinstance(value, list):
        return [sub(v) for v in value]
    if isinstance(value, dict):
        return {k: sub(v) for k, v in value.items()}
    return value


def tag_list(m: AwsModel) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(m.tags.items())]


def parameters(m: AwsModel, with_code: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """The template's parameters (code location when ``with_code``, one ``NoEcho`` per env name) and the env map."""
    params: dict[str, Any] = {}
    if with_code:
        params["ArtifactBucket"] = {"Type": "String", "Description": f"the S3 bucket holding {m.artifact}"}
        params["ArtifactKey"] = {"Type": "String", "Default": m.artifact_key,
                                  "Description": f"the S3 key of {m.artifact} (a new key for each new package)"}
    names = parameter_names(m.env_names, "Env")
    for env, pname in names.items():
        params[pname] = {"Type": "String", "NoEcho": True, "Description": f"the value of the environment variable {env}"}
    env: dict[str, Any] = {env: {"Ref": pname} for env, pname in names.items()}
    env[DEPLOYMENT_VAR] = m.name  # as a deploy sets it: the runtime names the deployment in every request record
    secrets = secret_ids(m)
    for key, pname in parameter_names(m.secret_names, "Secret").items():
        params[pname] = {"Type": "String", "NoEcho": True, "Description": f"the value of the managed secret {key}"}
    if secrets:  # as a deploy sets it: the runtime reads each secret's ARN from here at cold start
        from ..core.secrets import SECRET_ARNS_VAR

        env[SECRET_ARNS_VAR] = {"Fn::Sub": json.dumps({k: "${" + rid + "}" for k, rid in sorted(secrets.items())},
                                                      separators=(",", ":"))}
    return params, env


def secret_ids(m: AwsModel) -> dict[str, str]:
    """The logical id of each managed secret's AWS::SecretsManager::Secret."""
    return {key: "WeaveSecret" + pname[len("Secret"):] for key, pname in parameter_names(m.secret_names, "Secret").items()}


SECRET_SKIPS = (
    ("CKV_AWS_149", "the secret uses Secrets Manager's AWS managed key, as weave deploy makes it"),
    ("CKV2_AWS_57", "the value is yours (an API key): rotate it by exporting or deploying again with the new value"),
)


def secret_resources(m: AwsModel) -> dict[str, Any]:
    """Each managed secret (its value from a NoEcho parameter) as a deploy makes it: name, tags."""
    out: dict[str, Any] = {}
    pnames = parameter_names(m.secret_names, "Secret")
    for key, rid in secret_ids(m).items():
        out[rid] = {"Type": "AWS::SecretsManager::Secret", "Metadata": checkov_skips(SECRET_SKIPS), "Properties": {
            "Name": secret_id(m.name, key), "Description": f"managed secret {key} of the weave-nb deployment {m.name}",
            "SecretString": {"Ref": pnames[key]}, "Tags": tag_list(m)}}
    return out


def role_resource(m: AwsModel) -> dict[str, Any]:
    policy = log_policy(m.function, "${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")
    policies: list[dict[str, Any]] = [{"PolicyName": "weave-nb-logs", "PolicyDocument": sub(policy)}]
    if m.secret_names:
        from ..providers.aws.secret_store import secrets_policy

        doc = secrets_policy([])
        doc["Statement"][0]["Resource"] = [{"Ref": rid} for _, rid in sorted(secret_ids(m).items())]
        policies.append({"PolicyName": SECRETS_POLICY, "PolicyDocument": doc})
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": m.role,
            "Description": m.role_description,
            "AssumeRolePolicyDocument": trust_policy(),
            "Policies": policies,
            "Tags": tag_list(m),
        },
    }


def log_group_resource(m: AwsModel) -> dict[str, Any]:
    return {
        "Type": "AWS::Logs::LogGroup",
        "Metadata": checkov_skips(LOG_SKIPS),
        "Properties": {"LogGroupName": m.log_group, "RetentionInDays": m.retention, "Tags": tag_list(m)},
    }


def role_ref(m: AwsModel) -> Any:
    return m.role_arn if m.role_arn else {"Fn::GetAtt": ["WeaveRole", "Arn"]}


def endpoint_resources(m: AwsModel, alias_ref: Any, function_ref: Any, alias_id: str) -> dict[str, Any]:
    """The Function URL (and its permissions) or the HTTP API pieces, on the ``live`` alias."""
    out: dict[str, Any] = {}
    if m.endpoint == "url":
        url: dict[str, Any] = {"Type": "AWS::Lambda::Url", "DependsOn": [alias_id],
                               "Properties": {"TargetFunctionArn": function_ref, "Qualifier": "live", "AuthType": m.auth_type}}
        if m.public:
            url["Metadata"] = checkov_skips([PUBLIC_URL_SKIP])
            out["WeaveUrlPublicPermission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": alias_ref, "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
                "FunctionUrlAuthType": "NONE"}}
            out["WeaveUrlInvokePermission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
                "FunctionName": alias_ref, "Action": "lambda:InvokeFunction", "Principal": "*",
                "InvokedViaFunctionUrl": True}}
        out["WeaveFunctionUrl"] = url
    elif m.endpoint == "api":
        out["WeaveHttpApi"] = {"Type": "AWS::ApiGatewayV2::Api", "Properties": {
            "Name": m.function, "ProtocolType": "HTTP", "Description": m.description, "Tags": dict(sorted(m.tags.items()))}}
        out["WeaveApiIntegration"] = {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
            "ApiId": {"Ref": "WeaveHttpApi"}, "IntegrationType": "AWS_PROXY", "IntegrationUri": alias_ref,
            "PayloadFormatVersion": "2.0"}}
        route: dict[str, Any] = {"Type": "AWS::ApiGatewayV2::Route", "Properties": {
            "ApiId": {"Ref": "WeaveHttpApi"}, "RouteKey": "$default", "AuthorizationType": m.auth_type,
            "Target": {"Fn::Join": ["/", ["integrations", {"Ref": "WeaveApiIntegration"}]]}}}
        if m.public:
            route["Metadata"] = checkov_skips([("CKV_AWS_309", "--public asked for a route anyone may call")])
        out["WeaveApiRoute"] = route
        out["WeaveApiStage"] = {"Type": "AWS::ApiGatewayV2::Stage", "Metadata": checkov_skips([
            ("CKV_AWS_95", "weave deploy keeps no access log for the HTTP API; the function logs every call to its log group")]),
            "Properties": {"ApiId": {"Ref": "WeaveHttpApi"}, "StageName": "$default", "AutoDeploy": True}}
        out["WeaveApiPermission"] = {"Type": "AWS::Lambda::Permission", "Properties": {
            "FunctionName": alias_ref, "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com",
            "SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WeaveHttpApi}/*/*"}}}
    return out


def outputs(m: AwsModel) -> dict[str, Any]:
    out: dict[str, Any] = {
        "FunctionName": {"Description": "the Lambda function", "Value": m.function},
        "AliasArn": {"Description": "the live alias", "Value": {"Ref": "WeaveAlias"}},
    }
    if m.endpoint == "url":
        out["Endpoint"] = {"Description": "the Function URL" + ("" if m.public else " (AWS_IAM: sign with SigV4)"),
                           "Value": {"Fn::GetAtt": ["WeaveFunctionUrl", "FunctionUrl"]}}
    elif m.endpoint == "api":
        out["Endpoint"] = {"Description": "the HTTP API" + ("" if m.public else " (AWS_IAM: sign with SigV4)"),
                           "Value": {"Fn::GetAtt": ["WeaveHttpApi", "ApiEndpoint"]}}
    return out


def version_id(prefix: str, content_hash: str, properties: Any) -> str:
    """A logical id that changes with the code and the settings (so a new version is published)."""
    digest = hashlib.sha256((content_hash + json.dumps(properties, sort_keys=True)).encode()).hexdigest()[:12]
    return f"{prefix}{digest}"


def template(src: Any) -> dict[str, Any]:
    """The CloudFormation template of ``src`` as a dict."""
    m = model_of(src)
    params, env = parameters(m, with_code=True)
    resources: dict[str, Any] = {}
    resources.update(secret_resources(m))
    if m.role:
        resources["WeaveRole"] = role_resource(m)
    resources["WeaveLogGroup"] = log_group_resource(m)
    props: dict[str, Any] = {
        "FunctionName": m.function,
        "Description": m.description,
        "Role": role_ref(m),
        "Runtime": m.runtime,
        "Handler": m.handler,
        "MemorySize": m.memory,
        "Timeout": m.timeout,
        "Architectures": [m.architecture],
        "PackageType": "Zip",
        "Code": {"S3Bucket": {"Ref": "ArtifactBucket"}, "S3Key": {"Ref": "ArtifactKey"}},
        "Tags": tag_list(m),
    }
    if env:
        props["Environment"] = {"Variables": env}
    resources["WeaveFunction"] = {"Type": "AWS::Lambda::Function", "DependsOn": ["WeaveLogGroup"],
                                  "Metadata": checkov_skips(LAMBDA_SKIPS), "Properties": props}
    vid = version_id("WeaveVersion", src.artifact.content_hash, props)
    resources[vid] = {"Type": "AWS::Lambda::Version", "Properties": {
        "FunctionName": {"Ref": "WeaveFunction"}, "Description": f"{m.description}, package {src.artifact.content_hash[:16]}"}}
    resources["WeaveAlias"] = {"Type": "AWS::Lambda::Alias", "Properties": {
        "Name": "live", "FunctionName": {"Ref": "WeaveFunction"}, "FunctionVersion": {"Fn::GetAtt": [vid, "Version"]}}}
    resources.update(endpoint_resources(m, {"Ref": "WeaveAlias"}, {"Ref": "WeaveFunction"}, "WeaveAlias"))
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"weave-nb deployment {m.name} (exported by weave export; what weave deploy --provider aws makes)",
        "Parameters": params,
        "Resources": resources,
        "Outputs": outputs(m),
    }


def dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def render(src: Any) -> dict[str, bytes]:
    """``template.json``, the zip it names and README.md."""
    m = model_of(src)
    return {
        TEMPLATE: dump_json(template(src)),
        m.artifact: src.artifact.data,
        "README.md": aws_readme(FORMAT, m).encode(),
    }
