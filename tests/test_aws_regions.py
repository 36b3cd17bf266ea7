"""Deployment groups on aws: one weave in several regions, against moto_server over HTTP.

moto serves every region on one endpoint; each boto3 client below is made for
one region, so what it sees is what that region holds.
"""

from __future__ import annotations

import io
import json

import pytest

try:
    from tests.aws_servers import EXAMPLES, Rule, aws, aws_offline, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, Rule, aws, aws_offline, moto_server  # noqa: F401

from weave_nb.core.errors import ConfigError, DeploymentFailed, NotFound

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()
REGIONS = "us-east-1,eu-west-1"


def client(aws, service, region):
    import boto3

    return boto3.client(service, endpoint_url=aws.moto.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def deploy(mgr, region=REGIONS, name="demo", **values):
    return mgr.deploy({"name": name, "provider": "aws", "weave_text": HELLO, "region": region, **values})


def functions(aws, region):
    return sorted(f["FunctionName"] for f in client(aws, "lambda", region).list_functions()["Functions"])


def roles(aws):
    return sorted(r["RoleName"] for r in client(aws, "iam", "us-east-1").list_roles()["Roles"] if r["RoleName"].startswith("weave-nb-"))


def test_group_deploys_function_alias_and_url_in_each_region(aws):
    mgr = aws.manager()
    events = []
    info = mgr.deploy({"name": "demo", "provider": "aws", "weave_text": HELLO, "region": REGIONS}, sink=events.append)
    assert info.status.value == "active" and info.region == REGIONS
    assert set(info.details["regions"]) == {"us-east-1", "eu-west-1"}
    for region in ("us-east-1", "eu-west-1"):
        lam = client(aws, "lambda", region)
        fname = f"weave-demo-{region}"
        assert functions(aws, region) == [fname]
        fn = lam.get_function(FunctionName=fname)
        assert fn["Configuration"]["FunctionArn"].split(":")[3] == region
        assert fn["Tags"]["weave-nb:name"] == f"demo-{region}" and fn["Tags"]["weave-nb:owner"] == mgr.inventory.owner_id
        assert lam.get_alias(FunctionName=fname, Name="live")["FunctionVersion"] == "1"
        url = lam.get_function_url_config(FunctionName=fname, Qualifier="live")["FunctionUrl"]
        assert info.details["regions"][region]["endpoint"] == url
        # IAM is global: each region has its own role, whose log policy names only that region's log group
        policy = client(aws, "iam", "us-east-1").get_role_policy(RoleName=f"weave-nb-demo-{region}", PolicyName="weave-nb-logs")
        document = policy["PolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        assert f":logs:{region}:" in json.dumps(document) and fname in json.dumps(document)
    assert roles(aws) == ["weave-nb-demo-eu-west-1", "weave-nb-demo-us-east-1"]
    # one plan, every step keyed by its region; one inventory row per region
    plans = [e.plan for e in events if type(e).__name__ == "PlanReady"]
    assert len(plans) == 1 and {s.key.split("/")[0] for s in plans[0].steps} == {"us-east-1", "eu-west-1"}
    # progress counts over the whole group: step 1..N across both regions, ending at 100%
    starts = [e for e in events if type(e).__name__ == "StepStarted"]
    assert [e.index for e in starts] == list(range(1, len(plans[0].steps) + 1))
    assert [e.step for e in starts] == [s.key for s in plans[0].steps]
    assert all(e.total == len(plans[0].steps) for e in starts)
    assert [e.fraction for e in events if type(e).__name__ == "ProgressUpdate"][-1] == 1.0
    rows = {(d.name, d.region) for d in mgr.inventory.list("aws")}
    assert rows == {("demo-us-east-1", "us-east-1"), ("demo-eu-west-1", "eu-west-1")}
    listed = [d for d in mgr.list("aws").deployments]
    assert sorted((d.name, d.region, d.status.value) for d in listed) == [
        ("demo", "eu-west-1", "active"), ("demo", "us-east-1", "active")]
    # status and invoke pick a region; without one they name the regions
    assert mgr.status("demo", region="eu-west-1").region == "eu-west-1"
    with pytest.raises(ConfigError) as err:
        mgr.status("demo")
    assert "us-east-1" in err.value.message and "eu-west-1" in err.value.message and "--region" in err.value.suggestion
    with pytest.raises(NotFound):
        mgr.status("demo", region="ap-south-1")
    answer = mgr.invoke("demo", payload={"input": "hi"}, region="eu-west-1", local=True)
    assert answer["weave"] == "hello"
    # an unchanged redeploy of the group changes nothing anywhere
    mutating = len(aws.proxy.mutating())
    again = deploy(mgr)
    assert again.status.value == "active" and len(aws.proxy.mutating()) == mutating
    # undeploy removes every region (and each region's role)
    gone = mgr.destroy("demo")
    assert gone.status.value == "destroyed"
    assert functions(aws, "us-east-1") == [] and functions(aws, "eu-west-1") == [] and roles(aws) == []
    assert mgr.inventory.list("aws") == []


def test_failure_in_one_region_rolls_back_only_that_region(aws):
    mgr = aws.manager()
    # eu-west-1's alias cannot be made: every try answers 500
    rule = aws.proxy.add(Rule("POST", r"/functions/weave-demo-eu-west-1/aliases", status=500, count=50))
    with pytest.raises(DeploymentFailed) as err:
        deploy(mgr)
    assert rule.hits >= 1
    text = err.value.message
    assert "1 of 2 regions" in text and "us-east-1: active" in text and "eu-west-1: failed" in text
    assert "deploy the group again" in err.value.suggestion
    # us-east-1 stays deployed and recorded; eu-west-1 was undone (function and its own role gone)
    assert functions(aws, "us-east-1") == ["weave-demo-us-east-1"]
    assert functions(aws, "eu-west-1") == []
    assert roles(aws) == ["weave-nb-demo-us-east-1"]
    east = mgr.inventory.get("aws", "demo-us-east-1")
    west = mgr.inventory.get("aws", "demo-eu-west-1")
    assert east.status.value == "active" and west.status.value == "failed"
    assert {r.kind for r in west.resources} <= {"package"}  # nothing of eu-west-1 is left on record
    # deploying the group again finishes eu-west-1 and leaves us-east-1 as it was
    aws.proxy.clear()
    info = deploy(mgr)
    assert info.status.value == "active"
    assert functions(aws, "eu-west-1") == ["weave-demo-eu-west-1"]
    east_calls = [c for c in aws.proxy.mutating() if "us-east-1" in c.path or "us-east-1" in c.body.decode(errors="replace")]
    assert east_calls == []
    mgr.destroy("demo")
    assert functions(aws, "us-east-1") == functions(aws, "eu-west-1") == [] and roles(aws) == []


def test_undeploy_one_region_keeps_the_other_and_its_role(aws):
    mgr = aws.manager()
    deploy(mgr)
    mgr.destroy("demo", region="us-east-1")
    assert functions(aws, "us-east-1") == [] and functions(aws, "eu-west-1") == ["weave-demo-eu-west-1"]
    assert roles(aws) == ["weave-nb-demo-eu-west-1"]
    # the one region left answers without --region
    assert mgr.status("demo").region == "eu-west-1"
    assert mgr.invoke("demo", payload={"input": "hi"}, local=True)["weave"] == "hello"
    # a deploy of the group's name with one region puts that region back into the group
    deploy(mgr, region="us-east-1")
    assert functions(aws, "us-east-1") == ["weave-demo-us-east-1"]
    assert sorted(d.region for d in mgr.list("aws").deployments if d.name == "demo") == ["eu-west-1", "us-east-1"]
    assert isinstance(mgr.logs("demo", region="eu-west-1"), str)
    assert isinstance(mgr.read_logs("demo", region="eu-west-1"), list)
    with pytest.raises(ConfigError, match="say which"):
        mgr.logs("demo")
    with pytest.raises(ConfigError, match="say which"):
        mgr.read_logs("demo")
    mgr.destroy("demo")
    assert functions(aws, "eu-west-1") == functions(aws, "us-east-1") == [] and roles(aws) == []


def test_plan_shows_each_regions_steps_and_creates_nothing(aws):
    mgr = aws.manager()
    plan = mgr.plan({"name": "demo", "provider": "aws", "weave_text": HELLO, "region": REGIONS})
    keys = [s.key for s in plan.steps]
    assert "us-east-1/function" in keys and "eu-west-1/function" in keys
    assert "[eu-west-1] Lambda function weave-demo-eu-west-1" in plan.render()
    assert aws.proxy.mutating() == [] and mgr.inventory.list() == []


def test_a_foreign_function_in_one_region_stops_the_group_before_any_change(aws):
    # someone else's function, with the name the group's eu-west-1 member would use (moto wants a real role)
    role = client(aws, "iam", "us-east-1").create_role(RoleName="someone", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("x.py", "def h(e, c): return 1\n")
    client(aws, "lambda", "eu-west-1").create_function(FunctionName="weave-demo-eu-west-1", Runtime="python3.12", Role=role,
                                                      Handler="x.h", Code={"ZipFile": buf.getvalue()})
    mgr = aws.manager()
    with pytest.raises(Exception) as err:
        deploy(mgr)
    assert "weave-demo-eu-west-1" in str(getattr(err.value, "message", err.value))
    assert functions(aws, "us-east-1") == [] and mgr.inventory.list() == []


@pytest.mark.parametrize("region, words", [
    ("us-east-1,us-east-1", "listed twice"),
    ("us-east-1,,eu-west-1", "empty item"),
    (",".join(f"r{i}" for i in range(11)), "at most 10"),
    ("us-east-1,mars-north-1", "mars-north-1"),
])
def test_bad_region_lists_fail_before_any_call(aws_offline, region, words):
    mgr = aws_offline.manager()
    with pytest.raises(ConfigError) as err:
        deploy(mgr, region=region)
    assert words in err.value.message
    assert aws_offline.proxy.calls == [] and mgr.inventory.list() == []


def test_a_group_never_takes_over_a_single_region_deployment_or_a_member_name(aws_offline):
    mgr = aws_offline.manager()
    mgr.inventory.save("aws", "demo", region="us-east-1")
    with pytest.raises(ConfigError, match="single-region deployment named 'demo'"):
        deploy(mgr)
    mgr.inventory.save("aws", "other-eu-west-1", region="eu-west-1")
    with pytest.raises(ConfigError, match="'other-eu-west-1'"):
        deploy(mgr, name="other")
    assert aws_offline.proxy.calls == []
    assert sorted(d.name for d in mgr.inventory.list()) == ["demo", "other-eu-west-1"]


def test_region_list_on_docker_or_local_is_refused(weave_home):
    from weave_nb.core.manager import DeploymentManager

    mgr = DeploymentManager(home=weave_home)
    for provider in ("local", "docker"):
        with pytest.raises(ConfigError) as err:
            mgr.deploy({"name": "demo", "provider": provider, "weave_text": HELLO, "region": "a-1,b-1"})
        assert "aws and gcp" in err.value.message
    assert mgr.inventory.list() == []


def test_cli_group_deploy_list_invoke_and_undeploy(aws):
    from weave_nb.frontends.cli import main

    weave_file = aws.home.parent / "hello.weave.yaml"
    weave_file.write_text(HELLO)

    def run(*argv):
        out, err = io.StringIO(), io.StringIO()
        code = main(list(argv), out=out, err=err)
        return code, out.getvalue(), err.getvalue()

    code, out, err = run("deploy", "--name", "demo", "--provider", "aws", "--config", str(weave_file), "--region", REGIONS)
    assert code == 0, err
    assert "[eu-west-1]" in out and "--region us-east-1" in out
    assert "us-east-1: active https://" in out and "eu-west-1: active https://" in out  # each region's endpoint
    assert "OK demo deployed to 2 of 2 regions" in out
    code, out, _ = run("deployments", "--provider", "aws", "--output", "json")
    rows = json.loads(out)
    assert sorted((r["name"], r["region"]) for r in rows) == [("demo", "eu-west-1"), ("demo", "us-east-1")]
    code, out, err = run("invoke", "demo", "--local", "--input", "hi")
    assert code == 2 and "eu-west-1" in err and "--region" in err
    code, out, err = run("invoke", "demo", "--local", "--input", "hi", "--region", "eu-west-1")
    assert code == 0 and json.loads(out)["weave"] == "hello"
    code, out, err = run("status", "demo", "--region", "us-east-1")
    assert code == 0 and json.loads(out)["region"] == "us-east-1"
    code, out, err = run("logs", "demo", "--region", "us-east-1")
    assert code == 0, err
    code, out, err = run("logs", "demo")
    assert code == 2 and "us-east-1" in err and "--region" in err
    code, out, err = run("metrics", "demo", "--region", "eu-west-1")
    assert code == 0, err
    code, out, err = run("alarm", "demo", "--p95-ms", "800")
    assert code == 2 and "eu-west-1" in err and "--region" in err
    code, out, err = run("alarm", "demo", "--p95-ms", "800", "--region", "eu-west-1")
    assert code == 0, err
    cw = client(aws, "cloudwatch", "eu-west-1")
    assert [a["Threshold"] for a in cw.describe_alarms()["MetricAlarms"]] == [800.0]
    assert client(aws, "cloudwatch", "us-east-1").describe_alarms()["MetricAlarms"] == []
    code, out, err = run("bench", "demo", "-n", "3")
    assert code == 2 and "--region" in err
    code, out, err = run("undeploy", "demo", "--force")
    assert code == 0, err
    assert functions(aws, "us-east-1") == functions(aws, "eu-west-1") == []
    assert cw.describe_alarms()["MetricAlarms"] == []  # the region's alarm went with it


def test_cli_reports_each_region_and_exits_1_when_one_fails(aws):
    from weave_nb.frontends.cli import main

    weave_file = aws.home.parent / "hello.weave.yaml"
    weave_file.write_text(HELLO)
    aws.proxy.add(Rule("POST", r"/functions/weave-demo-eu-west-1/aliases", status=500, count=50))
    out, err = io.StringIO(), io.StringIO()
    code = main(["deploy", "--name", "demo", "--provider", "aws", "--config", str(weave_file), "--region", REGIONS],
                out=out, err=err)
    assert code == 1
    assert "us-east-1: active" in err.getvalue() and "eu-west-1: failed" in err.getvalue()
    assert "[eu-west-1]" in out.getvalue()
    out = io.StringIO()
    assert main(["undeploy", "demo", "--dry-run"], out=out, err=io.StringIO()) == 0
    plan = out.getvalue()
    assert "[us-east-1]" in plan and functions(aws, "us-east-1") == ["weave-demo-us-east-1"]  # a dry run removes nothing
    assert main(["undeploy", "demo", "--force"], out=io.StringIO(), err=io.StringIO()) == 0
    assert functions(aws, "us-east-1") == [] and roles(aws) == []


def test_board_rows_act_on_one_region(aws):
    pytest.importorskip("ipywidgets")
    from weave_nb.frontends.widgets.views import DeploymentsBoard

    mgr = aws.manager()
    deploy(mgr)
    board = DeploymentsBoard(manager=mgr, provider="aws")
    board.wait(60)
    assert sorted((r["name"], r["region"]) for r in board.model.rows) == [
        ("demo-eu-west-1", "eu-west-1"), ("demo-us-east-1", "us-east-1")]
    board.select_row("demo-us-east-1")
    board.undeploy_button.click()
    board.yes_button.click()
    board.wait(60)
    assert functions(aws, "us-east-1") == [] and functions(aws, "eu-west-1") == ["weave-demo-eu-west-1"]
    mgr.destroy("demo")


def test_magics_deploy_a_group_and_pick_a_region(aws, tmp_path, monkeypatch):
    pytest.importorskip("IPython")
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.frontends.magics import WeaveMagics

    monkeypatch.chdir(tmp_path)
    (tmp_path / "hello.weave.yaml").write_text(HELLO)
    shell = InteractiveShell.instance()
    mgr = aws.manager()
    magics = WeaveMagics(shell, manager=mgr)
    magics.progress = "text"
    shell.register_magics(magics)
    try:
        info = shell.run_line_magic("weave_deploy", f"--name demo --provider aws --region {REGIONS}")
        assert info.status.value == "active"
        frame = shell.run_line_magic("weave_deployments", "--provider aws")
        assert sorted(zip(frame["name"], frame["region"])) == [("demo", "eu-west-1"), ("demo", "us-east-1")]
        assert shell.run_line_magic("weave_status", "demo --region eu-west-1").region == "eu-west-1"
        with pytest.raises(UsageError, match="eu-west-1"):
            shell.run_line_magic("weave_status", "demo")
        shell.run_line_magic("weave_undeploy", "demo --region eu-west-1 --force")
        assert functions(aws, "eu-west-1") == [] and functions(aws, "us-east-1") == ["weave-demo-us-east-1"]
        shell.run_line_magic("weave_undeploy", "demo --force")
        assert functions(aws, "us-east-1") == [] and roles(aws) == []
    finally:
        from weave_nb.frontends.magics import unload_ipython_extension

        unload_ipython_extension(shell)


def test_a_regions_error_quoting_a_secret_is_scrubbed_everywhere(aws):
    secret = "sk-group-secret-5521"
    body = json.dumps({"Type": "User", "message": f"bad value {secret} in the request"}).encode()
    aws.proxy.add(Rule("POST", r"/functions/weave-demo-eu-west-1/aliases", status=400, count=50, body=body,
                       headers={"x-amzn-ErrorType": "InvalidParameterValueException", "Content-Type": "application/json"}))
    mgr = aws.manager()
    events = []
    with pytest.raises(DeploymentFailed) as err:
        mgr.deploy({"name": "demo", "provider": "aws", "weave_text": HELLO, "region": REGIONS, "env": {"TOKEN": secret}},
                   sink=events.append)
    assert "eu-west-1: failed" in err.value.message and "bad value" in err.value.message
    assert secret not in err.value.message and secret not in repr(events)
    assert secret not in (mgr.inventory.get("aws", "demo-eu-west-1").message or "")
    assert all(secret.encode() not in f.read_bytes() for f in aws.home.glob("inventory.db*"))  # with the WAL file
    mgr.destroy("demo")
