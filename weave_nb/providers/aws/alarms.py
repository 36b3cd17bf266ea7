"""``weave alarm`` on AWS: a CloudWatch alarm on the runtime's Embedded Metric Format metrics, and an SNS topic.

The runtime writes, on Lambda, one EMF line per request; CloudWatch turns it
into metrics in namespace ``WeaveNb`` with the dimension ``Deployment`` (the
weave-nb deployment name): ``Requests`` (Count), ``Errors`` (Count, status >=
500), ``Latency`` (Milliseconds). The alarms:

* ``--p95-ms MS``: ``Latency`` with the extended statistic ``p95`` over the
  period, above MS;
* ``--error-rate PERCENT``: metric math ``100 * errors / requests`` over the
  ``Sum`` of ``Errors`` and ``Requests`` in the period, above PERCENT.

Both treat missing data as not breaching (no traffic is not an incident).
``--email`` adds the deployment's SNS topic ``weave-nb-<name>-alarms`` (one per
deployment, shared by its alarms) and an e-mail subscription, which AWS keeps
pending until the address confirms. Every resource carries the ownership
tags, is recorded in the inventory the moment it exists, and is removed by
``weave undeploy`` (kinds ``alarm``, ``sns-subscription``, ``sns-topic``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core import ownership
from ...core.errors import NotFound
from ...core.plan import Plan, PlannedStep
from .settings import tags_for

if TYPE_CHECKING:
    from ...core.alarms import AlarmSpec
    from ...core.executor import Run
    from ..base import DeployContext

NAMESPACE = "WeaveNb"
DIMENSION = "Deployment"


def topic_name(name: str) -> str:
    """The deployment's SNS topic: ``weave-nb-<name>-alarms``."""
    return f"weave-nb-{name}-alarms"


def alarm_request(name: str, alarm: str, spec: dict[str, Any], topic: str | None, tags: dict[str, str] | None) -> dict[str, Any]:
    """The ``PutMetricAlarm`` parameters of alarm ``alarm`` on deployment ``name`` (``spec``: ``AlarmSpec.params()``)."""
    dims = [{"Name": DIMENSION, "Value": name}]
    kind, period = spec["kind"], int(spec["period"])
    out: dict[str, Any] = {
        "AlarmName": alarm,
        "AlarmDescription": f"weave-nb: {_describe(spec)} for deployment {name}",
        "EvaluationPeriods": 1,
        "Threshold": float(spec["threshold"]),
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "ActionsEnabled": True,
        "AlarmActions": [topic] if topic else [],
    }
    if kind == "p95-ms":
        out.update(Namespace=NAMESPACE, MetricName="Latency", Dimensions=dims, ExtendedStatistic="p95", Period=period,
                   Unit="Milliseconds")
    else:
        def stat(mid: str, metric: str) -> dict[str, Any]:
            return {"Id": mid, "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims}, "Period": period, "Stat": "Sum"}}

        out["Metrics"] = [stat("errors", "Errors"), stat("requests", "Requests"),
                          {"Id": "rate", "Expression": "100 * errors / requests", "Label": "error rate (%)", "ReturnData": True}]
    if tags:
        out["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return out


def _describe(spec: dict[str, Any]) -> str:
    from ...core.alarms import AlarmSpec

    return AlarmSpec(**spec).describe()


def _same(found: dict[str, Any], want: dict[str, Any]) -> bool:
    """True when the live alarm already is what ``want`` (PutMetricAlarm parameters) asks for."""
    keys = ("Threshold", "ComparisonOperator", "EvaluationPeriods", "TreatMissingData", "AlarmActions")
    if any(found.get(k) != want.get(k) for k in keys):
        return False
    if "Metrics" in want:
        return [m.get("Expression") or m.get("MetricStat") for m in found.get("Metrics") or []] == \
            [m.get("Expression") or m.get("MetricStat") for m in want["Metrics"]]
    return all(found.get(k) == want.get(k) for k in ("MetricName", "Namespace", "Dimensions", "ExtendedStatistic", "Period"))


class AwsAlarms:
    """Alarm planning and apply/undo functions of the aws provider (mixed into ``AwsProvider``)."""

    supports_alarms = True

    # -- planning ---------------------------------------------------------------------
    def plan_alarm(self, ctx: "DeployContext", spec: "AlarmSpec") -> Plan:
        """The steps that make the live alarm (and its topic and subscription) match ``spec``.

        Raises:
            ForeignResource: an alarm or topic of that name exists without this inventory's marks.
        """
        client, _ = self._client_for(ctx)  # type: ignore[attr-defined]
        alarm = spec.alarm_name(ctx.name)
        steps: list[PlannedStep] = []
        observed: dict[str, Any] = {"region": client.region}
        topic = next((r.id for r in ctx.resources("sns-topic")), None)
        if topic is not None:
            found = client.api.sns.find_tags(topic)
            if found is None:
                topic = None  # recorded, but gone: made again below when --email asks for it
            else:
                ownership.check("tag", f"SNS topic {topic}", found, ctx.owner, False, ctx.name)
        observed["topic"] = topic
        if spec.email:
            if topic is None:
                steps.append(PlannedStep(key="topic", resource=f"SNS topic {topic_name(ctx.name)}", action="create",
                                         detail="where the deployment's alarms notify", call="create_topic",
                                         params={"name": topic_name(ctx.name)}, undo="delete_topic"))
                subscribed = False
            else:
                steps.append(PlannedStep(key="topic", resource=f"SNS topic {topic}", action="no-change"))
                subscribed = any(str(s.get("Endpoint", "")).lower() == spec.email.lower()
                                 for s in client.api.sns.subscriptions(topic))
            steps.append(PlannedStep(
                key="subscription", resource=f"e-mail subscription {spec.email}",
                action="no-change" if subscribed else "create",
                detail="" if subscribed else "AWS mails a confirmation link; nothing is sent until it is followed",
                call=None if subscribed else "subscribe", params={"topic": topic, "email": spec.email},
                undo=None if subscribed else "unsubscribe"))
        notify = bool(spec.email) or topic is not None
        want = alarm_request(ctx.name, alarm, spec.params(), topic or "(new topic)" if notify else None, None)
        live = client.api.cloudwatch.find_alarm(alarm)
        observed["alarm"] = bool(live)
        if live is None:
            action, undo = "create", "delete_alarm"
        else:
            ownership.check("tag", f"CloudWatch alarm {alarm}", client.api.cloudwatch.find_tags(live["AlarmArn"]),
                            ctx.owner, False, ctx.name)
            action, undo = ("no-change" if _same(live, want) else "update"), None
        steps.append(PlannedStep(
            key="alarm", resource=f"CloudWatch alarm {alarm}", action=action, detail=spec.describe(),
            call=None if action == "no-change" else "put_alarm",
            params={"alarm": alarm, "spec": spec.params(), "topic": topic, "notify": notify}, undo=undo))
        notes = [f"metrics: namespace {NAMESPACE}, dimension {DIMENSION}={ctx.name} (written by the runtime on every request)"]
        if not notify:
            notes.append("no --email: the alarm changes state in CloudWatch but tells nobody")
        return Plan(provider="aws", name=ctx.name, operation="alarm", steps=steps, notes=notes, observed=observed)

    def plan_alarm_delete(self, ctx: "DeployContext", alarm: str) -> Plan:
        """Delete the alarm ``alarm``; once no alarm is left, the topic and its subscriptions too.

        Raises:
            NotFound: the deployment records no alarm of that name.
        """
        recorded = [r.id for r in ctx.resources("alarm")]
        if alarm not in recorded:
            raise NotFound(f"{ctx.name!r} has no alarm named {alarm!r}" + (f" (it has: {', '.join(recorded)})" if recorded else ""),
                           f"list them with `weave alarm {ctx.name} --list`")
        fname = self._fname(ctx)  # type: ignore[attr-defined]
        kinds = [("alarm", alarm)]
        if recorded == [alarm]:
            kinds += [("sns-subscription", r.id) for r in ctx.resources("sns-subscription")]
            kinds += [("sns-topic", r.id) for r in ctx.resources("sns-topic")]
        steps = [PlannedStep(key=f"delete-{kind}-{rid}", resource=f"{kind} {rid}", action="delete", call="delete",
                             params={"kind": kind, "id": rid, "function_name": fname}) for kind, rid in kinds]
        return Plan(provider="aws", name=ctx.name, operation="alarm", steps=steps)

    def list_alarms(self, ctx: "DeployContext") -> list[dict[str, Any]]:
        """The deployment's recorded alarms as CloudWatch reports them (``state`` ``missing`` when gone)."""
        client, _ = self._client_for(ctx)  # type: ignore[attr-defined]
        out = []
        for res in ctx.resources("alarm"):
            live = client.api.cloudwatch.find_alarm(res.id) or {}
            metric = live.get("MetricName") or ("100 * Errors / Requests" if live.get("Metrics") else None)
            out.append({"name": res.id, "kind": res.attrs.get("alarm_kind"), "threshold": live.get("Threshold", res.attrs.get("threshold")),
                        "state": live.get("StateValue", "missing"), "metric": metric, "notify": ", ".join(live.get("AlarmActions") or []) or None})
        return out

    # -- apply and undo ---------------------------------------------------------------
    def apply_create_topic(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        client = self._run_client(run)  # type: ignore[attr-defined]
        arn = client.api.sns.create_topic(step.params["name"], tags_for(run.ctx.name, run.ctx.owner))
        run.ctx.add_resource("sns-topic", arn, topic_name=step.params["name"])
        return {"topic": arn}

    def undo_delete_topic(self, run: "Run", step: PlannedStep, result: dict[str, Any]) -> None:
        self._run_client(run).api.sns.delete_topic(result["topic"])  # type: ignore[attr-defined]
        run.ctx.remove_resource("sns-topic", result["topic"])

    def apply_subscribe(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        topic = step.params.get("topic") or run.outputs["topic"]
        arn = self._run_client(run).api.sns.subscribe_email(topic, step.params["email"])  # type: ignore[attr-defined]
        run.ctx.add_resource("sns-subscription", arn, topic=topic, email=step.params["email"])
        return {"subscription": arn}

    def undo_unsubscribe(self, run: "Run", step: PlannedStep, result: dict[str, Any]) -> None:
        self._run_client(run).api.sns.unsubscribe(result["subscription"])  # type: ignore[attr-defined]
        run.ctx.remove_resource("sns-subscription", result["subscription"])

    def apply_put_alarm(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        p = step.params
        topic = (p.get("topic") or run.outputs.get("topic")) if p.get("notify") else None
        client = self._run_client(run)  # type: ignore[attr-defined]
        request = alarm_request(run.ctx.name, p["alarm"], p["spec"], topic, tags_for(run.ctx.name, run.ctx.owner))
        client.api.cloudwatch.put_alarm(**request)
        live = client.api.cloudwatch.find_alarm(p["alarm"]) or {}
        run.ctx.add_resource("alarm", p["alarm"], arn=live.get("AlarmArn"), alarm_kind=p["spec"]["kind"],
                             threshold=p["spec"]["threshold"], period=p["spec"]["period"], topic=topic)
        return {"alarm": p["alarm"]}

    def undo_delete_alarm(self, run: "Run", step: PlannedStep, result: dict[str, Any]) -> None:
        self._run_client(run).api.cloudwatch.delete_alarm(result["alarm"])  # type: ignore[attr-defined]
        run.ctx.remove_resource("alarm", result["alarm"])
