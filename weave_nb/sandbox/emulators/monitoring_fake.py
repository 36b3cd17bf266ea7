"""A wire-level TEST FAKE of two Cloud Monitoring v3 REST resources: alert policies and notification channels.

Not Google's service. Written from the public Cloud Monitoring v3 REST
reference (``projects.alertPolicies`` and ``projects.notificationChannels``:
create, get, list, patch, delete) and served by the Cloud Functions fake's
HTTP server (``gcf_fake``, same port), so the sandbox gives the gcp provider's
``weave alarm`` something that speaks the same JSON:

* ``POST /v3/projects/P/alertPolicies`` with an ``AlertPolicy`` → the policy
  with its server-assigned ``name`` (``projects/P/alertPolicies/ID``), each
  condition's ``name``, ``creationRecord`` and ``mutationRecord``;
  ``GET`` (one, or a page: ``filter``, ``pageSize``, ``pageToken``),
  ``PATCH`` (``updateMask``; without one the whole policy is replaced) and
  ``DELETE`` (answers ``{}``).
* ``/v3/projects/P/notificationChannels`` likewise; an ``email`` channel needs
  the label ``email_address`` and starts ``verificationStatus: UNVERIFIED``
  (email channels are not verified by a code); ``DELETE`` of a channel an alert
  policy still names answers 400 FAILED_PRECONDITION unless ``force=true``, as
  the real service does.

Checked as the real service checks them: at least one condition, a
``combiner``, each condition with exactly one condition type; a threshold
condition's ``filter`` must name a ``metric.type`` the fake knows (the Cloud
Run ``request_latencies`` distribution and ``request_count`` delta count, or
any log-based ``logging.googleapis.com/user/...`` metric) and a
``resource.type``; the aligner must suit the metric's kind (a percentile
aligner only for a distribution); ``alignmentPeriod`` is at least 60 s; a
ratio (``denominatorFilter``) needs ``denominatorAggregations``; every
notification channel named must exist; ``userLabels`` keys and values are
lower-case letters, digits, ``_`` and ``-`` (keys start with a letter, 63
characters at most). Enum fields may be sent as names or numbers; answers
use names. Not implemented: incidents, snoozes, metric-absence evaluation
(policies never fire), channel verification codes, ``orderBy``.

Standard library only.
"""

from __future__ import annotations

import copy
import itertools
import re
import threading
from typing import Any

from weave_nb.sandbox.emulators.gcf_fake_functions import ApiError, now_rfc3339, paginate

COMPARISONS = ["COMPARISON_UNSPECIFIED", "COMPARISON_GT", "COMPARISON_GE", "COMPARISON_LT", "COMPARISON_LE",
               "COMPARISON_EQ", "COMPARISON_NE"]
COMBINERS = ["COMBINE_UNSPECIFIED", "AND", "OR", "AND_WITH_MATCHING_RESOURCE"]
ALIGNERS = {0: "ALIGN_NONE", 1: "ALIGN_DELTA", 2: "ALIGN_RATE", 3: "ALIGN_INTERPOLATE", 4: "ALIGN_NEXT_OLDER",
            10: "ALIGN_MIN", 11: "ALIGN_MAX", 12: "ALIGN_MEAN", 13: "ALIGN_COUNT", 14: "ALIGN_SUM", 15: "ALIGN_STDDEV",
            16: "ALIGN_COUNT_TRUE", 24: "ALIGN_COUNT_FALSE", 17: "ALIGN_FRACTION_TRUE", 18: "ALIGN_PERCENTILE_99",
            19: "ALIGN_PERCENTILE_95", 20: "ALIGN_PERCENTILE_50", 21: "ALIGN_PERCENTILE_05", 23: "ALIGN_PERCENT_CHANGE"}
REDUCERS = {0: "REDUCE_NONE", 1: "REDUCE_MEAN", 2: "REDUCE_MIN", 3: "REDUCE_MAX", 4: "REDUCE_SUM", 5: "REDUCE_STDDEV",
            6: "REDUCE_COUNT", 7: "REDUCE_COUNT_TRUE", 15: "REDUCE_COUNT_FALSE", 8: "REDUCE_FRACTION_TRUE",
            9: "REDUCE_PERCENTILE_99", 10: "REDUCE_PERCENTILE_95", 11: "REDUCE_PERCENTILE_50", 12: "REDUCE_PERCENTILE_05"}
CONDITION_TYPES = ("conditionThreshold", "conditionAbsent", "conditionMatchedLog", "conditionMonitoringQueryLanguage",
                   "conditionPrometheusQueryLanguage", "conditionSql")
#: metric type -> (kind, value type, monitored resource types)
METRICS = {
    "run.googleapis.com/request_latencies": ("DELTA", "DISTRIBUTION", {"cloud_run_revision"}),
    "run.googleapis.com/request_count": ("DELTA", "INT64", {"cloud_run_revision"}),
    "cloudfunctions.googleapis.com/function/execution_times": ("DELTA", "DISTRIBUTION", {"cloud_function"}),
    "cloudfunctions.googleapis.com/function/execution_count": ("DELTA", "INT64", {"cloud_function"}),
}
PERCENTILE_ALIGNERS = {"ALIGN_PERCENTILE_99", "ALIGN_PERCENTILE_95", "ALIGN_PERCENTILE_50", "ALIGN_PERCENTILE_05"}
DISTRIBUTION_ALIGNERS = PERCENTILE_ALIGNERS | {"ALIGN_DELTA", "ALIGN_NONE"}
CHANNEL_TYPES = {"email": "email_address", "sms": "number", "slack": "channel_name", "pubsub": "topic", "webhook_tokenauth": "url"}
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_DURATION = re.compile(r"^(\d+)(\.\d+)?s$")
_METRIC_TYPE = re.compile(r'metric\.type\s*=\s*"([^"]+)"')
_RESOURCE_TYPE = re.compile(r'resource\.type\s*=\s*"([^"]+)"')


def _enum(value: Any, names: list[str] | dict[int, str], field: str) -> str:
    """An enum sent as a name or a number, as its name (400 when it is neither)."""
    table = dict(enumerate(names)) if isinstance(names, list) else names
    if isinstance(value, int) and value in table:
        return table[value]
    if isinstance(value, str) and value in table.values():
        return value
    raise ApiError(400, f"Invalid value at '{field}' ({value!r})")


def _seconds(value: Any, field: str) -> float:
    match = _DURATION.match(str(value)) if value is not None else None
    if not match:
        raise ApiError(400, f"Invalid value at '{field}' ({value!r}): a duration like \"300s\" is expected")
    return float(match.group(1) + (match.group(2) or ""))


def _check_labels(labels: Any, field: str) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        raise ApiError(400, f"Invalid value at '{field}': a map of strings is expected")
    for key, value in labels.items():
        if not _LABEL_KEY.match(str(key)) or not isinstance(value, str) or not _LABEL_VALUE.match(value):
            raise ApiError(400, f"Field {field} has an invalid label {key!r}: keys and values may contain only lower-case "
                                "letters, digits, underscores and dashes (63 characters at most; keys start with a letter)")


class FakeMonitoring:
    """The state and rules of the fake's alert policies and notification channels.

    Args:
        lock: the lock the HTTP server's threads share (the Cloud Functions fake's).
    """

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self._lock = lock or threading.RLock()
        self.policies: dict[str, dict] = {}
        self.channels: dict[str, dict] = {}
        self._ids = itertools.count(11_000_000_000_000_000)

    # ------------------------------------------------------------------- policies
    def create_policy(self, project: str, body: Any) -> dict:
        policy = self._valid_policy(project, body)
        with self._lock:
            name = f"projects/{project}/alertPolicies/{next(self._ids)}"
            policy["name"] = name
            for cond in policy["conditions"]:
                cond["name"] = f"{name}/conditions/{next(self._ids)}"
            record = {"mutateTime": now_rfc3339(), "mutatedBy": "weave-nb-fake"}
            policy["creationRecord"], policy["mutationRecord"] = dict(record), dict(record)
            self.policies[name] = policy
            return copy.deepcopy(policy)

    def get_policy(self, project: str, pid: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._policy(project, pid))

    def list_policies(self, project: str, query: dict) -> dict:
        prefix = f"projects/{project}/alertPolicies/"
        with self._lock:
            items = [copy.deepcopy(p) for n, p in sorted(self.policies.items()) if n.startswith(prefix)]
        items = [p for p in items if _matches(p, query.get("filter"))]
        page, token = paginate(items, query.get("pageSize"), query.get("pageToken"))
        return {"alertPolicies": page, "totalSize": len(items), **({"nextPageToken": token} if token else {})}

    def patch_policy(self, project: str, pid: str, mask: str | None, body: Any) -> dict:
        with self._lock:
            current = self._policy(project, pid)
            if not isinstance(body, dict):
                raise ApiError(400, "Invalid JSON payload received: an AlertPolicy object is expected")
            if mask:
                merged = copy.deepcopy(current)
                for path in [p.strip() for p in mask.split(",") if p.strip()]:
                    key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)
                    if key in ("name", "creationRecord", "mutationRecord"):
                        raise ApiError(400, f"Field {path} cannot be updated")
                    if key in body:
                        merged[key] = body[key]
                    else:
                        merged.pop(key, None)
            else:
                merged = {**body, "name": current["name"]}
            policy = self._valid_policy(project, merged)
            policy["name"] = current["name"]
            old = {c.get("displayName"): c.get("name") for c in current["conditions"]}
            for cond in policy["conditions"]:
                cond["name"] = cond.get("name") or old.get(cond.get("displayName")) or f"{current['name']}/conditions/{next(self._ids)}"
            policy["creationRecord"] = current["creationRecord"]
            policy["mutationRecord"] = {"mutateTime": now_rfc3339(), "mutatedBy": "weave-nb-fake"}
            self.policies[current["name"]] = policy
            return copy.deepcopy(policy)

    def delete_policy(self, project: str, pid: str) -> dict:
        with self._lock:
            del self.policies[self._policy(project, pid)["name"]]
        return {}

    def _policy(self, project: str, pid: str) -> dict:
        name = f"projects/{project}/alertPolicies/{pid}"
        if name not in self.policies:
            raise ApiError(404, f"Could not find alert policy {name}.")
        return self.policies[name]

    def _valid_policy(self, project: str, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: an AlertPolicy object is expected")
        policy = copy.deepcopy(body)
        for server_field in ("creationRecord", "mutationRecord"):
            policy.pop(server_field, None)
        conditions = policy.get("conditions") or []
        if not conditions:
            raise ApiError(400, "Field alert_policy.conditions had an invalid value: at least one condition is required")
        if len(conditions) > 6:
            raise ApiError(400, "Field alert_policy.conditions had an invalid value: at most 6 conditions are allowed")
        policy["combiner"] = _enum(policy.get("combiner", 0), COMBINERS, "alert_policy.combiner")
        if policy["combiner"] == "COMBINE_UNSPECIFIED":
            raise ApiError(400, 'Field alert_policy.combiner had an invalid value of "COMBINE_UNSPECIFIED": must be specified')
        for index, cond in enumerate(conditions):
            self._valid_condition(cond, f"alert_policy.conditions[{index}]")
        _check_labels(policy.get("userLabels"), "alert_policy.user_labels")
        for channel in policy.get("notificationChannels") or []:
            with self._lock:
                if channel not in self.channels or not channel.startswith(f"projects/{project}/"):
                    raise ApiError(404, f"Could not find notification channel {channel}.")
        policy.setdefault("enabled", True)
        return policy

    @staticmethod
    def _valid_condition(cond: Any, field: str) -> None:
        kinds = [k for k in CONDITION_TYPES if isinstance(cond, dict) and k in cond]
        if len(kinds) != 1:
            raise ApiError(400, f"Field {field} must have exactly one condition type, e.g. conditionThreshold")
        if kinds[0] != "conditionThreshold":
            return  # the fake checks threshold conditions only
        th = cond["conditionThreshold"]
        value_type = _check_filter(th.get("filter"), f"{field}.condition_threshold.filter")
        th["comparison"] = _enum(th.get("comparison", 0), COMPARISONS, f"{field}.condition_threshold.comparison")
        if th["comparison"] == "COMPARISON_UNSPECIFIED":
            raise ApiError(400, f"Field {field}.condition_threshold.comparison must be specified")
        if "thresholdValue" in th and not isinstance(th["thresholdValue"], (int, float)):
            raise ApiError(400, f"Invalid value at '{field}.condition_threshold.threshold_value'")
        _seconds(th.get("duration", "0s"), f"{field}.condition_threshold.duration")
        periods = set()
        for key in ("aggregations", "denominatorAggregations"):
            for index, agg in enumerate(th.get(key) or []):
                where = f"{field}.condition_threshold.{key}[{index}]"
                period = _seconds(agg.get("alignmentPeriod"), f"{where}.alignment_period")
                if period < 60:
                    raise ApiError(400, f"Field {where}.alignment_period must be at least 60s")
                periods.add(period)
                aligner = agg["perSeriesAligner"] = _enum(agg.get("perSeriesAligner", 0), ALIGNERS, f"{where}.per_series_aligner")
                agg["crossSeriesReducer"] = _enum(agg.get("crossSeriesReducer", 0), REDUCERS, f"{where}.cross_series_reducer")
                if value_type == "DISTRIBUTION" and aligner not in DISTRIBUTION_ALIGNERS:
                    raise ApiError(400, f"The aligner {aligner} is not valid for a DISTRIBUTION metric ({where})")
                if value_type != "DISTRIBUTION" and aligner in PERCENTILE_ALIGNERS:
                    raise ApiError(400, f"The aligner {aligner} needs a DISTRIBUTION metric; the filter names a {value_type} one ({where})")
        if th.get("denominatorFilter"):
            _check_filter(th["denominatorFilter"], f"{field}.condition_threshold.denominator_filter")
            if not th.get("denominatorAggregations"):
                raise ApiError(400, f"Field {field}.condition_threshold.denominator_aggregations is required with a denominator_filter")
        if len(periods) > 1:
            raise ApiError(400, f"Field {field}.condition_threshold: aggregations and denominator_aggregations must share one alignment_period")

    # ------------------------------------------------------------------- channels
    def create_channel(self, project: str, body: Any) -> dict:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: a NotificationChannel object is expected")
        kind = body.get("type")
        if kind not in CHANNEL_TYPES:
            raise ApiError(400, f"Field notification_channel.type had an invalid value {kind!r}")
        labels = body.get("labels") or {}
        if not labels.get(CHANNEL_TYPES[kind]):
            raise ApiError(400, f"Field notification_channel.labels must contain {CHANNEL_TYPES[kind]} for type {kind}")
        _check_labels(body.get("userLabels"), "notification_channel.user_labels")
        channel = copy.deepcopy(body)
        with self._lock:
            channel["name"] = f"projects/{project}/notificationChannels/{next(self._ids)}"
            channel.setdefault("enabled", True)
            channel["verificationStatus"] = "UNVERIFIED"
            channel["creationRecord"] = {"mutateTime": now_rfc3339()}
            self.channels[channel["name"]] = channel
            return copy.deepcopy(channel)

    def get_channel(self, project: str, cid: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._channel(project, cid))

    def list_channels(self, project: str, query: dict) -> dict:
        prefix = f"projects/{project}/notificationChannels/"
        with self._lock:
            items = [copy.deepcopy(c) for n, c in sorted(self.channels.items()) if n.startswith(prefix)]
        items = [c for c in items if _matches(c, query.get("filter"))]
        page, token = paginate(items, query.get("pageSize"), query.get("pageToken"))
        return {"notificationChannels": page, "totalSize": len(items), **({"nextPageToken": token} if token else {})}

    def delete_channel(self, project: str, cid: str, force: bool) -> dict:
        with self._lock:
            channel = self._channel(project, cid)
            users = [n for n, p in self.policies.items() if channel["name"] in (p.get("notificationChannels") or [])]
            if users and not force:
                raise ApiError(400, f"Notification channel {channel['name']} is referenced by alert policies {users}; "
                                    "remove it from them first or delete with force=true", "FAILED_PRECONDITION")
            for name in users:
                self.policies[name]["notificationChannels"] = [
                    c for c in self.policies[name]["notificationChannels"] if c != channel["name"]]
            del self.channels[channel["name"]]
        return {}

    def _channel(self, project: str, cid: str) -> dict:
        name = f"projects/{project}/notificationChannels/{cid}"
        if name not in self.channels:
            raise ApiError(404, f"Could not find notification channel {name}.")
        return self.channels[name]


def _check_filter(text: Any, field: str) -> str:
    """The value type of the metric a monitoring filter names (400 for an unknown metric or no resource type)."""
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, f"Field {field} is required")
    metric = _METRIC_TYPE.search(text)
    resource = _RESOURCE_TYPE.search(text)
    if not metric:
        raise ApiError(400, f"Field {field} must name a metric.type")
    if not resource:
        raise ApiError(400, f"Field {field} must name a resource.type")
    mtype = metric.group(1)
    if mtype.startswith("logging.googleapis.com/user/"):
        return "INT64"  # a log-based counter metric
    if mtype not in METRICS:
        raise ApiError(404, f"Cannot find metric(s) that match type = \"{mtype}\".")
    kind, value_type, resources = METRICS[mtype]
    if resource.group(1) not in resources:
        raise ApiError(400, f"The metric {mtype} is not written for resource.type \"{resource.group(1)}\" "
                            f"(it is for {', '.join(sorted(resources))})")
    return value_type


_CLAUSE = re.compile(r'^\s*([A-Za-z_][\w.]*)(?:\.?"([^"]+)")?\s*=\s*"([^"]*)"\s*$')


def _matches(item: dict, expr: str | None) -> bool:
    """``field = "value"`` clauses joined by AND: ``display_name``, ``type``, ``user_labels."KEY"`` (or ``.KEY``)."""
    if not expr:
        return True
    for clause in re.split(r"\s+AND\s+", expr.strip()):
        match = _CLAUSE.match(clause)
        if not match:
            raise ApiError(400, f"Invalid filter: {clause!r}")
        path, key, want = match.groups()
        path = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path.rstrip("."))
        path = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)
        if key is None and path.startswith("userLabels."):
            path, key = "userLabels", path.split(".", 1)[1]
        value = (item.get(path) or {}).get(key) if key is not None else item.get(path)
        if value != want:
            return False
    return True
