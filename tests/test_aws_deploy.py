"""Deploy, update, no-op redeploy and undeploy of the aws provider against moto_server over HTTP."""

from __future__ import annotations

import io
import json
import time

import pytest

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()


def weave_text(greeting: str = "Greet the user warmly.") -> str:
    return HELLO.replace("Greet the user warmly.", greeting)


def deploy(mgr, name="demo", text=None, **values):
    return mgr.deploy({"name": name, "provider": "aws", "weave_text": text or weave_text(), **values})


def test_first_deploy_creates_role_function_alias_url_and_tags(aws):
    mgr = aws.manager()
    info = deploy(mgr, memory_mb=512, timeout_seconds=30, env={"GREETING_STYLE": "warm"})
    assert info.status.value == "active"
    iam, lam = aws.client("iam"), aws.client("lambda")
    role = iam.get_role(RoleName="weave-nb-demo")["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"]["Service"] == "lambda.amazonaws.com"
    assert iam.list_attached_role_policies(RoleName="weave-nb-demo")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="weave-nb-demo")["PolicyNames"] == ["weave-nb-logs"]
    fn = lam.get_function(FunctionName="weave-demo")
    conf = fn["Configuration"]
    assert conf["Runtime"] == "python3.12"
    assert conf["Handler"] == "weave_runtime.lambda_adapter.handler"
    assert (conf["MemorySize"], conf["Timeout"]) == (512, 30)
    assert conf["Environment"]["Variables"] == {"GREETING_STYLE": "warm", "WEAVE_DEPLOYMENT": "demo"}
    assert conf["Role"] == role["Arn"]
    assert fn["Tags"]["weave-nb:managed"] == "true" and fn["Tags"]["weave-nb:name"] == "demo"
    alias = lam.get_alias(FunctionName="weave-demo", Name="live")
    assert alias["FunctionVersion"] == "1" == info.version
    url = lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")
    assert url["AuthType"] == "AWS_IAM"
    assert info.endpoint == url["FunctionUrl"]
    assert "SigV4" in info.details["note"]
    kinds = {r.kind for r in mgr.status("demo", "aws").resources}
    assert {"role", "role-log-policy", "function", "version", "alias", "function-url"} <= kinds
    # the environment value is a secret: never in the inventory
    assert "warm" not in (aws.home / "inventory.db").read_bytes().decode(errors="replace")


def test_public_url_is_anonymous_with_both_permissions(aws):
    info = deploy(aws.manager(), public=True)
    lam = aws.client("lambda")
    assert lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")["AuthType"] == "NONE"
    policy = json.loads(lam.get_policy(FunctionName="weave-demo", Qualifier="live")["Policy"])
    actions = sorted(s["Action"] for s in policy["Statement"])
    assert actions == ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"]
    assert "note" not in info.details or not info.details.get("note")


def test_api_endpoint_builds_integration_route_stage_and_permission(aws):
    info = deploy(aws.manager(), options={"endpoint": "api"})
    gw, lam = aws.client("apigatewayv2"), aws.client("lambda")
    apis = gw.get_apis()["Items"]
    assert len(apis) == 1 and apis[0]["Tags"]["weave-nb:name"] == "demo"
    api_id = apis[0]["ApiId"]
    integ = gw.get_integrations(ApiId=api_id)["Items"]
    assert integ[0]["IntegrationType"] == "AWS_PROXY"
    assert integ[0]["IntegrationUri"].endswith(":function:weave-demo:live")
    route = gw.get_routes(ApiId=api_id)["Items"][0]
    assert route["RouteKey"] == "$default" and route["Target"] == f"integrations/{integ[0]['IntegrationId']}"
    assert route["AuthorizationType"] == "AWS_IAM"
    assert gw.get_stage(ApiId=api_id, StageName="$default")["AutoDeploy"] is True
    policy = json.loads(lam.get_policy(FunctionName="weave-demo", Qualifier="live")["Policy"])
    assert policy["Statement"][0]["Principal"] in ({"Service": "apigateway.amazonaws.com"}, "apigateway.amazonaws.com")
    assert api_id in policy["Statement"][0]["Condition"]["ArnLike"]["AWS:SourceArn"]
    assert info.endpoint == apis[0]["ApiEndpoint"]


def test_changed_weave_updates_in_place_publishes_and_moves_alias(aws):
    mgr = aws.manager()
    deploy(mgr)
    lam = aws.client("lambda")
    old_sha = lam.get_function(FunctionName="weave-demo")["Configuration"]["CodeSha256"]
    info = deploy(mgr, text=weave_text("Greet the user briefly."), memory_mb=1024)
    conf = lam.get_function(FunctionName="weave-demo")["Configuration"]
    assert conf["CodeSha256"] != old_sha and conf["MemorySize"] == 1024
    assert lam.get_alias(FunctionName="weave-demo", Name="live")["FunctionVersion"] == "2" == info.version
    assert len(lam.list_functions()["Functions"]) == 1
    # the old version stays for rollback
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="weave-demo")["Versions"]]
    assert "1" in versions and "2" in versions


@pytest.mark.parametrize("values", [
    {},
    {"public": True},
    {"options": {"endpoint": "api"}},
    {"public": True, "options": {"endpoint": "api", "log_retention_days": 30}, "env": {"K": "v"}},
    {"options": {"endpoint": "none", "architecture": "arm64"}},
])
def test_unchanged_redeploy_makes_zero_mutating_calls(aws, values):
    mgr = aws.manager()
    first = deploy(mgr, **values)
    aws.proxy.clear()
    events = []
    again = mgr.deploy({"name": "demo", "provider": "aws", "weave_text": weave_text(), **values}, sink=events.append)
    assert again.message == "no changes"
    finished = [e for e in events if type(e).__name__ == "StepFinished"]
    assert finished and {e.outcome for e in finished} == {"skipped"}
    assert any(type(e).__name__ == "LogLine" and e.text.startswith("no changes") for e in events)
    assert aws.proxy.calls, "the redeploy should have read the live state"
    assert aws.proxy.mutating() == []
    assert again.endpoint == first.endpoint and again.version == first.version


def test_switch_endpoint_from_url_to_api_removes_the_url(aws):
    mgr = aws.manager()
    deploy(mgr)
    deploy(mgr, options={"endpoint": "api"})
    lam = aws.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")
    assert len(aws.client("apigatewayv2").get_apis()["Items"]) == 1


def test_undeploy_leaves_nothing(aws):
    mgr = aws.manager()
    deploy(mgr, options={"endpoint": "api", "log_retention_days": 7, "purge_logs": True}, public=True)
    assert aws.counts() == {"functions": 1, "roles": 1, "apis": 1}
    mgr.destroy("demo", "aws")  # purge_logs was set at deploy time
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    assert aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/weave-demo")["logGroups"] == []
    assert mgr.inventory.get("aws", "demo") is None
    assert not (aws.home / "aws" / "demo").exists()


def _policy_sids(lam):
    try:
        return sorted(s["Sid"] for s in json.loads(lam.get_policy(FunctionName="weave-demo", Qualifier="live")["Policy"])["Statement"])
    except lam.exceptions.ResourceNotFoundException:
        return []


def test_public_then_private_removes_the_permissions(aws):
    mgr = aws.manager()
    deploy(mgr, public=True)
    lam = aws.client("lambda")
    assert _policy_sids(lam) == ["weave-nb-url-invoke", "weave-nb-url-public"]
    deploy(mgr)
    assert lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")["AuthType"] == "AWS_IAM"
    assert _policy_sids(lam) == []
    assert not [r for r in mgr.inventory.resources("aws", "demo") if r.kind == "permission"]


def test_public_url_to_api_and_back_cleans_up_each_time(aws):
    mgr = aws.manager()
    lam, gw = aws.client("lambda"), aws.client("apigatewayv2")
    deploy(mgr, public=True)
    deploy(mgr, public=True, options={"endpoint": "api"})
    assert _policy_sids(lam) == ["weave-nb-apigw"]
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")
    info = deploy(mgr, options={"endpoint": "url"})
    assert gw.get_apis()["Items"] == []
    assert _policy_sids(lam) == []
    assert info.endpoint == lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")["FunctionUrl"]
    kinds = sorted(r.kind for r in mgr.inventory.resources("aws", "demo"))
    assert "api" not in kinds and kinds.count("function-url") == 1


def test_no_endpoint_and_other_settings(aws):
    info = deploy(aws.manager(), options={"endpoint": "none", "architecture": "arm64", "runtime": "python3.11", "log_retention_days": 14})
    lam = aws.client("lambda")
    conf = lam.get_function(FunctionName="weave-demo")["Configuration"]
    assert conf["Architectures"] == ["arm64"] and conf["Runtime"] == "python3.11"
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")
    assert info.endpoint is None and "weave invoke" in info.details["note"]
    groups = aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/weave-demo")["logGroups"]
    assert groups[0]["retentionInDays"] == 14


def test_architecture_change_goes_through_a_code_update(aws):
    mgr = aws.manager()
    deploy(mgr)
    aws.proxy.clear()
    info = deploy(mgr, options={"architecture": "arm64"})
    # moto ignores Architectures on UpdateFunctionCode, so check what was sent (AWS applies it)
    sent = [c for c in aws.proxy.calls if c.method == "PUT" and c.path.endswith("/functions/weave-demo/code")]
    assert len(sent) == 1 and json.loads(sent[0].body)["Architectures"] == ["arm64"]
    assert info.version == "2"


def test_dry_run_plans_without_mutating(aws):
    mgr = aws.manager()
    plan = mgr.deploy({"name": "demo", "provider": "aws", "weave_text": weave_text()}, dry_run=True)
    assert [s.action for s in plan.steps[:4]] == ["create"] * 4
    assert aws.proxy.mutating() == []
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    deploy(mgr)
    plan = mgr.plan({"name": "demo", "provider": "aws", "weave_text": weave_text(), "memory_mb": 2048})
    function_step = next(s for s in plan.steps if s.key == "function")
    assert function_step.action == "update" and function_step.detail == "memory"


def test_lost_inventory_is_rebuilt_on_redeploy_and_undeploy_then_removes_all(aws):
    mgr = aws.manager()
    deploy(mgr, public=True)
    mgr.inventory.delete("aws", "demo")
    aws.proxy.clear()
    info = deploy(mgr, public=True)
    assert info.message == "no changes" and aws.proxy.mutating() == []
    kinds = {r.kind for r in mgr.inventory.resources("aws", "demo")}
    assert {"role", "role-log-policy", "function", "version", "alias", "function-url", "permission"} <= kinds
    mgr.destroy("demo", "aws")
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def test_logs_read_the_log_group(aws):
    mgr = aws.manager()
    deploy(mgr)
    assert mgr.logs("demo", "aws") == ""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/weave-demo")
    logs.create_log_stream(logGroupName="/aws/lambda/weave-demo", logStreamName="s")
    logs.put_log_events(logGroupName="/aws/lambda/weave-demo", logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000) - 1000 + i, "message": f"line {i}"} for i in range(3)])
    assert mgr.logs("demo", "aws", tail=2).splitlines() == ["line 1", "line 2"]


def test_undeploy_keeps_lambdas_log_group_unless_purge_logs_is_given(aws):
    """The group Lambda makes on the first call outlives the function unless --purge-logs is given."""
    from weave_nb.frontends.cli import main

    logs = aws.client("logs")

    def groups():
        return [g["logGroupName"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/weave-demo")["logGroups"]]

    mgr = aws.manager()
    deploy(mgr)
    logs.create_log_group(logGroupName="/aws/lambda/weave-demo")  # as Lambda does on the first invocation
    mgr.destroy("demo", "aws")
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    assert groups() == ["/aws/lambda/weave-demo"]
    deploy(mgr)
    err = io.StringIO()
    assert main(["undeploy", "demo", "--provider", "aws", "--force", "--purge-logs"], out=io.StringIO(), err=err) == 0, err.getvalue()
    assert groups() == []
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
