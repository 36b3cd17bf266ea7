"""Cloud Run Admin API v2 services and revisions for the Cloud Functions v2 test fake.

Part of the *test fake* in ``gcf_fake`` (not Google's service). Standard library
only. It follows the documented Cloud Run Admin API v2 REST contract
(``run.googleapis.com/v2``, the shape the ``google-cloud-run`` client sends and
parses with ``transport="rest"``): camelCase JSON, int64 fields as strings,
enums as names or, for ``$alt=json;enum-encoding=int``, numbers; ``PATCH``
answers a long-running ``Operation`` whose ``metadata`` and, once done,
``response`` are the ``google.cloud.run.v2.Service`` (a revision delete: the
``Revision``), polled at ``GET /v2/{operation name}``.

Every function has the Cloud Run service Cloud Functions (2nd gen) makes for
it, created when its first build succeeds. Each successful create or update of
the function adds a revision; with ``serviceConfig.allTrafficOnLatestRevision``
true (the default) the service's ``traffic`` becomes 100% ``LATEST``, with it
false the traffic is left as it was (a ``LATEST`` target still follows the new
revision, as on Cloud Run). The function's ``allTrafficOnLatestRevision``
reads true exactly when the latest revision serves 100%.

Implemented: services get and patch (``updateMask`` paths ``traffic``,
``labels``, ``annotations``, ``description``; without a mask those fields are
replaced by the body's, an absent ``traffic`` meaning 100% to the latest ready
revision; an ``etag`` that is not the current one is 409 ABORTED; the template
is never used: revisions come from Cloud Functions deploys only); traffic
checks (known revision of this service, percents 0-100 adding up to 100, a
``LATEST`` target names no revision); revisions get, list (newest first, page
tokens) and delete (refused with 400 FAILED_PRECONDITION while the revision
serves traffic). ``trafficStatuses`` name the revision a ``LATEST`` target
resolves to.
Serving: a revision runs a functions-framework process while it serves
traffic or is the latest ready one (others scale to zero and start again when
traffic comes back). A call to the function URL goes to a revision picked by
the traffic split, deterministically: the service's k-th call (k = 0, 1, ...)
lands on slot ``(37 * k) % 100`` of a 100-slot wheel laid out in
``trafficStatuses`` order, so any 100 consecutive calls split exactly by the
percentages.
Not implemented: creating or deleting services through Cloud Run, tags' URLs,
``validateOnly``, ``allowMissing``, Cloud Run operations in ``operations.list``
(that list is the Cloud Functions one).
"""

from __future__ import annotations

import base64
import copy
import os
import threading
import uuid

from weave_nb.sandbox.emulators.gcf_fake_functions import ApiError, enums_to_ints, enums_to_names, now_rfc3339, paginate

SERVICE_TYPE = "type.googleapis.com/google.cloud.run.v2.Service"
REVISION_TYPE = "type.googleapis.com/google.cloud.run.v2.Revision"
LATEST = "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST"
BY_REVISION = "TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION"
# value lists indexed by the proto enum number (google.cloud.run.v2, google.api.LaunchStage)
TRAFFIC_TYPES = ["TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED", LATEST, BY_REVISION]
CONDITION_STATES = ["STATE_UNSPECIFIED", "CONDITION_PENDING", "CONDITION_RECONCILING", "CONDITION_FAILED",
                    "CONDITION_SUCCEEDED"]
LAUNCH_STAGES = ["LAUNCH_STAGE_UNSPECIFIED", "EARLY_ACCESS", "ALPHA", "BETA", "GA", "DEPRECATED",
                 "UNIMPLEMENTED", "PRELAUNCH"]
INGRESS = ["INGRESS_TRAFFIC_UNSPECIFIED", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY",
           "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_NONE"]
SERVICE_ENUMS: dict[tuple, list[str]] = {
    ("traffic", "*", "type"): TRAFFIC_TYPES,
    ("trafficStatuses", "*", "type"): TRAFFIC_TYPES,
    ("ingress",): INGRESS,
    ("launchStage",): LAUNCH_STAGES,
    ("terminalCondition", "state"): CONDITION_STATES,
    ("conditions", "*", "state"): CONDITION_STATES,
}
REVISION_ENUMS: dict[tuple, list[str]] = {
    ("launchStage",): LAUNCH_STAGES,
    ("conditions", "*", "state"): CONDITION_STATES,
}
# every field of google.cloud.run.v2.Service (a body naming another one is a 400, as on the real API)
SERVICE_FIELDS = {
    "name", "description", "uid", "generation", "labels", "annotations", "createTime", "updateTime",
    "deleteTime", "expireTime", "creator", "lastModifier", "client", "clientVersion", "ingress", "launchStage",
    "binaryAuthorization", "template", "traffic", "scaling", "invokerIamDisabled", "defaultUriDisabled", "urls",
    "iapEnabled", "multiRegionSettings", "customAudiences", "observedGeneration", "terminalCondition",
    "conditions", "latestReadyRevision", "latestCreatedRevision", "trafficStatuses", "uri", "satisfiesPzs",
    "threatDetectionEnabled", "buildConfig", "reconciling", "etag",
}
MASKABLE = ("traffic", "labels", "annotations", "description")
WHEEL_STRIDE = 37  # coprime with 100: consecutive calls visit every slot of the wheel once per 100 calls


def _etag() -> str:
    return '"' + base64.urlsafe_b64encode(os.urandom(9)).decode() + '"'


def render_run(obj: dict, enums: dict, int_enums: bool, type_url: str | None = None) -> dict:
    """A copy without the fake's private ``_`` keys, enums as ints when asked, ``@type`` when given."""
    out = {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}
    if int_enums:
        enums_to_ints(out, enums)
    if type_url:
        out = {"@type": type_url, **out}
    return out


def check_traffic(targets, revisions: set[str], service: str) -> list[dict]:
    """Validate a ``traffic`` list (enums already names) and return it cleaned. Raises ApiError(400)."""
    if targets is None:
        targets = []
    if not isinstance(targets, list):
        raise ApiError(400, "Invalid value at 'service.traffic': expected a list")
    if not targets:
        return [{"type": LATEST, "percent": 100}]
    cleaned, total = [], 0
    for i, target in enumerate(targets):
        where = f"service.traffic[{i}]"
        if not isinstance(target, dict):
            raise ApiError(400, f"Invalid value at '{where}': expected an object")
        unknown = set(target) - {"type", "revision", "percent", "tag"}
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at \'{where}\'')
        kind = target.get("type", TRAFFIC_TYPES[0])
        revision = target.get("revision") or ""
        percent = target.get("percent", 0)
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ApiError(400, f"{where}.percent must be an integer from 0 to 100")
        if kind == LATEST and revision:
            raise ApiError(400, f"{where}: a LATEST traffic target cannot name a revision")
        if kind == BY_REVISION:
            if not revision:
                raise ApiError(400, f"{where}: a REVISION traffic target needs a revision name")
            if revision not in revisions:
                raise ApiError(400, f"Revision named '{revision}' does not exist in service '{service}'")
        elif kind != LATEST:
            raise ApiError(400, f"{where}.type must be TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST or _REVISION")
        entry = {"type": kind, "percent": percent}
        if revision:
            entry["revision"] = revision
        if target.get("tag"):
            entry["tag"] = target["tag"]
        cleaned.append(entry)
        total += percent
    if total != 100:
        raise ApiError(400, f"Traffic percentages must add up to 100 (they add up to {total})")
    return cleaned


class RunOperation:
    """A Cloud Run long-running operation (a service update or a revision delete)."""

    def __init__(self, name: str, kind: str, target: str):
        self.name = name
        self.kind = kind  # "update-service" | "delete-revision"
        self.target = target  # the service (update) or revision (delete) name
        self.polls = 0
        self.done = False
        self.error: dict | None = None
        self.snapshot: dict = {}  # what the metadata shows while it runs
        self.response: dict | None = None
        self.previous: list | None = None  # an update's traffic before it
        self.lock = threading.Lock()

    def render(self, polls_before_done: int, int_enums: bool) -> dict:
        enums, kind = (SERVICE_ENUMS, SERVICE_TYPE) if self.kind == "update-service" else (REVISION_ENUMS, REVISION_TYPE)
        out = {"name": self.name, "metadata": render_run(self.snapshot, enums, int_enums, kind), "done": self.done}
        if self.done and self.error:
            out["error"] = copy.deepcopy(self.error)
        elif self.done:
            out["response"] = render_run(self.response or {}, enums, int_enums, kind)
        return out


class CloudRunMixin:
    """Cloud Run services, revisions, traffic and routing (part of ``FakeCloudFunctions``).

    Uses ``self._services`` (service name -> Service), ``self._run_revisions``
    (revision name -> Revision, with the function snapshot it runs under
    ``_fn``), ``self._procs`` (revision name -> process) and ``self._routed``
    (service name -> calls routed so far).
    """

    # ------------------------------------------------------------ made by Cloud Functions
    def _new_service(self, fn: dict) -> dict:
        name = fn["serviceConfig"]["service"]
        now = now_rfc3339()
        return {"name": name, "uid": str(uuid.uuid4()), "generation": "0", "labels": {"goog-managed-by": "cloudfunctions"},
                "annotations": {}, "createTime": now, "updateTime": now, "creator": self.METADATA_ACCOUNT,
                "lastModifier": self.METADATA_ACCOUNT, "client": "cloudfunctions", "ingress": "INGRESS_TRAFFIC_ALL",
                "launchStage": "GA", "traffic": [{"type": LATEST, "percent": 100}], "trafficStatuses": [],
                "uri": fn.get("url", ""), "reconciling": False, "etag": _etag()}

    def _template(self, fn: dict) -> dict:
        svc = fn["serviceConfig"]
        _, project, _, location, _, fid = fn["name"].split("/")
        return {"containers": [{"image": f"{location}-docker.pkg.dev/{project}/gcf-artifacts/{fid}:latest",
                                "resources": {"limits": {"memory": svc.get("availableMemory", "256M"), "cpu": "1"}}}],
                "timeout": f"{svc.get('timeoutSeconds', 60)}s", "serviceAccount": svc.get("serviceAccountEmail", ""),
                "scaling": {"maxInstanceCount": int(svc.get("maxInstanceCount", 100))},
                "maxInstanceRequestConcurrency": 1}

    def _revision_ready(self, fn: dict, proc) -> list:
        """Record the revision a successful function build made (call with the lock held).

        Returns:
            The processes to stop (revisions that no longer serve), outside the lock.
        """
        service = fn["serviceConfig"]["service"]
        revision = f"{service}/revisions/{fn['serviceConfig']['revision']}"
        svc = self._services.get(service) or self._new_service(fn)
        self._services[service] = svc
        now = now_rfc3339()
        template = self._template(fn)
        self._run_revisions[revision] = {
            "name": revision, "uid": str(uuid.uuid4()), "generation": "1", "labels": dict(fn.get("labels") or {}),
            "annotations": {}, "createTime": now, "updateTime": now, "launchStage": "GA",
            "service": service.rsplit("/", 1)[-1], "scaling": template["scaling"],
            "maxInstanceRequestConcurrency": 1, "timeout": template["timeout"],
            "serviceAccount": template["serviceAccount"], "containers": template["containers"],
            "conditions": [{"type": "Ready", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}],
            "reconciling": False, "observedGeneration": "1", "etag": _etag(), "_fn": copy.deepcopy(fn),
        }
        if proc is not None:
            self._procs[revision] = proc
        svc["template"] = template
        svc["generation"] = str(int(svc["generation"]) + 1)
        svc["latestCreatedRevision"] = svc["latestReadyRevision"] = revision
        if fn["serviceConfig"].get("allTrafficOnLatestRevision", True):
            svc["traffic"] = [{"type": LATEST, "percent": 100}]
        if fn.get("url"):
            svc["uri"] = fn["url"]
        return self._settle(svc, fn)

    def _settle(self, svc: dict, fn: dict | None) -> list:
        """Resolve the traffic, mark the service ready, sync the function's flag; the processes to stop."""
        short = svc["latestReadyRevision"].rsplit("/", 1)[-1]
        statuses = []
        for target in svc["traffic"]:
            status = {"type": target["type"], "revision": target.get("revision") or short, "percent": target.get("percent", 0)}
            if target.get("tag"):
                status["tag"] = target["tag"]
            statuses.append(status)
        now = now_rfc3339()
        svc.update(trafficStatuses=statuses, observedGeneration=svc["generation"], reconciling=False, updateTime=now,
                   etag=_etag(), terminalCondition={"type": "Ready", "state": "CONDITION_SUCCEEDED",
                                                    "lastTransitionTime": now},
                   conditions=[{"type": "RoutesReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": now}])
        latest = sum(s["percent"] for s in statuses if s["revision"] == short)
        if fn is None:
            fn = next((f for f in self._functions.values() if f["serviceConfig"].get("service") == svc["name"]), None)
        if fn is not None:
            fn["serviceConfig"]["allTrafficOnLatestRevision"] = latest == 100
        serving = self._serving(svc)
        prefix = svc["name"] + "/revisions/"
        idle = [name for name in self._procs if name.startswith(prefix) and name not in serving]
        return [self._procs.pop(name) for name in idle]

    def _serving(self, svc: dict) -> set[str]:
        """Revisions that keep a process: those with traffic, and the latest ready one."""
        prefix = svc["name"] + "/revisions/"
        names = {prefix + s["revision"] for s in svc.get("trafficStatuses", []) if s["percent"] > 0}
        return names | {svc["latestReadyRevision"]}

    def _drop_service(self, service: str) -> list:
        """Forget a deleted function's service and revisions (lock held); the processes to stop."""
        self._services.pop(service, None)
        prefix = service + "/revisions/"
        for name in [n for n in self._run_revisions if n.startswith(prefix)]:
            del self._run_revisions[name]
        self._routed.pop(service, None)
        return [self._procs.pop(n) for n in list(self._procs) if n.startswith(prefix)]

    # ----------------------------------------------------------------------- routing
    def _route(self, service: str):
        """The process of the revision the next call goes to (lock held), or ``None``."""
        svc = self._services.get(service)
        if svc is None:
            return None
        wheel = [(s["revision"], s["percent"]) for s in svc.get("trafficStatuses", []) if s["percent"] > 0]
        k = self._routed.get(service, 0)
        self._routed[service] = k + 1
        slot, edge = (WHEEL_STRIDE * k) % 100, 0
        for revision, percent in wheel:
            edge += percent
            if slot < edge:
                return self._procs.get(f"{service}/revisions/{revision}")
        return None

    # -------------------------------------------------------------------- the API
    def _run_service(self, project: str, location: str, sid: str) -> dict:
        name = f"projects/{project}/locations/{location}/services/{sid}"
        svc = self._services.get(name)
        if svc is None:
            raise ApiError(404, f"Resource '{name}' was not found")
        return svc

    def _api_run_get_service(self, project: str, location: str, sid: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._run_service(project, location, sid))

    def _api_run_update_service(self, project: str, location: str, sid: str, update_mask: str | None, body) -> RunOperation:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received. Expected an object.")
        unknown = set(body) - SERVICE_FIELDS - {"@type"}
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
        patch = enums_to_names(copy.deepcopy(body), SERVICE_ENUMS)
        with self._lock:
            svc = self._run_service(project, location, sid)
            if patch.get("name") not in (None, "", svc["name"]):
                raise ApiError(400, f"Service name {patch['name']!r} does not match {svc['name']!r}")
            if patch.get("etag") and patch["etag"] != svc["etag"]:
                raise ApiError(409, "The service was changed since it was read (etag mismatch): read it again",
                               "ABORTED")
            if svc["name"] in self._busy:
                raise ApiError(409, f"An operation on service {svc['name']} is already in progress", "ABORTED")
            paths = [p.strip() for p in (update_mask or "").split(",") if p.strip()] or list(MASKABLE)
            for path in paths:
                if path not in MASKABLE:
                    raise ApiError(400, f"Invalid update mask path '{path}' (the fake updates {', '.join(MASKABLE)})")
            prefix = svc["name"] + "/revisions/"
            known = {n[len(prefix):] for n in self._run_revisions if n.startswith(prefix)}
            new = dict(svc)
            for path in paths:
                if path == "traffic":
                    new["traffic"] = check_traffic(patch.get("traffic"), known, svc["name"])
                else:
                    new[path] = copy.deepcopy(patch.get(path) or ({} if path != "description" else ""))
            op = RunOperation(self._run_op_name(project, location), "update-service", svc["name"])
            op.previous = copy.deepcopy(svc["traffic"])
            svc.update({k: new[k] for k in paths})
            svc["generation"] = str(int(svc["generation"]) + 1)
            svc["reconciling"] = True
            svc["terminalCondition"] = {"type": "Ready", "state": "CONDITION_RECONCILING",
                                        "lastTransitionTime": now_rfc3339()}
            op.snapshot = copy.deepcopy(svc)
            self._start_run_op(op)
            return op

    def _api_run_list_revisions(self, project: str, location: str, sid: str, query: dict) -> dict:
        with self._lock:
            svc = self._run_service(project, location, sid)
            prefix = svc["name"] + "/revisions/"
            items = [copy.deepcopy(r) for n, r in self._run_revisions.items() if n.startswith(prefix)]
        items.sort(key=lambda r: (r["createTime"], r["name"]), reverse=True)
        page, token = paginate(items, query.get("pageSize"), query.get("pageToken"))
        return {"revisions": page, **({"nextPageToken": token} if token else {})}

    def _run_revision(self, project: str, location: str, sid: str, rid: str) -> dict:
        name = f"projects/{project}/locations/{location}/services/{sid}/revisions/{rid}"
        rev = self._run_revisions.get(name)
        if rev is None:
            raise ApiError(404, f"Resource '{name}' was not found")
        return rev

    def _api_run_get_revision(self, project: str, location: str, sid: str, rid: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._run_revision(project, location, sid, rid))

    def _api_run_delete_revision(self, project: str, location: str, sid: str, rid: str) -> RunOperation:
        with self._lock:
            rev = self._run_revision(project, location, sid, rid)
            svc = self._run_service(project, location, sid)
            share = sum(s["percent"] for s in svc.get("trafficStatuses", []) if s["revision"] == rid)
            if share or any(t.get("revision") == rid for t in svc["traffic"]):
                raise ApiError(400, f"Revision '{rid}' cannot be deleted: it is a traffic target of service "
                                    f"'{sid}' ({share}% of its traffic). Move the traffic away first.",
                               "FAILED_PRECONDITION")
            if svc.get("latestReadyRevision") == rev["name"]:
                raise ApiError(400, f"Revision '{rid}' is the latest ready revision of service '{sid}' and "
                                    "cannot be deleted", "FAILED_PRECONDITION")
            if rev["name"] in self._busy:
                raise ApiError(409, f"An operation on revision {rid} is already in progress", "ABORTED")
            op = RunOperation(self._run_op_name(project, location), "delete-revision", rev["name"])
            op.snapshot = copy.deepcopy(rev)
            self._start_run_op(op)
            return op

    # ----------------------------------------------------------------- operations
    @staticmethod
    def _run_op_name(project: str, location: str) -> str:
        return f"projects/{project}/locations/{location}/operations/{uuid.uuid4()}"

    def _start_run_op(self, op: RunOperation) -> None:
        """Register ``op`` (lock held); it ends like every operation of the fake (polls or time)."""
        self._ops[op.name] = op
        self._busy[op.target] = op.name
        timer = threading.Timer(self.operation_seconds, self._complete_in_time, args=(op,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _complete_run(self, op: RunOperation) -> None:
        if op.kind == "delete-revision":
            with self._lock:
                rev = self._run_revisions.pop(op.target, None)
                proc = self._procs.pop(op.target, None)
                if rev is not None:
                    rev["deleteTime"] = now_rfc3339()
                op.response = rev or op.snapshot
            if proc is not None:
                proc.stop()
            self._end_run_op(op)
            return
        with self._lock:
            svc = self._services.get(op.target)
            if svc is None:
                op.error = {"code": 5, "message": f"Service {op.target} was deleted"}
                self._end_run_op(op)
                return
            prefix = svc["name"] + "/revisions/"
            wanted = {prefix + (t.get("revision") or svc["latestReadyRevision"].rsplit("/", 1)[-1])
                      for t in svc["traffic"] if t.get("percent", 0) > 0}
            cold = [n for n in wanted if n not in self._procs and n in self._run_revisions] if self.serve_functions else []
            snapshots = {n: copy.deepcopy(self._run_revisions[n]["_fn"]) for n in cold}
        started, error = {}, None
        for name, fn in snapshots.items():  # scale from zero: start the revisions traffic comes back to
            try:
                started[name] = self._start_process(fn)
            except Exception as exc:  # noqa: BLE001 - reported as the operation's error
                error = f"Revision {name.rsplit('/', 1)[-1]} is not ready: {exc}"
                break
        with self._lock:
            if error:
                svc["traffic"] = op.previous
                op.error = {"code": 9, "message": error}
                idle = list(started.values())
                svc["reconciling"] = False
                svc["terminalCondition"] = {"type": "Ready", "state": "CONDITION_FAILED", "message": error,
                                            "lastTransitionTime": now_rfc3339()}
            else:
                self._procs.update(started)
                idle = self._settle(svc, None)
                op.response = copy.deepcopy(svc)
        for proc in idle:
            proc.stop()
        self._end_run_op(op)

    def _end_run_op(self, op: RunOperation) -> None:
        with self._lock:
            op.done = True
            self._busy.pop(op.target, None)

    # ---------------------------------------------------------------- test helpers
    def services(self) -> dict:
        """Returns: a copy of the Cloud Run services (string enums) by full name."""
        with self._lock:
            return copy.deepcopy(self._services)

    def revision_processes(self) -> dict:
        """Returns: ``{revision name: pid}`` of every revision process running."""
        with self._lock:
            return {name: proc.pid for name, proc in self._procs.items()}
