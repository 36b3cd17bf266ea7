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

from ..errors import DeploymentFailed, WeaveError
from .gcp_auth import GcpSession
from .retry import RetryPolicy, retry

TRANSIENT = (gexc.TooManyRequests, gexc.ServiceUnavailable, gexc.InternalServerError, gexc.GatewayTimeout)
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

    @property
    def run(self) -> Any:
        """The Cloud Run v2 services client (created on first use)."""
        if self._run is None:
            from google.cloud import run_v2

            endpoint = self.session.run_api_endpoint
            opts = ClientOptions(api_endpoint=endpoint) if endpoint else None
            self._run = run_v2.ServicesClient(credentials=self.session.credentials, transport="rest", client_options=opts)
        return self._run

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

    def wait(self, operation: Any, on_stage: Callable[[str], None], interval: float, timeout: float) -> Any:
        """Poll a long-running operation until done, reporting stage changes.

        Returns:
            The operation's result (a Function for create/update).

        Raises:
            DeploymentFailed: the operation ended with an error, or ``timeout`` passed.
        """
        seen: dict[str, str] = {}
        deadline = self.clock() + timeout
        while True:
            done = self._poll(operation)
            for stage in getattr(operation.metadata, "stages", []) or []:
                name = functions_v2.Stage.Name(stage.name).name.lower()
                state = STAGE_STATES.get(int(stage.state), str(stage.state))
                if seen.get(name) != state:
                    seen[name] = state
                    text = f"{name}: {state}"
                    if stage.message:
                        text += f" ({stage.message})"
                    on_stage(text)
            if done:
                break
            if self.clock() > deadline:
                raise DeploymentFailed(
                    f"the operation {operation.operation.name} did not finish within {timeout:.0f}s",
                    "check it in the Cloud console; deploy again to pick it up, or undeploy",
                )
            self.sleep(interval)
        error = operation.exception()
        if error is not None:
            message = getattr(error, "message", None) or str(error)
            raise DeploymentFailed(f"Cloud Functions reported: {message}", "see the build log in the Cloud console")
        return operation.result(retry=None)

    def _poll(self, operation: Any) -> bool:
        return retry(lambda: operation.done(retry=None), _transient, self.sleep, self.policy)

    def make_public(self, service: str) -> None:
        """Grant ``roles/run.invoker`` to ``allUsers`` on a Cloud Run service."""
        from google.iam.v1 import iam_policy_pb2, policy_pb2

        policy = self.call(self.run.get_iam_policy, request=iam_policy_pb2.GetIamPolicyRequest(resource=service))
        for binding in policy.bindings:
            if binding.role == "roles/run.invoker" and "allUsers" in binding.members:
                return
        policy.bindings.append(policy_pb2.Binding(role="roles/run.invoker", members=["allUsers"]))
        self.call(self.run.set_iam_policy, request=iam_policy_pb2.SetIamPolicyRequest(resource=service, policy=policy))


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
