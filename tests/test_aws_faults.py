"""Throttling, 5xx, dropped connections, role propagation and hard failures, injected by the fault proxy."""

from __future__ import annotations

import pytest

from weave_nb.core.errors import DeploymentFailed, WeaveError

try:
    from tests.aws_servers import EXAMPLES, Rule, aws, moto_server, role_not_ready_rule  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, Rule, aws, moto_server, role_not_ready_rule  # noqa: F401

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()
CREATE_FN = r"^/2015-03-31/functions/?$"


def deploy(mgr, name="demo", text=HELLO, **values):
    return mgr.deploy({"name": name, "provider": "aws", "weave_text": text, **values})


def test_throttled_create_is_retried_and_succeeds(aws):
    rule = aws.proxy.add(Rule("POST", CREATE_FN, status=429, count=2))
    info = deploy(aws.manager())
    assert info.status.value == "active"
    assert rule.hits == 2
    assert aws.proxy.count("POST", CREATE_FN) == 3
    assert len(aws.sleep.calls) == 2 and all(s > 0 for s in aws.sleep.calls)


def test_server_errors_on_update_are_retried(aws):
    mgr = aws.manager()
    deploy(mgr)
    rule = aws.proxy.add(Rule("PUT", r"/functions/weave-demo/code$", status=500, count=2))
    info = deploy(mgr, text=HELLO.replace("warmly", "briefly"))
    assert rule.hits == 2 and info.version == "2"


def test_dropped_connection_on_create_role_is_retried_and_adopted(aws):
    # the role is created, but the answer is lost; the retry finds it and adopts it (it has our tags)
    rule = aws.proxy.add(Rule("POST", r"^/$", status=0, operation="CreateRole", forward=True))
    info = deploy(aws.manager())
    assert rule.hits == 1 and info.status.value == "active"
    assert aws.counts()["roles"] == 1


def test_role_not_yet_assumable_is_retried_with_injected_sleep(aws):
    rule = aws.proxy.add(role_not_ready_rule(count=3))
    info = deploy(aws.manager())
    assert info.status.value == "active" and rule.hits == 3
    assert aws.sleep.calls[:3] == [1.0, 2.0, 4.0]


def test_role_never_assumable_fails_and_rolls_back(aws):
    aws.proxy.add(role_not_ready_rule(count=100))
    with pytest.raises(DeploymentFailed, match="could not assume the execution role"):
        deploy(aws.manager(), options={"role_propagation_seconds": 10})
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    assert sum(aws.sleep.calls) <= 10 + 8


@pytest.mark.parametrize("endpoint, method, path", [
    ("url", "POST", r"/2021-10-31/functions/weave-demo/url$"),
    ("api", "POST", r"^/v2/apis/[^/]+/routes$"),
])
def test_hard_failure_at_endpoint_leaves_nothing_behind(aws, endpoint, method, path):
    mgr = aws.manager()
    aws.proxy.add(Rule(method, path, status=500, count=1000))
    with pytest.raises(WeaveError) as err:
        deploy(mgr, options={"endpoint": endpoint})
    assert "what this run created was removed" in str(err.value)
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    rec = mgr.inventory.get("aws", "demo")
    assert rec.status.value == "failed" and rec.resources == []


def test_keep_on_failure_keeps_and_records_what_was_made(aws):
    mgr = aws.manager()
    aws.proxy.add(Rule("POST", r"/2021-10-31/functions/weave-demo/url$", status=500, count=1000))
    with pytest.raises(WeaveError):
        deploy(mgr, options={"keep_on_failure": True})
    assert aws.counts()["functions"] == 1 and aws.counts()["roles"] == 1
    kinds = {r.kind for r in mgr.inventory.get("aws", "demo").resources}
    assert {"role", "function", "alias", "version"} <= kinds
    aws.proxy.clear()
    # a failed deploy can be finished by deploying again, or removed by undeploy
    assert deploy(mgr).status.value == "active"
    mgr.destroy("demo", "aws")
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def test_failed_update_keeps_the_previous_release_live(aws):
    mgr = aws.manager()
    first = deploy(mgr)
    aws.proxy.add(Rule("PUT", r"/functions/weave-demo/url$", status=500, count=1000))
    with pytest.raises(WeaveError):
        deploy(mgr, public=True, text=HELLO.replace("warmly", "briefly"))
    lam = aws.client("lambda")
    assert lam.get_alias(FunctionName="weave-demo", Name="live")["FunctionVersion"] == first.version
    assert aws.counts()["functions"] == 1 and aws.counts()["roles"] == 1


def test_undeploy_after_interrupted_deploy_finds_unrecorded_resources(aws):
    mgr = aws.manager()
    aws.proxy.add(Rule("POST", r"/2021-10-31/functions/weave-demo/url$", status=500, count=1000))
    with pytest.raises(WeaveError):
        deploy(mgr, options={"keep_on_failure": True})
    # simulate a crash before the inventory was written: forget every resource
    for res in mgr.inventory.resources("aws", "demo"):
        mgr.inventory.remove_resource("aws", "demo", res.kind, res.id)
    aws.proxy.clear()
    mgr.destroy("demo", "aws")
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}


def test_local_invoke_after_a_failed_update_runs_the_live_release(aws):
    mgr = aws.manager()
    deploy(mgr)
    aws.proxy.add(Rule("PUT", r"/functions/weave-demo/url$", status=500, count=1000))
    renamed = HELLO.replace("  hello:\n", "  hello2:\n")
    assert renamed != HELLO
    with pytest.raises(WeaveError):
        deploy(mgr, public=True, text=renamed)
    assert mgr.invoke("demo", "aws", {"weave": "hello", "input": "Ada"}, local=True)["weave"] == "hello"
    assert len(list((aws.home / "aws" / "demo").glob("*.zip"))) == 2  # the failed release's zip is not live
    aws.proxy.clear()
    deploy(mgr, text=renamed)
    assert mgr.invoke("demo", "aws", {"weave": "hello2", "input": "Ada"}, local=True)["weave"] == "hello2"
    assert len(list((aws.home / "aws" / "demo").glob("*.zip"))) == 2  # the previous release's stays for rollback
