"""``weave alarm`` on AWS against moto_server: a CloudWatch alarm on the runtime's EMF metrics, an SNS topic and
e-mail subscription, each recorded, shown by --dry-run, listed, and gone after undeploy or --delete."""

from __future__ import annotations

import io

import pytest

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

from weave_nb.core.alarms import Alarms, alarm_spec
from weave_nb.core.errors import ConfigError, ForeignResource, NotFound
from weave_nb.core.plan import Plan

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()


def deployed(aws, name="demo"):
    mgr = aws.manager()
    mgr.deploy({"name": name, "provider": "aws", "weave_text": HELLO})
    return mgr


def alarms_of(aws):
    return {a["AlarmName"]: a for a in aws.client("cloudwatch").describe_alarms()["MetricAlarms"]}


def test_p95_alarm_with_email_exists_in_moto_and_undeploy_removes_alarm_topic_and_subscription(aws):
    mgr = deployed(aws)
    listed = Alarms(mgr).create("demo", alarm_spec(p95_ms=800, email="oncall@example.com", period=120))
    alarm = alarms_of(aws)["weave-nb-demo-p95-ms"]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["ExtendedStatistic"]) == ("WeaveNb", "Latency", "p95")
    assert alarm["Dimensions"] == [{"Name": "Deployment", "Value": "demo"}]
    assert (alarm["Threshold"], alarm["Period"], alarm["ComparisonOperator"]) == (800.0, 120, "GreaterThanThreshold")
    sns = aws.client("sns")
    topics = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    assert len(topics) == 1 and topics[0].endswith(":weave-nb-demo-alarms")
    assert alarm["AlarmActions"] == topics
    subs = sns.list_subscriptions_by_topic(TopicArn=topics[0])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("email", "oncall@example.com")]
    tags = {t["Key"]: t["Value"] for t in aws.client("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]}
    assert tags["weave-nb:name"] == "demo" and tags["weave-nb:owner"] == mgr.inventory.owner_id
    topic_tags = {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(ResourceArn=topics[0])["Tags"]}
    assert topic_tags["weave-nb:owner"] == mgr.inventory.owner_id
    kinds = {(r.kind, r.id) for r in mgr.status("demo", "aws").resources}
    assert {("alarm", "weave-nb-demo-p95-ms"), ("sns-topic", topics[0]), ("sns-subscription", subs[0]["SubscriptionArn"])} <= kinds
    assert [(a["name"], a["threshold"], a["metric"]) for a in listed] == [("weave-nb-demo-p95-ms", 800.0, "Latency")]

    plan = mgr.destroy("demo", "aws", dry_run=True)
    assert [s.key for s in plan.steps][:3] == ["delete-alarm-weave-nb-demo-p95-ms", f"delete-sns-subscription-{subs[0]['SubscriptionArn']}",
                                              f"delete-sns-topic-{topics[0]}"]
    mgr.destroy("demo", "aws")
    assert alarms_of(aws) == {}
    assert sns.list_topics()["Topics"] == [] and sns.list_subscriptions()["Subscriptions"] == []


def test_error_rate_alarm_is_metric_math_over_errors_and_requests(aws):
    mgr = deployed(aws)
    Alarms(mgr).create("demo", alarm_spec(error_rate=5))
    alarm = alarms_of(aws)["weave-nb-demo-error-rate"]
    assert alarm["Threshold"] == 5.0 and alarm["AlarmActions"] == []
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    assert metrics["rate"]["Expression"] == "100 * errors / requests" and metrics["rate"]["ReturnData"] is True
    for mid, name in (("errors", "Errors"), ("requests", "Requests")):
        stat = metrics[mid]["MetricStat"]
        assert stat["Metric"] == {"Namespace": "WeaveNb", "MetricName": name, "Dimensions": [{"Name": "Deployment", "Value": "demo"}]}
        assert stat["Stat"] == "Sum" and metrics[mid]["ReturnData"] is False


def test_dry_run_shows_the_plan_and_creates_nothing_then_a_second_run_is_no_change(aws):
    mgr = deployed(aws)
    spec = alarm_spec(p95_ms=500, email="a@example.com")
    plan = Alarms(mgr).create("demo", spec, dry_run=True)
    assert isinstance(plan, Plan) and plan.title == "Alarm plan for demo on aws"
    assert [(s.key, s.action) for s in plan.steps] == [("topic", "create"), ("subscription", "create"), ("alarm", "create")]
    assert alarms_of(aws) == {} and aws.client("sns").list_topics()["Topics"] == []
    Alarms(mgr).create("demo", spec)
    again = Alarms(mgr).create("demo", spec, dry_run=True)
    assert [(s.key, s.action) for s in again.steps] == [("topic", "no-change"), ("subscription", "no-change"), ("alarm", "no-change")]
    changed = Alarms(mgr).create("demo", alarm_spec(p95_ms=900), dry_run=True)
    assert [(s.key, s.action) for s in changed.steps] == [("alarm", "update")]  # keeps notifying the topic it has


def test_delete_one_alarm_keeps_the_topic_until_the_last_alarm_goes(aws):
    mgr = deployed(aws)
    alarms = Alarms(mgr)
    alarms.create("demo", alarm_spec(p95_ms=500, email="a@example.com"))
    alarms.create("demo", alarm_spec(error_rate=2))
    assert set(alarms_of(aws)) == {"weave-nb-demo-p95-ms", "weave-nb-demo-error-rate"}
    assert alarms_of(aws)["weave-nb-demo-error-rate"]["AlarmActions"] == alarms_of(aws)["weave-nb-demo-p95-ms"]["AlarmActions"]
    alarms.delete("demo", "weave-nb-demo-p95-ms")
    assert set(alarms_of(aws)) == {"weave-nb-demo-error-rate"}
    assert len(aws.client("sns").list_topics()["Topics"]) == 1
    alarms.delete("demo", "weave-nb-demo-error-rate")
    assert alarms_of(aws) == {} and aws.client("sns").list_topics()["Topics"] == []
    with pytest.raises(NotFound, match="no alarm named"):
        alarms.delete("demo", "weave-nb-demo-error-rate")


def test_an_alarm_of_that_name_made_elsewhere_is_left_untouched(aws):
    mgr = deployed(aws)
    aws.client("cloudwatch").put_metric_alarm(AlarmName="weave-nb-demo-p95-ms", Namespace="Other", MetricName="X", Statistic="Sum",
                                              Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    with pytest.raises(ForeignResource):
        Alarms(mgr).create("demo", alarm_spec(p95_ms=500))
    assert alarms_of(aws)["weave-nb-demo-p95-ms"]["Namespace"] == "Other"


def test_cli_alarm_dry_run_list_and_delete(aws):
    from weave_nb.frontends.cli import main

    deployed(aws)
    out, err = io.StringIO(), io.StringIO()
    assert main(["alarm", "demo", "--p95-ms", "700", "--dry-run"], out=out, err=err) == 0, err.getvalue()
    assert "Alarm plan for demo on aws" in out.getvalue() and "+ create    CloudWatch alarm weave-nb-demo-p95-ms" in out.getvalue()
    assert alarms_of(aws) == {}
    out = io.StringIO()
    assert main(["alarm", "demo", "--p95-ms", "700"], out=out, err=err) == 0, err.getvalue()
    assert "weave-nb-demo-p95-ms" in out.getvalue()
    out = io.StringIO()
    assert main(["alarm", "demo", "--list"], out=out, err=err) == 0
    assert "weave-nb-demo-p95-ms" in out.getvalue() and "700" in out.getvalue()
    out = io.StringIO()
    assert main(["alarm", "demo", "--delete", "weave-nb-demo-p95-ms"], out=out, err=err) == 0, err.getvalue()
    assert alarms_of(aws) == {}


def test_bad_alarm_arguments_fail_before_any_call(aws):
    from weave_nb.frontends.cli import main

    deployed(aws)
    before = len(aws.proxy.calls)
    for argv, text in ((["alarm", "demo"], "give one of --error-rate"),
                       (["alarm", "demo", "--error-rate", "5", "--p95-ms", "3"], "give one of --error-rate"),
                       (["alarm", "demo", "--error-rate", "150"], "at most 100"),
                       (["alarm", "demo", "--p95-ms", "100", "--email", "nobody"], "not an e-mail address"),
                       (["alarm", "demo", "--p95-ms", "100", "--period", "90"], "multiple of 60")):
        err = io.StringIO()
        assert main(argv, out=io.StringIO(), err=err) == 2, argv
        assert text in err.getvalue()
    assert len(aws.proxy.calls) == before
    with pytest.raises(ConfigError):
        alarm_spec(error_rate=0)


def test_a_failing_alarm_rolls_back_the_topic_and_subscription_it_made(aws):
    try:
        from tests.aws_servers import Rule
    except ImportError:
        from aws_servers import Rule

    mgr = deployed(aws)
    rule = aws.proxy.add(Rule("POST", r"^/$", status=400, count=99, operation="PutMetricAlarm",
                              body=b'{"__type": "InvalidParameterValue", "message": "injected"}'))
    with pytest.raises(Exception, match="injected|InvalidParameterValue|400"):
        Alarms(mgr).create("demo", alarm_spec(p95_ms=500, email="a@example.com"))
    assert rule.hits >= 1
    assert alarms_of(aws) == {}
    sns = aws.client("sns")
    assert sns.list_topics()["Topics"] == [] and sns.list_subscriptions()["Subscriptions"] == []
    assert not {r.kind for r in mgr.inventory.resources("aws", "demo")} & {"alarm", "sns-topic", "sns-subscription"}
    assert mgr.status("demo", "aws").status.value == "active"  # the deployment itself is untouched
