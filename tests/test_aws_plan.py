"""The aws provider through the one executor: what runs is the plan, ownership marks, adoption, lost answers.

Everything talks to moto_server over HTTP through the fault proxy; boto3
clients straight to moto check what really exists.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import pytest

from weave_nb.core.errors import ForeignResource, WeaveError

try:
    from tests.aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401
    from tests.plan_checks import assert_ran_the_plan, ran_and_planned
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401
    from plan_checks import assert_ran_the_plan, ran_and_planned

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()
CHANGED = HELLO.replace("Greet the user warmly.", "Greet the user briefly.")
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def values(name="demo", text=HELLO, **extra):
    return {"name": name, "provider": "aws", "weave_text": text, **extra}


def cli(*args):
    from weave_nb.frontends.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(args), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("endpoint", ["url", "api"])
def test_first_and_changed_deploy_run_exactly_the_plan(aws, endpoint):
    mgr = aws.manager()
    opts = {"options": {"endpoint": endpoint}}
    shown = mgr.plan(values(**opts))
    events = []
    mgr.deploy(values(**opts), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    calls = [s.call for s in plan.changing()]
    assert calls[:6] == ["keep_zip", "create_role", "put_role_policy", "create_function", "publish", "create_alias"]
    assert calls[6:] == (["create_url"] if endpoint == "url" else
                         ["create_api", "create_integration", "create_route", "create_stage", "add_permission"])
    fn = plan.step("function").params
    assert fn["function_name"] == "weave-demo" and fn["memory"] == 256 and fn["tags"]["weave-nb:owner"] == mgr.inventory.owner_id
    journal = mgr.inventory.journal.runs("aws", "demo")[-1]["steps"]
    assert [s["key"] for s in journal] == [s.key for s in plan.changing()]
    assert {s["outcome"] for s in journal} == {"done"}
    # a changed redeploy: the dry run shows what then runs
    aws.proxy.clear()
    shown = mgr.plan(values(text=CHANGED, memory_mb=512, **opts))
    assert aws.proxy.mutating() == []
    events = []
    info = mgr.deploy(values(text=CHANGED, memory_mb=512, **opts), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    assert [s.call for s in plan.changing()] == ["keep_zip", "update_function", "publish", "point_alias"]
    update = plan.step("function").params
    assert update["code"] is True and update["configuration"] == ["memory"] and update["memory"] == 512
    assert plan.step("alias").params["previous_version"] == "1" and info.version == "2"


def test_plan_params_hold_env_names_never_values(aws):
    mgr = aws.manager()
    plan = mgr.plan(values(env={"API_TOKEN": "s3cret-value"}))
    assert plan.step("function").params["env_names"] == ["API_TOKEN"]
    assert "s3cret-value" not in plan.to_json()
    mgr.deploy(values(env={"API_TOKEN": "s3cret-value"}))
    conf = aws.client("lambda").get_function(FunctionName="weave-demo")["Configuration"]
    assert conf["Environment"]["Variables"] == {"API_TOKEN": "s3cret-value", "WEAVE_DEPLOYMENT": "demo"}
    assert b"s3cret-value" not in (aws.home / "inventory.db").read_bytes()


def test_switching_endpoint_plans_the_stale_one_as_delete_steps(aws):
    mgr = aws.manager()
    mgr.deploy(values(public=True))
    shown = mgr.plan(values(public=True, options={"endpoint": "api"}))
    deletes = [(s.call, s.params.get("kind"), s.params.get("id")) for s in shown.steps if s.action == "delete"]
    assert [(c, k) for c, k, _ in deletes] == [("delete", "permission")] * 2 + [("delete", "function-url")]
    events = []
    mgr.deploy(values(public=True, options={"endpoint": "api"}), sink=events.append)
    assert_ran_the_plan(events, shown)
    lam = aws.client("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_url_config(FunctionName="weave-demo", Qualifier="live")


def test_lost_create_api_answer_is_adopted_not_made_twice(aws):
    mgr = aws.manager()
    rule = aws.proxy.add(Rule("POST", r"^/v2/apis/?$", status=0, forward=True))
    info = mgr.deploy(values(options={"endpoint": "api"}))
    assert rule.hits == 1 and info.status.value == "active"
    apis = aws.client("apigatewayv2").get_apis()["Items"]
    assert len(apis) == 1
    assert [r.id for r in mgr.inventory.resources("aws", "demo") if r.kind == "api"] == [apis[0]["ApiId"]]
    assert info.endpoint == apis[0]["ApiEndpoint"]
    mgr.destroy("demo", "aws")
    assert aws.client("apigatewayv2").get_apis()["Items"] == []
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def test_lost_create_function_answer_is_adopted(aws):
    mgr = aws.manager()
    rule = aws.proxy.add(Rule("POST", r"^/2015-03-31/functions/?$", status=500, forward=True))
    info = mgr.deploy(values())
    assert rule.hits == 1 and info.status.value == "active"
    assert aws.counts()["functions"] == 1


def _their_function(aws, name="weave-x"):
    """A function made without weave-nb: its own role, env and tags."""
    iam, lam = aws.client("iam"), aws.client("lambda")
    role = iam.create_role(RoleName="their-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return 'theirs'\n")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="app.handler",
                        Code={"ZipFile": buf.getvalue()}, Environment={"Variables": {"THEIRS": "1"}}, Tags={"team": "data"})


def _snapshot(aws, name="weave-x"):
    lam = aws.client("lambda")
    fn = lam.get_function(FunctionName=name)
    conf = {k: v for k, v in fn["Configuration"].items() if k != "ResponseMetadata"}
    return conf, fn.get("Tags"), lam.list_versions_by_function(FunctionName=name)["Versions"]


def test_foreign_function_is_refused_by_deploy_and_undeploy_and_left_unchanged(aws, tmp_path):
    _their_function(aws)
    before = _snapshot(aws)
    weave_file = tmp_path / "hello.weave.yaml"
    weave_file.write_text(HELLO)
    aws.proxy.clear()
    code, out, err = cli("deploy", "--name", "x", "--provider", "aws", "--config", str(weave_file))
    assert code == 2, out + err
    assert "Lambda function weave-x" in err and "no weave-nb managed mark" in err and "--adopt" in err
    code, out, err = cli("undeploy", "x", "--provider", "aws", "--force")
    assert code == 2, out + err
    assert "Lambda function weave-x" in err
    assert aws.proxy.mutating() == []
    assert _snapshot(aws) == before
    assert aws.counts()["roles"] == 0  # no weave-nb role was made either


def test_foreign_function_name_given_by_option_is_refused(aws):
    _their_function(aws, "their-fn")
    with pytest.raises(ForeignResource, match="Lambda function their-fn"):
        aws.manager().deploy(values(options={"function_name": "their-fn"}))


def test_second_inventory_is_refused_lists_other_owner_and_can_adopt(aws, tmp_path, monkeypatch):
    first = aws.manager()
    first.deploy(values("team"))
    other = dataclasses.replace(aws, home=tmp_path / "other-home")
    second = other.manager()
    assert second.inventory.owner_id != first.inventory.owner_id
    with pytest.raises(ForeignResource, match=f"owner mark '{first.inventory.owner_id}'"):
        second.deploy(values("team"))
    with pytest.raises(ForeignResource):
        second.destroy("team", "aws")
    monkeypatch.setenv("WEAVE_HOME", str(other.home))
    code, out, err = cli("deployments", "--provider", "aws")
    assert code == 0 and "team" not in out.split("note:")[0]
    code, out, err = cli("deployments", "--provider", "aws", "--all-owners")
    assert code == 0 and "team" in out and "other owner" in out, out + err
    plan = second.plan(values("team", adopt=True))
    assert [s.key for s in plan.steps if s.action == "adopt"] == ["adopt-role", "adopt-function"]
    info = second.deploy(values("team", adopt=True))
    assert info.status.value == "active"
    tags = aws.client("lambda").get_function(FunctionName="weave-team")["Tags"]
    assert tags["weave-nb:owner"] == second.inventory.owner_id
    with pytest.raises(ForeignResource):  # now the first inventory is the stranger
        first.deploy(values("team", text=CHANGED))


def test_adopted_role_is_not_deleted_by_rollback(aws):
    iam = aws.client("iam")
    iam.create_role(RoleName="weave-nb-demo", AssumeRolePolicyDocument=TRUST)
    mgr = aws.manager()
    aws.proxy.add(Rule("POST", r"/2021-10-31/functions/weave-demo/url$", status=500, count=1000))
    events = []
    with pytest.raises(WeaveError):
        mgr.deploy(values(adopt=True), sink=events.append)
    plan, _ = ran_and_planned(events)
    assert plan.step("adopt-role").action == "adopt" and plan.step("adopt-role").undo is None
    assert iam.get_role(RoleName="weave-nb-demo")["Role"]["RoleName"] == "weave-nb-demo"
    assert iam.list_attached_role_policies(RoleName="weave-nb-demo")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="weave-nb-demo")["PolicyNames"] == []  # our inline log policy was undone
    assert aws.counts()["functions"] == 0
    outcomes = [(s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("aws", "demo")[-1]["steps"]]
    assert ("function", "undone") in outcomes and ("adopt-role", "undone") not in outcomes


def test_failed_update_moves_the_alias_back_through_its_undo(aws):
    mgr = aws.manager()
    mgr.deploy(values())
    aws.proxy.add(Rule("PUT", r"/functions/weave-demo/url$", status=500, count=1000))
    with pytest.raises(WeaveError) as caught:
        mgr.deploy(values(text=CHANGED, public=True))
    assert "previous release still serves" in caught.value.message
    assert aws.client("lambda").get_alias(FunctionName="weave-demo", Name="live")["FunctionVersion"] == "1"
    outcomes = [(s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("aws", "demo")[-1]["steps"]]
    assert ("alias", "undone") in outcomes and ("version", "undone") in outcomes
    assert mgr.inventory.get("aws", "demo").status.value == "active"


def test_undeploy_plan_is_shown_by_dry_run_and_is_what_runs(aws):
    mgr = aws.manager()
    mgr.deploy(values(public=True, options={"endpoint": "api", "purge_logs": True, "log_retention_days": 7}))
    code, out, err = cli("undeploy", "demo", "--provider", "aws", "--dry-run")
    assert code == 0, err
    for word in ("Undeploy plan", "permission weave-nb-apigw", "api ", "alias live", "function weave-demo",
                 "role weave-nb-demo", "log-group /aws/lambda/weave-demo"):
        assert word in out, out
    shown = mgr.destroy("demo", "aws", dry_run=True)
    assert aws.counts() == {"functions": 1, "roles": 1, "apis": 1}
    events = []
    mgr.destroy("demo", "aws", sink=events.append)
    plan, ran = ran_and_planned(events)
    assert ran == [s.key for s in shown.steps] == [s.key for s in plan.steps]
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def test_undeploy_with_adopt_shows_the_adopt_step_then_removes_the_foreign_function(aws):
    _their_function(aws)
    mgr = aws.manager()
    shown = mgr.destroy("x", "aws", dry_run=True, adopt=True)
    assert [(s.key, s.action) for s in shown.steps] == [("adopt-function", "adopt"), ("delete-function-weave-x", "delete")]
    assert aws.counts()["functions"] == 1
    mgr.destroy("x", "aws", adopt=True)
    assert aws.counts()["functions"] == 0


def test_one_session_and_clients_only_for_the_services_a_plan_needs(aws):
    mgr = aws.manager()
    mgr.deploy(values())
    mgr.deploy(values(text=CHANGED))
    provider = mgr.provider("aws")
    assert len(provider._sessions) == 1
    session = next(iter(provider._sessions.values()))
    assert set(session.clients) == {"iam", "lambda"}  # no API Gateway, logs or STS client for a Function URL deploy


def test_a_damaged_inventory_is_rebuilt_from_owner_marks_and_then_undeployed(aws, tmp_path, monkeypatch):
    mine, theirs = aws.manager(), dataclasses.replace(aws, home=tmp_path / "other-home").manager()
    mine.deploy(values("kept", options={"endpoint": "url"}))
    theirs.deploy(values("someone-elses"))
    db = mine.inventory.path
    db.write_bytes(b"this is not a database" * 100)  # damaged: every command stops with one clear error
    for extra in ("-wal", "-shm"):
        db.with_name(db.name + extra).unlink(missing_ok=True)
    monkeypatch.setenv("WEAVE_HOME", str(aws.home))
    code, out, err = cli("deployments", "--provider", "aws")
    assert code == 2 and "damaged" in err and "--rebuild" in err
    db.rename(db.with_name("inventory.db.broken"))  # what the hint says to do
    code, out, err = cli("deployments", "--provider", "aws")
    (line,) = [ln for ln in out.splitlines() if ln.startswith("kept ")]
    assert code == 0 and line.rstrip().endswith("unrecorded") and "someone-elses" not in out
    code, out, err = cli("deployments", "--provider", "aws", "--rebuild")
    assert code == 0 and "rebuilt 1 aws deployment(s) from their owner marks: kept" in err, out + err
    fresh = aws.manager()
    row = fresh.inventory.get("aws", "kept")
    assert row is not None and row.status.value == "active" and row.details["rebuilt"] is True
    assert fresh.inventory.get("aws", "someone-elses") is None  # another inventory's mark: never taken
    fresh.destroy("kept", "aws")
    names = [f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]]
    assert names == ["weave-someone-elses"]
    roles = [r["RoleName"] for r in aws.client("iam").list_roles()["Roles"]]
    assert "weave-nb-kept" not in roles and "weave-nb-someone-elses" in roles
# -- the execution role's log permissions: an inline policy on the function's own log group ----------------------
BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def _log_policy(aws, role="weave-nb-demo"):
    """The role's inline policies by name, with their documents, and its attached policy ARNs (straight from moto)."""
    iam = aws.client("iam")
    inline = {n: iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
              for n in iam.list_role_policies(RoleName=role)["PolicyNames"]}
    attached = [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]]
    return inline, attached


def _wanted(aws, fname="weave-demo", role="weave-nb-demo"):
    from weave_nb.providers.aws.settings import log_policy_document

    account = aws.client("iam").get_role(RoleName=role)["Role"]["Arn"].split(":")[4]
    return log_policy_document(aws.region, account, fname)


def test_first_deploy_scopes_the_roles_log_permissions_to_the_functions_log_group(aws):
    from weave_nb.providers.aws.settings import LOG_POLICY_NAME

    mgr = aws.manager()
    shown = mgr.plan(values())
    events = []
    mgr.deploy(values(), sink=events.append)
    plan = assert_ran_the_plan(events, shown)
    step = plan.step("role-log-policy")
    assert (step.action, step.call, step.undo) == ("create", "put_role_policy", "delete_role_policy")
    # the role is made by this run: its account id is only known from the role step's answer
    assert step.params == {"role_name": "weave-nb-demo", "policy_name": LOG_POLICY_NAME, "region": "us-east-1",
                           "function_name": "weave-demo", "account_id": None}
    assert plan.step("role-policy") is None and "attach_policy" not in [s.call for s in plan.steps]
    keys = [s.key for s in plan.changing()]
    assert keys.index("role") < keys.index("role-log-policy") < keys.index("function")
    inline, attached = _log_policy(aws)
    assert inline == {LOG_POLICY_NAME: _wanted(aws)} and attached == []
    resources = {(r.kind, r.id): r.attrs for r in mgr.inventory.resources("aws", "demo")}
    assert resources[("role-log-policy", LOG_POLICY_NAME)]["role"] == "weave-nb-demo"
    assert not any(kind == "role-policy" for kind, _ in resources)


def test_unchanged_redeploy_leaves_the_log_policy_alone(aws):
    mgr = aws.manager()
    mgr.deploy(values())
    aws.proxy.clear()
    plan = mgr.plan(values())
    step = plan.step("role-log-policy")
    assert step.action == "no-change" and step.call is None and not plan.has_changes
    info = mgr.deploy(values())
    assert info.message == "no changes" and aws.proxy.mutating() == []
    assert any(c.operation == "GetRolePolicy" for c in aws.proxy.calls)  # the document was read, not assumed


def test_a_role_with_the_basic_policy_gets_the_inline_one_then_loses_the_basic_one(aws):
    from weave_nb.providers.aws.settings import LOG_POLICY_NAME

    mgr = aws.manager()
    mgr.deploy(values())
    iam = aws.client("iam")  # what a deploy by an older weave-nb left: the managed policy, no inline one
    iam.delete_role_policy(RoleName="weave-nb-demo", PolicyName=LOG_POLICY_NAME)
    iam.attach_role_policy(RoleName="weave-nb-demo", PolicyArn=BASIC)
    account = iam.get_role(RoleName="weave-nb-demo")["Role"]["Arn"].split(":")[4]
    aws.proxy.clear()
    shown = mgr.plan(values())
    assert [(s.key, s.action, s.call, s.undo) for s in shown.changing()] == [
        ("role-log-policy", "create", "put_role_policy", "delete_role_policy"),
        ("role-policy", "delete", "detach_policy", "attach_policy"),
    ]
    assert shown.step("role-log-policy").params["account_id"] == account
    assert shown.step("role-policy").params == {"role_name": "weave-nb-demo", "policy_arn": BASIC}
    events = []
    mgr.deploy(values(), sink=events.append)
    assert_ran_the_plan(events, shown)
    ops = [c.operation for c in aws.proxy.mutating()]
    assert ops == ["PutRolePolicy", "DetachRolePolicy"]  # the inline policy is in place before the basic one goes
    inline, attached = _log_policy(aws)
    assert inline == {LOG_POLICY_NAME: _wanted(aws)} and attached == []
    kinds = {r.kind for r in mgr.inventory.resources("aws", "demo")}
    assert "role-log-policy" in kinds and "role-policy" not in kinds
    aws.proxy.clear()
    assert mgr.deploy(values()).message == "no changes" and aws.proxy.mutating() == []


def test_a_replaced_log_policy_document_is_restored_by_rollback(aws):
    from weave_nb.providers.aws.settings import LOG_POLICY_NAME

    mgr = aws.manager()
    mgr.deploy(values())
    iam = aws.client("iam")
    old = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": "*"}]}
    iam.put_role_policy(RoleName="weave-nb-demo", PolicyName=LOG_POLICY_NAME, PolicyDocument=json.dumps(old))
    aws.proxy.add(Rule("PUT", r"/functions/weave-demo/url$", status=500, count=1000))
    events = []
    with pytest.raises(WeaveError):
        mgr.deploy(values(text=CHANGED, public=True), sink=events.append)
    plan, _ = ran_and_planned(events)
    step = plan.step("role-log-policy")
    assert (step.action, step.undo, step.params["previous_document"]) == ("update", "restore_role_policy", old)
    outcomes = dict((s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("aws", "demo")[-1]["steps"])
    assert outcomes["role-log-policy"] == "undone"
    assert _log_policy(aws)[0] == {LOG_POLICY_NAME: old}
    aws.proxy.clear()
    mgr.deploy(values())  # and the next deploy scopes it again
    assert _log_policy(aws)[0] == {LOG_POLICY_NAME: _wanted(aws)}


def test_undeploy_removes_the_log_policy_before_the_role(aws):
    from weave_nb.providers.aws.settings import LOG_POLICY_NAME

    mgr = aws.manager()
    mgr.deploy(values())
    shown = mgr.destroy("demo", "aws", dry_run=True)
    keys = [s.key for s in shown.steps]
    assert keys.index(f"delete-role-log-policy-{LOG_POLICY_NAME}") < keys.index("delete-role-weave-nb-demo")
    events = []
    mgr.destroy("demo", "aws", sink=events.append)
    plan, ran = ran_and_planned(events)
    assert ran == keys
    assert [c.operation for c in aws.proxy.calls if c.operation == "DeleteRolePolicy"] == ["DeleteRolePolicy"]
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    assert mgr.inventory.resources("aws", "demo") == []


def test_a_given_role_arn_gets_no_log_policy_and_is_not_touched(aws):
    iam = aws.client("iam")
    arn = iam.create_role(RoleName="their-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.attach_role_policy(RoleName="their-role", PolicyArn=BASIC)
    mgr = aws.manager()
    plan = mgr.plan(values(options={"role_arn": arn}))
    assert plan.step("role-log-policy") is None and plan.step("role-policy") is None
    mgr.deploy(values(options={"role_arn": arn}))
    assert _log_policy(aws, "their-role") == ({}, [BASIC])
    assert not [c for c in aws.proxy.calls if c.path == "/" and c.operation and "Role" in c.operation]
