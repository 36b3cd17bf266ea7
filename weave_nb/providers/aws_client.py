"""A thin wrapper over boto3 clients: one retry policy and waiters that never sleep for real in tests.

botocore's own retries are switched off (``max_attempts=1``) so that every
retry goes through :class:`AwsClient`, whose sleep function is injected:
throttling (429, ``Throttling*``, ``TooManyRequests``), 5xx answers and
dropped connections are retried with bounded exponential backoff and jitter.
Waiters use boto3's own waiter definitions (``function_active_v2``,
``function_updated_v2``: operation, delay, acceptors) driven by the same
injected sleep. Only this module and the other ``aws_*`` modules import boto3,
and only when a client or session is made: importing the provider costs
botocore's exceptions, not boto3 (so ``weave deployments`` stays fast when
AWS is not configured).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ..errors import DeploymentFailed
from .retry import RetryPolicy, retry

THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestThrottled",
        "RequestThrottledException",
        "ProvisionedThroughputExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "ServiceException",
    }
)
CONNECTION_ERRORS = (ConnectionClosedError, EndpointConnectionError, ReadTimeoutError, ConnectTimeoutError)
READ_PREFIXES = ("get_", "list_", "describe_")


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def error_message(exc: BaseException) -> str:
    """The AWS error message of a ``ClientError``, or ``str(exc)``."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)
    return str(exc)


def http_status(exc: BaseException) -> int:
    """The HTTP status of a ``ClientError`` (0 for anything else)."""
    if isinstance(exc, ClientError):
        return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return 0


def is_not_found(exc: BaseException) -> bool:
    """True for the "does not exist" errors of Lambda, IAM, API Gateway and CloudWatch Logs."""
    return error_code(exc) in ("ResourceNotFoundException", "NoSuchEntity", "NotFoundException") or (
        isinstance(exc, ClientError) and http_status(exc) == 404
    )


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same call may succeed: throttling, 5xx, a dropped connection."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in THROTTLE_CODES or http_status(exc) in (429, 500, 502, 503, 504)
    return False


@dataclass
class Session:
    """Everything needed to make clients: a boto3 session, region and endpoint override."""

    boto: Any
    region: str
    endpoint_url: str | None = None
    method: str = "default"


class AwsClient:
    """Makes boto3 clients for one session and calls them with retries.

    Args:
        session: the :class:`Session` (see :mod:`weave_nb.providers.aws_auth`).
        sleep: the sleep function for backoff and waiter delays.
        policy: the retry policy for transient failures.
        log: receives one line per retry (never secrets).
    """

    def __init__(
        self,
        session: Session,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.sleep = sleep
        self.policy = policy or RetryPolicy()
        self.log = log or (lambda text: None)
        self.calls = 0
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # boto3 sessions are not thread-safe; clients are

    @property
    def region(self) -> str:
        """The region the clients talk to."""
        return self.session.region

    def client(self, service: str) -> Any:
        """The boto3 client for ``service`` (made once, thread-safe), with botocore's retries off."""
        with self._lock:
            return self._client_locked(service)

    def _client_locked(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            cfg = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=10,
                read_timeout=70,
                user_agent_extra="weave-nb",
            )
            kwargs: dict[str, Any] = {"region_name": self.session.region, "config": cfg}
            if self.session.endpoint_url:
                kwargs["endpoint_url"] = self.session.endpoint_url
            self._clients[service] = self.session.boto.client(service, **kwargs)
        return self._clients[service]

    def call(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call ``service.operation(**params)``, retrying transient failures.

        Returns:
            The response dict.

        Raises:
            ClientError: a non-transient AWS error, or a transient one after the last attempt.
            botocore.exceptions.BotoCoreError: a connection failure after the last attempt.
        """
        method = getattr(self.client(service), operation)

        def once() -> dict[str, Any]:
            self.calls += 1
            return method(**params)

        def note(exc: BaseException, delay: float) -> None:
            self.log(f"{service}.{operation}: {error_code(exc) or type(exc).__name__}, retrying in {delay:.1f}s")

        return retry(once, is_transient, self.sleep, self.policy, note)

    def create(self, service: str, operation: str, find: Callable[[], Any], **params: Any) -> Any:
        """Call a create operation whose answer may be lost, without ever making the resource twice.

        After a transient failure (a dropped connection, a 5xx: AWS may have
        made the resource and lost the answer) ``find()`` looks for what the
        call made; when it returns something, that is the answer (the
        resource is adopted as this call's). Otherwise the call is tried
        again, with the same backoff as :meth:`call`.

        Returns:
            The create's answer, or what ``find()`` returned.

        Raises:
            ClientError: a non-transient error, or a transient one after the last attempt.
        """
        method = getattr(self.client(service), operation)
        attempt = 0
        while True:
            attempt += 1
            try:
                self.calls += 1
                return method(**params)
            except Exception as exc:  # classified below
                if not is_transient(exc):
                    raise
                found = find()
                if found is not None:
                    self.log(f"{service}.{operation}: the answer was lost but the resource exists: adopting it")
                    return found
                if attempt >= self.policy.attempts:
                    raise
                delay = self.policy.delay(attempt)
                self.log(f"{service}.{operation}: {error_code(exc) or type(exc).__name__}, retrying in {delay:.1f}s")
                self.sleep(delay)

    def paginate(self, service: str, operation: str, result_key: str, token_in: str, token_out: str, **params: Any) -> list[Any]:
        """Collect every page of a listing by following its continuation token.

        Args:
            service: the boto3 service name.
            operation: the listing operation, e.g. ``list_functions``.
            result_key: the list in each page, e.g. ``Functions``.
            token_in: the request parameter carrying the token (``Marker``).
            token_out: the response field holding the next token (``NextMarker``).

        Returns:
            Every item of every page, in order.
        """
        items: list[Any] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            args = dict(params)
            if token:
                args[token_in] = token
            page = self.call(service, operation, **args)
            items.extend(page.get(result_key) or [])
            token = page.get(token_out) or None
            if not token or token in seen:
                return items
            seen.add(token)

    def wait(self, service: str, waiter: str, max_wait: float = 900.0, **params: Any) -> dict[str, Any]:
        """Poll until boto3's waiter ``waiter`` succeeds, using its operation and acceptors.

        The first poll happens at once; then the waiter's own delay applies
        (through the injected sleep). Transient errors of a poll are retried
        by :meth:`call`.

        Returns:
            The last response (for ``function_*_v2``: the ``GetFunction`` answer).

        Raises:
            DeploymentFailed: a failure acceptor matched, or ``max_wait`` passed.
        """
        model = self.client(service).get_waiter(waiter).config
        operation = _snake(model.operation)
        waited = 0.0
        while True:
            response = self.call(service, operation, **params)
            state = None
            for acceptor in model.acceptors:
                if acceptor.matcher_func(response):
                    state = acceptor.state
                    break
            if state == "success":
                return response
            if state == "failure":
                reason = (response.get("Configuration") or {}).get("StateReason") or (
                    response.get("Configuration") or {}
                ).get("LastUpdateStatusReason") or "the resource reported a failed state"
                raise DeploymentFailed(f"{waiter}: {reason}", "see the function's state in the AWS console or `weave status`")
            if waited >= max_wait:
                raise DeploymentFailed(f"{waiter}: gave up after {int(waited)}s", "run the deploy again to finish")
            self.sleep(model.delay)
            waited += model.delay


def make_boto_session(**kwargs: Any) -> Any:
    """A ``boto3.Session`` with ``kwargs`` (access keys, token, profile_name)."""
    import boto3

    return boto3.session.Session(**kwargs)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
