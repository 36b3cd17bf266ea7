"""``weave alarm`` on GCP: a Cloud Monitoring alert policy (and an e-mail channel) made in the fake's Cloud Monitoring
v3 REST resources (weave_nb.sandbox.emulators.monitoring_fake), recorded, listed, and gone after undeploy."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest

pytest.importorskip("google.cloud.monitoring_v3")

from weave_nb.core.alarms import Alarms, alarm_spec  # noqa: E402
from weave_nb.core.errors import ForeignResource  # noqa: E402
from weave_nb.core.manager import DeploymentManager  # noqa: E402
from gcp_fixtures import point_at_fake, running_fake  # noqa: E402

from test_gcp_provider import HELLO  # noqa: E402

pytestmark = pytest.mark.gcp


@pytest.fixture
def fake():
    yield from running_fake(polls_before_done=1)


@pytest.fixture
def mgr(fake, tmp_path, monkeypatch):
    point_at_fake(monkeypatch, fake, tmp_path)
    manager = DeploymentManager(home=tmp_path / "home", sleep=lambda s: None)
    manager.deploy({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO})
    return manager


def rest(fake, method, path, body=None):
    """A call to the fake's Cloud Monitoring REST API, as any HTTP client would make it."""
    req = urllib.request.Request(f"{fake.url}/v3/{path}", method=method, data=json.dumps(body).encode() if body else None,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def policies(fake):
    return rest(fake, "GET", "projects/demo-proj/alertPolicies")[1].get("alertPolicies", [])


def test_p95_policy_with_email_exists_in_the_fake_and_undeploy_removes_it(mgr, fake):
    listed = Alarms(mgr).create("demo-fn", alarm_spec(p95_ms=800, email="oncall@example.com"))
    [policy] = policies(fake)
    assert policy["displayName"] == "weave-nb-demo-fn-p95-ms" and policy["combiner"] == "OR"
    assert policy["userLabels"]["weave-nb-name"] == "demo-fn" and policy["userLabels"]["weave-nb-owner"] == mgr.inventory.owner_id
    th = policy["conditions"][0]["conditionThreshold"]
    assert 'metric.type = "run.googleapis.com/request_latencies"' in th["filter"]
    assert 'resource.type = "cloud_run_revision"' in th["filter"] and 'service_name = "demo-fn"' in th["filter"]
    assert th["aggregations"][0]["perSeriesAligner"] == "ALIGN_PERCENTILE_95"
    assert th["aggregations"][0]["alignmentPeriod"] == "300s"
    assert (th["comparison"], th["thresholdValue"]) == ("COMPARISON_GT", 800.0)
    channels = rest(fake, "GET", "projects/demo-proj/notificationChannels")[1]["notificationChannels"]
    assert [(c["type"], c["labels"]["email_address"]) for c in channels] == [("email", "oncall@example.com")]
    assert policy["notificationChannels"] == [channels[0]["name"]]
    assert [(a["name"], a["metric"]) for a in listed] == [("weave-nb-demo-fn-p95-ms", "run.googleapis.com/request_latencies")]
    kinds = {r.kind for r in mgr.inventory.resources("gcp", "demo-fn")}
    assert {"alert-policy", "notification-channel"} <= kinds

    plan = mgr.destroy("demo-fn", "gcp", dry_run=True)
    assert [s.call for s in plan.steps][:2] == ["delete_monitoring", "delete_monitoring"]
    mgr.destroy("demo-fn", "gcp")
    assert policies(fake) == []
    assert rest(fake, "GET", "projects/demo-proj/notificationChannels")[1].get("notificationChannels", []) == []


def test_error_rate_policy_is_a_5xx_ratio_and_a_second_run_changes_nothing(mgr, fake):
    spec = alarm_spec(error_rate=5)
    Alarms(mgr).create("demo-fn", spec)
    th = policies(fake)[0]["conditions"][0]["conditionThreshold"]
    assert 'metric.labels.response_code_class = "5xx"' in th["filter"] and "run.googleapis.com/request_count" in th["denominatorFilter"]
    assert th["thresholdValue"] == 0.05 and th["denominatorAggregations"] == th["aggregations"]
    again = Alarms(mgr).create("demo-fn", spec, dry_run=True)
    assert [(s.key, s.action) for s in again.steps] == [("policy", "no-change")]
    Alarms(mgr).create("demo-fn", alarm_spec(error_rate=10))
    assert [p["conditions"][0]["conditionThreshold"]["thresholdValue"] for p in policies(fake)] == [0.1]
    Alarms(mgr).delete("demo-fn", "weave-nb-demo-fn-error-rate")
    assert policies(fake) == []


def test_a_policy_of_that_name_made_elsewhere_is_left_untouched(mgr, fake):
    body = {"displayName": "weave-nb-demo-fn-p95-ms", "combiner": "OR", "conditions": [{"displayName": "x", "conditionThreshold": {
        "filter": 'resource.type = "cloud_run_revision" AND metric.type = "run.googleapis.com/request_count"',
        "comparison": "COMPARISON_GT", "thresholdValue": 1, "duration": "0s"}}]}
    assert rest(fake, "POST", "projects/demo-proj/alertPolicies", body)[0] == 200
    with pytest.raises(ForeignResource):
        Alarms(mgr).create("demo-fn", alarm_spec(p95_ms=500))
    assert len(policies(fake)) == 1


def test_the_fake_checks_policies_as_the_real_service_does(fake):
    base = 'resource.type = "cloud_run_revision" AND metric.type = '
    cases = [
        ({"displayName": "a", "combiner": "OR", "conditions": []}, 400, "at least one condition"),
        ({"displayName": "a", "conditions": [{"conditionThreshold": {"filter": base + '"run.googleapis.com/request_count"',
                                                                       "comparison": "COMPARISON_GT"}}]}, 400, "combiner"),
        ({"combiner": "OR", "conditions": [{"conditionThreshold": {"filter": base + '"run.googleapis.com/nope"',
                                                                     "comparison": "COMPARISON_GT"}}]}, 404, "Cannot find metric"),
        ({"combiner": "OR", "conditions": [{"conditionThreshold": {
            "filter": base + '"run.googleapis.com/request_count"', "comparison": "COMPARISON_GT",
            "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_PERCENTILE_95"}]}}]}, 400, "DISTRIBUTION"),
        ({"combiner": "OR", "conditions": [{"conditionThreshold": {
            "filter": base + '"run.googleapis.com/request_latencies"', "comparison": "COMPARISON_GT",
            "aggregations": [{"alignmentPeriod": "30s", "perSeriesAligner": "ALIGN_PERCENTILE_95"}]}}]}, 400, "at least 60s"),
        ({"combiner": "OR", "userLabels": {"Bad": "x"}, "conditions": [{"conditionThreshold": {
            "filter": base + '"run.googleapis.com/request_count"', "comparison": "COMPARISON_GT"}}]}, 400, "invalid label"),
        ({"combiner": "OR", "notificationChannels": ["projects/demo-proj/notificationChannels/1"], "conditions": [
            {"conditionThreshold": {"filter": base + '"run.googleapis.com/request_count"', "comparison": 1}}]}, 404, "notification channel"),
    ]
    for body, status, text in cases:
        code, answer = rest(fake, "POST", "projects/demo-proj/alertPolicies", body)
        assert (code, text in answer["error"]["message"]) == (status, True), (body, answer)
    code, channel = rest(fake, "POST", "projects/demo-proj/notificationChannels", {"type": "email", "labels": {"email_address": "a@b.co"}})
    assert code == 200 and channel["verificationStatus"] == "UNVERIFIED"
    ok = {"combiner": 2, "notificationChannels": [channel["name"]], "conditions": [{"displayName": "c", "conditionThreshold": {
        "filter": base + '"run.googleapis.com/request_latencies"', "comparison": 1,
        "aggregations": [{"alignmentPeriod": "60s", "perSeriesAligner": 19}]}}]}
    code, made = rest(fake, "POST", "projects/demo-proj/alertPolicies", ok)
    assert code == 200 and made["combiner"] == "OR" and made["conditions"][0]["name"].startswith(made["name"] + "/conditions/")
    cid = channel["name"].rsplit("/", 1)[1]
    code, answer = rest(fake, "DELETE", f"projects/demo-proj/notificationChannels/{cid}")
    assert code == 400 and answer["error"]["status"] == "FAILED_PRECONDITION"
    assert rest(fake, "DELETE", f"projects/demo-proj/notificationChannels/{cid}?force=true")[0] == 200
    pid = made["name"].rsplit("/", 1)[1]
    assert rest(fake, "GET", f"projects/demo-proj/alertPolicies/{pid}")[1]["notificationChannels"] == []
    assert rest(fake, "DELETE", f"projects/demo-proj/alertPolicies/{pid}")[0] == 200
    assert rest(fake, "GET", f"projects/demo-proj/alertPolicies/{pid}")[0] == 404


def test_alarms_are_not_available_on_local(tmp_path, monkeypatch):
    from weave_nb.frontends.cli import main

    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    from weave_nb.core.inventory import Inventory

    Inventory(tmp_path / "home").save("local", "svc", status="active")  # a recorded deployment; nothing is started
    err = io.StringIO()
    assert main(["alarm", "svc", "--p95-ms", "500"], out=io.StringIO(), err=err) == 2
    assert "alarms are not available on local" in err.getvalue() and "hint:" in err.getvalue()
