"""``weave alarm`` on GCP: a Cloud Monitoring alert policy (and an e-mail notification channel).

**Which metric, and why.** A Cloud Functions (2nd gen) function runs as a
Cloud Run service, and Cloud Run records, for every request and with no code
of ours, ``run.googleapis.com/request_latencies`` (a DELTA distribution in
milliseconds) and ``run.googleapis.com/request_count`` (a DELTA count
labelled with ``response_code_class``), on the monitored resource
``cloud_run_revision`` labelled with the ``service_name``. The real service
accepts threshold conditions on both as written below; a log-based metric
would first need a metric of our own made from the runtime's structured
request logs (another resource, and minutes before it has data), so the
platform metrics are used:

* ``--p95-ms MS``: ``request_latencies`` of the function's service, aligned
  with ``ALIGN_PERCENTILE_95`` over the period, above MS (each revision's
  series is checked; one above the threshold opens an incident);
* ``--error-rate PERCENT``: the ratio of ``request_count`` with
  ``response_code_class = "5xx"`` (status >= 500, as the AWS ``Errors``
  metric counts) to all ``request_count``, both ``ALIGN_DELTA`` and summed
  per service, above PERCENT / 100.

**The client.** The alert policy and notification channel bodies are built
with the official ``google-cloud-monitoring`` message types
(``monitoring_v3.AlertPolicy``, ``NotificationChannel``; their JSON form is the
REST API's) and sent over the Cloud Monitoring v3 REST API with
``google-auth``'s authorized session: the library's service clients ship a
gRPC transport only (2.32 has no ``transport="rest"``), and REST is what the
sandbox's fake serves (``weave_nb.sandbox.emulators.monitoring_fake``). The
endpoint is ``https://monitoring.googleapis.com``, or
``WEAVE_GCP_MONITORING_ENDPOINT``, or — when the Cloud Functions endpoint is
overridden (the sandbox, the tests) — that same endpoint.

Every policy and channel carries the ownership labels, is recorded in the
inventory the moment it exists (kinds ``alert-policy`` and
``notification-channel``) and is removed by ``weave undeploy``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ...core import ownership
from ...core.errors import DeploymentFailed, NotFound
from ...core.plan import Plan, PlannedStep
from ..retry import RetryPolicy, retry

if TYPE_CHECKING:
    from ...core.alarms import AlarmSpec
    from ...core.executor import Run
    from ..base import DeployContext

DEFAULT_ENDPOINT = "https://monitoring.googleapis.com"
POLICY, CHANNEL = "alert-policy", "notification-channel"
_TRANSIENT = (429, 500, 502, 503, 504)


class _Transient(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class MonitoringRest:
    """Cloud Monitoring v3 REST calls for one project, with retries of 429/5xx (sleep injected).

    Args:
        session: the provider's ``GcpSession`` (credentials, project).
        endpoint: the API root (``https://monitoring.googleapis.com`` or an override).
        sleep: the sleep function between retries.
    """

    def __init__(self, session: Any, endpoint: str, sleep: Any) -> None:
        from google.auth.transport.requests import AuthorizedSession

        self.project = session.project
        self.root = endpoint.rstrip("/")
        self.http = AuthorizedSession(session.credentials)
        self.sleep = sleep
        self.policy = RetryPolicy(attempts=4, base=0.5, cap=8.0, rand=None)

    def call(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        """One REST call; 404 answers ``None``-like ``{}`` only through :meth:`find`.

        Raises:
            DeploymentFailed: an error status (after retries for 429/5xx), with the service's message.
        """
        def once() -> Any:
            resp = self.http.request(method, f"{self.root}/v3/{path}", json=body, params=params, timeout=60)
            if resp.status_code in _TRANSIENT:
                raise _Transient(resp.status_code, resp.text)
            return resp

        resp = retry(once, lambda exc: isinstance(exc, _Transient), self.sleep, self.policy)
        if resp.status_code == 404:
            raise NotFound(f"Cloud Monitoring: {_message(resp)}", "check the project, or list with `weave alarm NAME --list`")
        if resp.status_code >= 400:
            raise DeploymentFailed(f"Cloud Monitoring answered {resp.status_code}: {_message(resp)}",
                                   "check the alarm settings; the account needs roles/monitoring.editor")
        return resp.json() if resp.content else {}

    def find(self, path: str) -> dict | None:
        """``GET path``, or ``None`` when it is not there."""
        try:
            return self.call("GET", path)
        except NotFound:
            return None

    def pages(self, path: str, key: str, filter: str | None = None) -> list[dict]:
        """Every item of a listing, following ``nextPageToken``."""
        items: list[dict] = []
        params: dict[str, Any] = {"pageSize": 100, **({"filter": filter} if filter else {})}
        for _ in range(100):
            page = self.call("GET", path, params=params)
            items.extend(page.get(key) or [])
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
        return items

    def delete(self, path: str, params: dict | None = None) -> None:
        """``DELETE path``; already gone is fine."""
        try:
            self.call("DELETE", path, params=params)
        except NotFound:
            pass


def _message(resp: Any) -> str:
    try:
        return str(resp.json()["error"]["message"])[:400]
    except Exception:  # noqa: BLE001 - not the JSON error shape
        return resp.text[:400]


def _labels(name: str, owner: str) -> dict[str, str]:
    return ownership.marks("label", name, owner)


def policy_body(name: str, service: str, spec: dict[str, Any], channels: list[str], labels: dict[str, str]) -> dict[str, Any]:
    """The ``AlertPolicy`` (REST JSON, built with the official message types) for alarm ``spec`` on ``service``."""
    from google.cloud import monitoring_v3
    from google.protobuf import duration_pb2

    from ...core.alarms import AlarmSpec

    alarm = AlarmSpec(**spec)
    period = duration_pb2.Duration(seconds=int(alarm.period))
    where = f'resource.type = "cloud_run_revision" AND resource.labels.service_name = "{service}"'
    agg = monitoring_v3.Aggregation
    cond = monitoring_v3.AlertPolicy.Condition
    if alarm.kind == "p95-ms":
        threshold = cond.MetricThreshold(
            filter=f'{where} AND metric.type = "run.googleapis.com/request_latencies"',
            aggregations=[agg(alignment_period=period, per_series_aligner=agg.Aligner.ALIGN_PERCENTILE_95)],
            comparison=monitoring_v3.ComparisonType.COMPARISON_GT, threshold_value=alarm.threshold,
            duration=duration_pb2.Duration(seconds=0), trigger=cond.Trigger(count=1))
    else:
        summed = [agg(alignment_period=period, per_series_aligner=agg.Aligner.ALIGN_DELTA,
                      cross_series_reducer=agg.Reducer.REDUCE_SUM, group_by_fields=["resource.label.service_name"])]
        count = f'{where} AND metric.type = "run.googleapis.com/request_count"'
        threshold = cond.MetricThreshold(
            filter=f'{count} AND metric.labels.response_code_class = "5xx"', aggregations=summed,
            denominator_filter=count, denominator_aggregations=summed,
            comparison=monitoring_v3.ComparisonType.COMPARISON_GT, threshold_value=alarm.threshold / 100.0,
            duration=duration_pb2.Duration(seconds=0), trigger=cond.Trigger(count=1))
    policy = monitoring_v3.AlertPolicy(
        display_name=alarm.alarm_name(name),
        documentation=monitoring_v3.AlertPolicy.Documentation(
            content=f"weave-nb: {alarm.describe()} for deployment {name} (Cloud Run service {service})", mime_type="text/markdown"),
        user_labels=labels, conditions=[cond(display_name=alarm.describe(), condition_threshold=threshold)],
        combiner=monitoring_v3.AlertPolicy.ConditionCombinerType.OR, notification_channels=channels, enabled=True)
    return json.loads(monitoring_v3.AlertPolicy.to_json(policy, use_integers_for_enums=False))


def channel_body(email: str, labels: dict[str, str]) -> dict[str, Any]:
    """The e-mail ``NotificationChannel`` (REST JSON, built with the official message type)."""
    from google.cloud import monitoring_v3

    channel = monitoring_v3.NotificationChannel(type_="email", display_name=f"weave-nb alarms to {email}",
                                                labels={"email_address": email}, user_labels=labels, enabled=True)
    return json.loads(monitoring_v3.NotificationChannel.to_json(channel, use_integers_for_enums=False))


def _same(live: dict[str, Any], want: dict[str, Any]) -> bool:
    """True when the live policy already is ``want`` (conditions, channels, combiner)."""
    def norm(cond: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in cond.items() if k != "name"}, sort_keys=True)

    return ([norm(c) for c in live.get("conditions") or []] == [norm(c) for c in want.get("conditions") or []]
            and sorted(live.get("notificationChannels") or []) == sorted(want.get("notificationChannels") or []))


class GcpAlarms:
    """Alarm planning and apply/undo functions of the gcp provider (mixed into ``GcpProvider``)."""

    supports_alarms = True

    def _monitoring(self, ctx: "DeployContext") -> tuple[MonitoringRest, Any]:
        config = self._config_from(ctx)  # type: ignore[attr-defined]
        client = self._client(config, ctx)  # type: ignore[attr-defined]
        session = client.session
        endpoint = (self.auth.setting("gcp", "WEAVE_GCP_MONITORING_ENDPOINT", "monitoring_api_endpoint")  # type: ignore[attr-defined]
                    or session.api_endpoint or DEFAULT_ENDPOINT)
        return MonitoringRest(session, endpoint, ctx.sleep), client

    def _run_monitoring(self, run: "Run") -> MonitoringRest:
        if "monitoring" not in run.scratch:
            run.scratch["monitoring"] = self._monitoring(run.ctx)[0]
        return run.scratch["monitoring"]

    # -- planning ---------------------------------------------------------------------
    def plan_alarm(self, ctx: "DeployContext", spec: "AlarmSpec") -> Plan:
        """The steps that make the live alert policy (and e-mail channel) match ``spec``.

        Raises:
            NotFound: the function is gone (no service to watch).
            ForeignResource: a policy with the alarm's name exists without this inventory's labels.
        """
        mon, client = self._monitoring(ctx)
        rec = ctx.record
        fname = (rec.details.get("function") if rec else None) or ""
        fn = client.get(fname) if fname else None
        if fn is None:
            raise NotFound(f"the function of {ctx.name!r} is not there ({fname or 'not recorded'})", f"deploy it first: weave deploy --provider gcp --name {ctx.name}")
        service = (fn.service_config.service or fname).rsplit("/", 1)[-1]
        alarm = spec.alarm_name(ctx.name)
        steps: list[PlannedStep] = []
        channels = [r.id for r in ctx.resources(CHANNEL) if mon.find(r.id) is not None]
        if spec.email:
            have = next((r.id for r in ctx.resources(CHANNEL) if r.id in channels
                         and str(r.attrs.get("email", "")).lower() == spec.email.lower()), None)
            steps.append(PlannedStep(
                key="channel", resource=f"e-mail notification channel {have or spec.email}",
                action="no-change" if have else "create", detail="" if have else f"Cloud Monitoring mails {spec.email}",
                call=None if have else "create_channel", params={"email": spec.email}, undo=None if have else "delete_channel"))
        recorded = next((r for r in ctx.resources(POLICY) if r.attrs.get("alarm") == alarm), None)
        live = mon.find(recorded.id) if recorded else None
        if live is None:
            same_name = mon.pages(f"projects/{mon.project}/alertPolicies", "alertPolicies", filter=f'display_name = "{alarm}"')
            for found in same_name:
                ownership.check("label", f"alert policy {found['name']} ({alarm})", found.get("userLabels") or {},
                                ctx.owner, False, ctx.name)
                live = found  # ours but not recorded (an interrupted run): updated in place
        want = policy_body(ctx.name, service, spec.params(), sorted(channels), {})
        if spec.email and not any(s.key == "channel" and s.action == "no-change" for s in steps):
            want["notificationChannels"] = sorted(channels) + ["(new channel)"]
        action = "create" if live is None else ("no-change" if _same(live, want) else "update")
        steps.append(PlannedStep(
            key="policy", resource=f"alert policy {alarm}" + (f" ({live['name']})" if live else ""), action=action,
            detail=spec.describe(), call=None if action == "no-change" else ("create_policy" if live is None else "update_policy"),
            params={"alarm": alarm, "spec": spec.params(), "service": service, "channels": sorted(channels),
                    "policy": live["name"] if live else None},
            undo="delete_policy" if action == "create" else None))
        notes = [f"metric: Cloud Run's {'request_latencies' if spec.kind == 'p95-ms' else 'request_count (5xx / all)'} "
                 f"of service {service} in project {mon.project}"]
        if not spec.email and not channels:
            notes.append("no --email: the policy opens incidents in Cloud Monitoring but notifies nobody")
        return Plan(provider="gcp", name=ctx.name, operation="alarm", steps=steps, notes=notes,
                    observed={"service": service, "policy": live["name"] if live else None, "channels": channels})

    def alarm_delete_steps(self, ctx: "DeployContext", only: str | None = None) -> list[PlannedStep]:
        """Delete steps for the recorded policies (all, or the one named ``only``) and, once none is left, the channels."""
        policies = ctx.resources(POLICY)
        chosen = [r for r in policies if only is None or only in (r.id, r.attrs.get("alarm"))]
        steps = [PlannedStep(key=f"delete-policy-{r.attrs.get('alarm') or r.id}", resource=f"alert policy {r.id}",
                             action="delete", call="delete_monitoring", params={"kind": POLICY, "id": r.id}) for r in chosen]
        if len(chosen) == len(policies):
            steps += [PlannedStep(key=f"delete-channel-{r.id.rsplit('/', 1)[-1]}", resource=f"notification channel {r.id}",
                                  action="delete", call="delete_monitoring", params={"kind": CHANNEL, "id": r.id})
                      for r in ctx.resources(CHANNEL)]
        return steps

    def plan_alarm_delete(self, ctx: "DeployContext", alarm: str) -> Plan:
        """Delete the alert policy ``alarm`` (its display name or resource name); the channels once none is left.

        Raises:
            NotFound: no such policy is recorded for the deployment.
        """
        names = [r.attrs.get("alarm") or r.id for r in ctx.resources(POLICY)]
        if not any(alarm in (r.id, r.attrs.get("alarm")) for r in ctx.resources(POLICY)):
            raise NotFound(f"{ctx.name!r} has no alarm named {alarm!r}" + (f" (it has: {', '.join(names)})" if names else ""),
                           f"list them with `weave alarm {ctx.name} --list`")
        return Plan(provider="gcp", name=ctx.name, operation="alarm", steps=self.alarm_delete_steps(ctx, alarm))

    def list_alarms(self, ctx: "DeployContext") -> list[dict[str, Any]]:
        """The deployment's recorded policies as Cloud Monitoring reports them (``state`` ``missing`` when gone)."""
        mon, _ = self._monitoring(ctx)
        out = []
        for res in ctx.resources(POLICY):
            live = mon.find(res.id) or {}
            cond = ((live.get("conditions") or [{}])[0]).get("conditionThreshold") or {}
            metric = cond.get("filter", "").rsplit('metric.type = "', 1)[-1].split('"', 1)[0] if cond else None
            state = ("enabled" if live.get("enabled", True) else "disabled") if live else "missing"
            out.append({"name": res.attrs.get("alarm") or res.id, "kind": res.attrs.get("alarm_kind"),
                        "threshold": res.attrs.get("threshold"), "state": state, "metric": metric,
                        "notify": ", ".join(live.get("notificationChannels") or []) or None})
        return out

    # -- apply and undo ---------------------------------------------------------------
    def apply_create_channel(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        mon = self._run_monitoring(run)
        made = mon.call("POST", f"projects/{mon.project}/notificationChannels",
                        channel_body(step.params["email"], _labels(run.ctx.name, run.ctx.owner)))
        run.ctx.add_resource(CHANNEL, made["name"], email=step.params["email"])
        return {"channel": made["name"]}

    def undo_delete_channel(self, run: "Run", step: PlannedStep, result: dict[str, Any]) -> None:
        self._run_monitoring(run).delete(result["channel"], params={"force": "true"})
        run.ctx.remove_resource(CHANNEL, result["channel"])

    def _policy_body(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        p = step.params
        channels = list(p["channels"]) + ([run.outputs["channel"]] if run.outputs.get("channel") else [])
        return policy_body(run.ctx.name, p["service"], p["spec"], sorted(channels), _labels(run.ctx.name, run.ctx.owner))

    def _record_policy(self, run: "Run", step: PlannedStep, name: str) -> dict[str, Any]:
        spec = step.params["spec"]
        run.ctx.add_resource(POLICY, name, alarm=step.params["alarm"], alarm_kind=spec["kind"], threshold=spec["threshold"],
                             period=spec["period"], service=step.params["service"])
        return {"policy": name}

    def apply_create_policy(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        mon = self._run_monitoring(run)
        made = mon.call("POST", f"projects/{mon.project}/alertPolicies", self._policy_body(run, step))
        return self._record_policy(run, step, made["name"])

    def apply_update_policy(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        mon = self._run_monitoring(run)
        name = step.params["policy"]
        body = {**self._policy_body(run, step), "name": name}
        mon.call("PATCH", name, body, params={"updateMask": "display_name,documentation,user_labels,conditions,combiner,"
                                                            "notification_channels,enabled"})
        return self._record_policy(run, step, name)

    def undo_delete_policy(self, run: "Run", step: PlannedStep, result: dict[str, Any]) -> None:
        self._run_monitoring(run).delete(result["policy"])
        run.ctx.remove_resource(POLICY, result["policy"])

    def apply_delete_monitoring(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Delete one alert policy or notification channel (already gone is fine) and forget it."""
        kind, rid = step.params["kind"], step.params["id"]
        self._run_monitoring(run).delete(rid, params={"force": "true"} if kind == CHANNEL else None)
        run.ctx.remove_resource(kind, rid)
        return {}
