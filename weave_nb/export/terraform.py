"""``--format terraform``: Terraform JSON (``main.tf.json``) of what an aws or gcp deploy makes.

aws (default): the role ``weave-nb-<name>`` with its inline ``weave-nb-logs``
policy, the log group, the function from the zip beside the file
(``publish = true``: each change publishes a version), the ``live`` alias,
and the Function URL (with the two permissions for ``--public``) or the
HTTP API pieces. gcp: a private source bucket, the zip as an object in it,
the Cloud Functions (2nd gen) function built from it, and, for
``--public``, the ``roles/run.invoker`` binding for ``allUsers`` on its
Cloud Run service. Each environment variable is a ``sensitive`` variable
``env_<NAME>``; each managed secret is read from the provider's secret
store by reference. checkov findings that do not apply are skipped inside
the resource with a ``"//"`` comment (Terraform ignores ``"//"`` keys)
giving the reason.

No Terraform run is made here: the tests check the file against the
argument names of the providers' documented schemas
(``tests/data/terraform-schema-subset.json``) and run checkov on it.
"""

from __future__ import annotations

import json
from typing import Any

from .aws_model import SECRETS_POLICY, AwsModel, log_policy, model_of, secret_id, trust_policy
from .cloudformation import DEPLOYMENT_VAR, LAMBDA_SKIPS, LOG_SKIPS, PUBLIC_URL_SKIP, dump_json
from .readme import aws_readme, gcp_readme

FORMAT = "terraform"
PROVIDERS = ("aws", "gcp")
MAIN = "main.tf.json"
XRAY_SKIP = ("CKV_AWS_50", "weave deploy turns no X-Ray tracing on; the runtime logs each agent's timings to the log group")
PUBLIC_PERMISSION_SKIP = ("CKV_AWS_301", "--public asked for a Function URL anyone may call")


def skip_comment(pairs: Any) -> str:
    """A checkov skip comment for several checks: ``checkov:skip=ID1,ID2:reasons``."""
    pairs = list(pairs)
    return "checkov:skip=" + ",".join(cid for cid, _ in pairs) + ":" + "; ".join(f"{cid}: {why}" for cid, why in pairs)


def env_variables(names: tuple[str, ...], secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {f"env_{n}": {"type": "string", "sensitive": True, "description": f"the value of the environment variable {n}"}
           for n in names}
    out.update({f"secret_{n}": {"type": "string", "sensitive": True, "description": f"the value of the managed secret {n}"}
                for n in secrets})
    return out


def _aws(src: Any) -> tuple[dict[str, Any], AwsModel]:
    m = model_of(src)
    tags = dict(sorted(m.tags.items()))
    fn_ref = "aws_lambda_function.weave"
    variables: dict[str, Any] = {"region": {"type": "string", "default": m.region, "description": "the AWS region"}}
    variables.update(env_variables(m.env_names, m.secret_names))
    data: dict[str, Any] = {"aws_caller_identity": {"current": {}}, "aws_partition": {"current": {}}}
    resources: dict[str, Any] = {}
    if m.role:
        policy = log_policy(m.function, "${data.aws_partition.current.partition}", "${var.region}",
                            "${data.aws_caller_identity.current.account_id}")
        resources["aws_iam_role"] = {"weave": {
            "name": m.role, "description": m.role_description, "assume_role_policy": json.dumps(trust_policy()), "tags": tags}}
        resources["aws_iam_role_policy"] = {"logs": {
            "name": "weave-nb-logs", "role": "${aws_iam_role.weave.id}", "policy": json.dumps(policy)}}
    resources["aws_cloudwatch_log_group"] = {"weave": {
        "//": skip_comment(LOG_SKIPS + (("CKV_AWS_338", "30 days unless --option log_retention_days=N sets another "
                                         "retention; a year of logs is a choice, not a requirement"),)),
        "name": m.log_group, "retention_in_days": m.retention, "tags": tags}}
    env: dict[str, str] = {n: f"${{var.env_{n}}}" for n in m.env_names}
    env[DEPLOYMENT_VAR] = m.name  # as a deploy sets it: named in every request record
    if m.secret_names:  # as a deploy makes them: the secrets, the role's read policy, WEAVE_SECRET_ARNS
        from ..core.secrets import SECRET_ARNS_VAR
        from ..providers.aws.secret_store import secrets_policy

        resources["aws_secretsmanager_secret"] = {f"secret_{key}": {
            "//": skip_comment([("CKV_AWS_149", "the secret uses Secrets Manager's AWS managed key, as weave deploy makes it"),
                                ("CKV2_AWS_57", "the value is yours (an API key): rotate it by applying a new value")]),
            "name": secret_id(m.name, key), "description": f"managed secret {key} of the weave-nb deployment {m.name}",
            "tags": tags} for key in m.secret_names}
        resources["aws_secretsmanager_secret_version"] = {f"secret_{key}": {
            "secret_id": f"${{aws_secretsmanager_secret.secret_{key}.id}}", "secret_string": f"${{var.secret_{key}}}"}
            for key in m.secret_names}
        if m.role:
            doc = secrets_policy([f"${{aws_secretsmanager_secret.secret_{key}.arn}}" for key in m.secret_names])
            resources["aws_iam_role_policy"]["secrets"] = {"name": SECRETS_POLICY, "role": "${aws_iam_role.weave.id}",
                                                           "policy": json.dumps(doc)}
        pairs = ", ".join(f'"{key}" = aws_secretsmanager_secret.secret_{key}.arn' for key in sorted(m.secret_names))
        env[SECRET_ARNS_VAR] = f"${{jsonencode({{{pairs}}})}}"
    function: dict[str, Any] = {
        "//": skip_comment(LAMBDA_SKIPS + (XRAY_SKIP,)),
        "function_name": m.function,
        "description": m.description,
        "role": m.role_arn or "${aws_iam_role.weave.arn}",
        "runtime": m.runtime,
        "handler": m.handler,
        "memory_size": m.memory,
        "timeout": m.timeout,
        "architectures": [m.architecture],
        "package_type": "Zip",
        "filename": f"${{path.module}}/{m.artifact}",
        "source_code_hash": f'${{filebase64sha256("${{path.module}}/{m.artifact}")}}',
        "publish": True,
        "tags": tags,
        "depends_on": ["aws_cloudwatch_log_group.weave"],
    }
    function["environment"] = {"variables": env}
    resources["aws_lambda_function"] = {"weave": function}
    resources["aws_lambda_alias"] = {"live": {
        "name": "live", "description": m.description, "function_name": f"${{{fn_ref}.function_name}}",
        "function_version": f"${{{fn_ref}.version}}"}}
    outputs: dict[str, Any] = {"function_name": {"value": f"${{{fn_ref}.function_name}}"},
                               "alias_arn": {"value": "${aws_lambda_alias.live.arn}"}}
    base = {"function_name": f"${{{fn_ref}.function_name}}", "qualifier": "${aws_lambda_alias.live.name}"}
    if m.endpoint == "url":
        url: dict[str, Any] = {**base, "authorization_type": m.auth_type}
        if m.public:
            url = {"//": skip_comment([PUBLIC_URL_SKIP]), **url}
        resources["aws_lambda_function_url"] = {"weave": url}
        outputs["endpoint"] = {"value": "${aws_lambda_function_url.weave.function_url}"}
        if m.public:
            resources["aws_lambda_permission"] = {
                "url_public": {"//": skip_comment([PUBLIC_PERMISSION_SKIP]), **base, "statement_id": "weave-nb-url-public", "action": "lambda:InvokeFunctionUrl",
                               "principal": "*", "function_url_auth_type": "NONE"},
                "url_invoke": {"//": skip_comment([PUBLIC_PERMISSION_SKIP]), **base, "statement_id": "weave-nb-url-invoke", "action": "lambda:InvokeFunction",
                               "principal": "*", "invoked_via_function_url": True},
            }
    elif m.endpoint == "api":
        api = "${aws_apigatewayv2_api.weave.id}"
        resources["aws_apigatewayv2_api"] = {"weave": {
            "name": m.function, "protocol_type": "HTTP", "description": m.description, "tags": tags}}
        resources["aws_apigatewayv2_integration"] = {"weave": {
            "api_id": api, "integration_type": "AWS_PROXY", "integration_uri": "${aws_lambda_alias.live.arn}",
            "payload_format_version": "2.0"}}
        route: dict[str, Any] = {"api_id": api, "route_key": "$default", "authorization_type": m.auth_type,
                                 "target": "integrations/${aws_apigatewayv2_integration.weave.id}"}
        if m.public:
            route["//"] = skip_comment([("CKV_AWS_309", "--public asked for a route anyone may call")])
        resources["aws_apigatewayv2_route"] = {"weave": route}
        resources["aws_apigatewayv2_stage"] = {"weave": {
            "//": skip_comment([("CKV_AWS_76", "weave deploy keeps no access log for the HTTP API; "
                                               "the function logs every call to its log group")]),
            "api_id": api, "name": "$default", "auto_deploy": True, "tags": tags}}
        resources["aws_lambda_permission"] = {"api": {
            **base, "statement_id": "weave-nb-apigw", "action": "lambda:InvokeFunction", "principal": "apigateway.amazonaws.com",
            "source_arn": "${aws_apigatewayv2_api.weave.execution_arn}/*/*"}}
        outputs["endpoint"] = {"value": "${aws_apigatewayv2_api.weave.api_endpoint}"}
    doc = {
        "//": f"weave-nb deployment {m.name}: what weave deploy --provider aws makes (exported by weave export)",
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": ">= 6.0"}}},
        "provider": {"aws": {"region": "${var.region}"}},
        "variable": variables,
        "data": data,
        "resource": resources,
        "output": outputs,
    }
    return doc, m


def _gcp(src: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from ..core import ownership
    from ..providers.gcp.plan import ENTRY_POINT, HASH, MEMORY

    config, provider = src.config, src.provider_impl
    opts = provider.options(config)
    fid = opts.function_id or src.name
    region = config.region or provider.default_region
    labels = {**ownership.marks("label", src.name, src.owner), HASH: src.artifact.content_hash[:40]}
    labels = dict(sorted(labels.items()))
    artifact = f"{src.name}-gcp.zip"
    variables: dict[str, Any] = {
        "project": {"type": "string", "description": "the Google Cloud project id", **({"default": opts.project} if opts.project else {})},
        "region": {"type": "string", "default": region, "description": "the Cloud Functions region"},
    }
    variables.update(env_variables(src.env_names, src.secret_names))
    service: dict[str, Any] = {
        "available_memory": MEMORY[config.memory_mb or 256],
        "timeout_seconds": config.timeout_seconds or 60,
        "max_instance_count": opts.max_instances,
        "ingress_settings": "ALLOW_ALL",
    }
    # as a deploy sets them: the env names by reference, and WEAVE_DEPLOYMENT (named in every request record)
    service["environment_variables"] = {**{n: f"${{var.env_{n}}}" for n in src.env_names}, DEPLOYMENT_VAR: src.name}
    if src.secret_names:  # Secret Manager secrets weave-<name>-<NAME>, given to the function by reference (version latest)
        service["secret_environment_variables"] = [
            {"key": key, "project_id": "${var.project}", "secret": f"${{google_secret_manager_secret.secret_{key}.secret_id}}",
             "version": "latest"} for key in src.secret_names]
    resources: dict[str, Any] = {
        "google_storage_bucket": {"source": {
            "//": skip_comment([("CKV_GCP_62", "the bucket only holds the function's source zip, read once per build; "
                                               "access logs of it add nothing")]),
            "name": f"${{var.project}}-weave-nb-{ownership.label_value(src.name)}-source",
            "location": "${var.region}",
            "uniform_bucket_level_access": True,
            "public_access_prevention": "enforced",
            "versioning": {"enabled": True},
            "labels": labels,
        }},
        "google_storage_bucket_object": {"source": {
            "name": f"{src.name}/{src.artifact.content_hash[:16]}.zip",
            "bucket": "${google_storage_bucket.source.name}",
            "source": f"${{path.module}}/{artifact}",
            "content_type": "application/zip",
        }},
        "google_cloudfunctions2_function": {"weave": {
            "//": skip_comment([("CKV_GCP_124", "an HTTP function called from anywhere, as weave deploy makes it; "
                                                "without --public, Cloud Run IAM still requires an identity token")]),
            "name": fid,
            "location": "${var.region}",
            "description": f"weave-nb deployment {src.name}",
            "labels": labels,
            "build_config": {
                "runtime": opts.runtime,
                "entry_point": ENTRY_POINT,
                "source": {"storage_source": {"bucket": "${google_storage_bucket.source.name}",
                                              "object": "${google_storage_bucket_object.source.name}"}},
            },
            "service_config": service,
        }},
    }
    if src.secret_names:
        from ..providers.gcp.secret_steps import secret_id as gcp_secret_id

        resources["google_secret_manager_secret"] = {f"secret_{key}": {
            "secret_id": gcp_secret_id(src.name, key), "labels": labels, "replication": {"auto": {}}} for key in src.secret_names}
        resources["google_secret_manager_secret_version"] = {f"secret_{key}": {
            "secret": f"${{google_secret_manager_secret.secret_{key}.id}}", "secret_data": f"${{var.secret_{key}}}"}
            for key in src.secret_names}
        fn = resources["google_cloudfunctions2_function"]["weave"]
        fn["depends_on"] = [f"google_secret_manager_secret_version.secret_{key}" for key in src.secret_names]
    if config.public:
        resources["google_cloud_run_service_iam_member"] = {"public": {
            "//": skip_comment([("CKV_GCP_102", "--public asked for a function anyone may call")]),
            "project": "${var.project}",
            "location": "${var.region}",
            "service": "${google_cloudfunctions2_function.weave.service_config[0].service}",
            "role": "roles/run.invoker",
            "member": "allUsers",
        }}
    doc = {
        "//": f"weave-nb deployment {src.name}: what weave deploy --provider gcp makes (exported by weave export)",
        "terraform": {
                      "required_providers": {"google": {"source": "hashicorp/google", "version": ">= 6.0"}}},
        "provider": {"google": {"project": "${var.project}", "region": "${var.region}"}},
        "variable": variables,
        "resource": resources,
        "output": {"endpoint": {"value": "${google_cloudfunctions2_function.weave.url}"},
                   "function": {"value": "${google_cloudfunctions2_function.weave.name}"}},
    }
    return doc, {"function_id": fid, "region": region, "artifact": artifact, "public": bool(config.public)}


def document(src: Any) -> dict[str, Any]:
    """The ``main.tf.json`` document of ``src`` as a dict."""
    return (_aws(src) if src.provider == "aws" else _gcp(src))[0]


def render(src: Any) -> dict[str, bytes]:
    """``main.tf.json``, the zip it names and README.md."""
    if src.provider == "aws":
        doc, m = _aws(src)
        return {MAIN: dump_json(doc), m.artifact: src.artifact.data, "README.md": aws_readme(FORMAT, m).encode()}
    doc, info = _gcp(src)
    return {MAIN: dump_json(doc), info["artifact"]: src.artifact.data,
            "README.md": gcp_readme(src, info["function_id"], info["region"], info["artifact"], info["public"]).encode()}
