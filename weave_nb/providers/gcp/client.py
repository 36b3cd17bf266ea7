"""A thin wrapper over the Cloud Functions v2 and Cloud Run v2 clients.

It owns retries of transient errors (429, 503, 500) with bounded backoff and
waits on long-running operations by polling, emitting each stage change.
Sleep is injected, so tests never wait for real.
"""

from __future__ import annotations

from typing import Any, Callable

from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.cloud import functions_v2

from ...core.errors import DeploymentFailed, WeaveError
from .auth import GcpSession
from ..retry import RetryPolicy, retry

TRANSIENT = (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.GatewayTimeout)
INVOKER = "roles/run.invoker"
STAGE_STATES = {0: "unspecified", 1: "not started", 2: "in progress", 3: "complete"}


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT)


class GcpClient:
    """Cloud Functions calls with retries and operation waits.

    Args:
        session: credentials, project and endpoints.
        sleep: the sleep function (tests pass a fake).
        clock: a monotonic clock.
        attempts: how many times a transient failure is tried in all.
    """

    def __init__(self, session: GcpSession, sleep: Callable[[float], None], clock: Callable[[], float], attempts: int = 5) -> None:
        self.session = session
        self.sleep = sleep
        self.clock = clock
        self.attempts = attempts
        self.policy = RetryPolicy(attempts=attempts, base=0.5, cap=8.0, rand=None)
        opts = ClientOptions(api_endpoint=session.api_endpoint) if session.api_endpoint else None
        self.functions = functions_v2.FunctionServiceClient(
            credentials=session.credentials, transport="rest", client_options=opts
        )
        self._run: Any = None
        self._revisions: Any = None

    @property
    def run(self) -> Any:
        """The Cloud Run v2 services client (created on first use)."""
        if self._run is None:
            from google.cloud import run_v2

            endpoint = self.session.run_api_endpoint
            opts = ClientOptions(api_endpoint=endpoint) if endpoint else None
            self._run = run_v2.ServicesClient(credentials=self.session.credentials, transport="rest", client_options=opts)
        return self._run

    @property
    def revisions(self) -> Any:
        """The Cloud Run v2 revisions client (created on first use)."""
        if self._revisions is None:
            from google.cloud import run_v2

            endpoint = self.session.run_api_endpoint
            opts = ClientOptions(api_endpoint=endpoint) if endpoint else None
            self._revisions = run_v2.RevisionsClient(credentials=self.session.credentials, transport="rest", client_options=opts)
        return self._revisions

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (a client method), retrying transient errors with backoff.

        Raises:
            google.api_core.exceptions.GoogleAPICallError: a non-transient error, or
                the last transient one after ``attempts`` tries.
        """
        return retry(lambda: fn(*args, retry=None, **kwargs), _transient, self.sleep, self.policy)

    def location(self, region: str) -> str:
        """``projects/P/locations/REGION``."""
        return f"projects/{self.session.project}/locations/{region}"

    def function_name(self, region: str, function_id: str) -> str:
        """The function's full resource name."""
        return f"{self.location(region)}/functions/{function_id}"

    def get(self, name: str) -> Any | None:
        """The function, or ``None`` when it does not exist."""
        try:
            return self.call(self.functions.get_function, name=name)
        except gexc.NotFound:
            return None

    def running_operation(self, region: str, name: str) -> Any | None:
        """The unfinished operation whose target is the function ``name`` (an ``operations_pb2.Operation``), or ``None``."""
        from google.longrunning import operations_pb2

        request = operations_pb2.ListOperationsRequest(name=self.location(region), filter="done=false", page_size=100)
        try:
            found = self.call(self.functions.list_operations, request)
        except gexc.InvalidArgument:  # a service that does not take the filter: filter here
            request = operations_pb2.ListOperationsRequest(name=self.location(region), page_size=100)
            found = self.call(self.functions.list_operations, request)
        for op in found.operations:
            if not op.done and self.metadata(op).target == name:
                return op
        return None

    @staticmethod
    def metadata(op: Any) -> Any:
        """The ``OperationMetadata`` of a raw long-running operation."""
        return functions_v2.OperationMetadata.deserialize(op.metadata.value)

    def wait(self, name: str, on_stage: Callable[[str], None], interval: float, timeout: float) -> Any:
        """Poll the long-running operation ``name`` until done, reporting its stage changes.

        Returns:
            The function the operation left (a ``Function``), or ``None`` for a delete.

        Raises:
            DeploymentFailed: the operation ended with an error, or ``timeout`` passed.
        """
        from google.longrunning import operations_pb2

        seen: dict[str, str] = {}
        deadline = self.clock() + timeout
        while True:
            op = self.call(self.functions.get_operation, operations_pb2.GetOperationRequest(name=name))
            for stage in self.metadata(op).stages if op.metadata.value else []:
                label = functions_v2.Stage.Name(stage.name).name.lower()
                state = STAGE_STATES.get(int(stage.state), str(stage.state))
                if seen.get(label) != state:
                    seen[label] = state
                    on_stage(f"{label}: {state}" + (f" ({stage.message})" if stage.message else ""))
            if op.done:
                break
            if self.clock() > deadline:
                raise DeploymentFailed(
                    f"the operation {name} did not finish within {timeout:.0f}s",
                    "deploy again to wait for it (the plan adopts a running operation), or undeploy",
                )
            self.sleep(interval)
        if op.HasField("error"):
            raise DeploymentFailed(f"Cloud Functions reported: {op.error.message}", "see the build log in the Cloud console")
        if op.response.value and op.response.type_url.endswith("Function"):
            return functions_v2.Function.deserialize(op.response.value)
        return None

    def is_public(self, service: str) -> bool | None:
        """True when ``allUsers`` holds ``roles/run.invoker`` on the Cloud Run service (``None``: no such service)."""
        from google.iam.v1 import iam_policy_pb2

        try:
            policy = self.call(self.run.get_iam_policy, request=iam_policy_pb2.GetIamPolicyRequest(resource=service))
        except gexc.NotFound:
            return None
        return any(b.role == INVOKER and "allUsers" in b.members for b in policy.bindings)

    def set_public(self, service: str, public: bool) -> None:
        """Add (``public``) or remove the ``roles/run.invoker`` binding of ``allUsers`` (read-modify-write with the etag)."""
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        policy = self.call(self.run.get_iam_policy, request=iam_policy_pb2.GetIamPolicyRequest(resource=service))
        bindings = []
        for b in policy.bindings:
            members = [m for m in b.members if not (b.role == INVOKER and m == "allUsers")]
            if members:
                kept = policy_pb2.Binding(role=b.role, members=members)
                if b.HasField("condition"):
                    kept.condition.CopyFrom(b.condition)
                bindings.append(kept)
        if public:
            bindings.append(policy_pb2.Binding(role=INVOKER, members=["allUsers"]))
        del policy.bindings[:]
        policy.bindings.extend(bindings)
        self.call(self.run.set_iam_policy, request=iam_policy_pb2.SetIamPolicyRequest(resource=service, policy=policy))


    # -- Cloud Run v2: the function's service, its revisions and its traffic -------------------
    def service(self, name: str) -> Any | None:
        """The Cloud Run service ``name`` (a ``run_v2.Service``), or ``None`` when it does not exist."""
        try:
            return self.call(self.run.get_service, name=name)
        except gexc.NotFound:
            return None

    def revision(self, name: str) -> Any | None:
        """The Cloud Run revision ``name`` (a ``run_v2.Revision``), or ``None`` when it does not exist."""
        try:
            return self.call(self.revisions.get_revision, name=name)
        except gexc.NotFound:
            return None

    def set_traffic(self, service: str, targets: list[dict[str, Any]], on_stage: Callable[[str], None],
                    interval: float, timeout: float) -> Any:
        """Give the service the traffic ``targets`` and wait until it serves them (read-modify-write with the etag).

        Args:
            targets: ``{"type": "LATEST"|"REVISION", "revision": name, "percent": n, "tag": t}`` each.

        Returns:
            The service as the finished operation left it.
        """
        from google.cloud import run_v2
        from google.protobuf import field_mask_pb2

        kinds = run_v2.TrafficTargetAllocationType
        svc = self.call(self.run.get_service, name=service)
        del svc.traffic[:]
        for t in targets:
            kind = kinds.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST if t.get("type") == "LATEST" else kinds.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION
            svc.traffic.append(run_v2.TrafficTarget(type_=kind, revision=t.get("revision") or "",
                                                    percent=int(t["percent"]), tag=t.get("tag") or ""))
        op = self.call(self.run.update_service, service=svc, update_mask=field_mask_pb2.FieldMask(paths=["traffic"]))
        on_stage("traffic: " + ", ".join(f"{t.get('revision') or 'latest'} {t['percent']}%" for t in targets))
        return self.wait_run(op.operation.name, interval, timeout)

    def delete_revision(self, name: str, interval: float, timeout: float) -> bool:
        """Delete the revision ``name`` and wait for it; False when it was already gone."""
        try:
            op = self.call(self.revisions.delete_revision, name=name)
        except gexc.NotFound:
            return False
        self.wait_run(op.operation.name, interval, timeout)
        return True

    def wait_run(self, name: str, interval: float, timeout: float) -> Any:
        """Poll the Cloud Run operation ``name`` until done.

        Returns:
            The ``Service`` or ``Revision`` in its response.

        Raises:
            DeploymentFailed: the operation ended with an error, or ``timeout`` passed.
        """
        from google.cloud import run_v2
        from google.longrunning import operations_pb2

        deadline = self.clock() + timeout
        while True:
            op = self.call(self.run.get_operation, operations_pb2.GetOperationRequest(name=name))
            if op.done:
                break
            if self.clock() > deadline:
                raise DeploymentFailed(f"the Cloud Run operation {name} did not finish within {timeout:.0f}s",
                                       "check the service with `weave status` and run the command again")
            self.sleep(interval)
        if op.HasField("error"):
            raise DeploymentFailed(f"Cloud Run reported: {op.error.message}", "check the revisions with `weave releases`")
        kind = run_v2.Revision if op.response.type_url.endswith("Revision") else run_v2.Service
        return kind.deserialize(op.response.value)


def api_error(exc: Exception, doing: str) -> WeaveError:
    """Turn a google-api-core error into a WeaveError with a suggestion."""
    message = getattr(exc, "message", None) or str(exc)
    code = getattr(exc, "code", None)
    hints = {
        401: "the credentials were rejected: refresh the token or check the key file",
        403: "the account lacks permission: it needs roles/cloudfunctions.developer (and iam.serviceAccountUser)",
        404: "check the project id and region",
        409: "another operation is running on this function; wait and deploy again",
        400: "check the settings against the configuration reference",
    }
    return DeploymentFailed(f"{doing} failed ({code}): {message}", hints.get(int(code) if code else 0, "try again"))
