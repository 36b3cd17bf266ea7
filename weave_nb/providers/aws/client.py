"""A thin wrapper over botocore clients: one retry policy and waiters that never sleep for real in tests.

botocore's own retries are switched off (``max_attempts=1``) so that every
retry goes through :class:`AwsClient`, whose sleep function is injected:
throttling (429, ``Throttling*``, ``TooManyRequests``), 5xx answers and
dropped connections are retried with bounded exponential backoff and jitter.
Waiters use boto3's own waiter definitions (``function_active_v2``,
``function_updated_v2``: operation, delay, acceptors) driven by the same
injected sleep. Only this module and the other ``aws_*`` modules import
botocore, and only when a client or session is made: importing the provider
costs botocore's exceptions, nothing more (so ``weave deployments`` stays
fast when AWS is not configured). boto3 is not used at run time: a
:class:`BotoSession` is a botocore session on one data loader per process,
and clients are made once per session, on first use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from ...core.errors import DeploymentFailed
from ..retry import RetryPolicy, retry

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
    """Everything needed to make clients: a session (:class:`BotoSession`), region and endpoint override.

    The botocore clients made for it are kept in ``clients`` (they are
    thread-safe), so every run in a process that uses the same session makes
    each service's client once.
    """

    boto: Any
    region: str
    endpoint_url: str | None = None
    method: str = "default"
    clients: dict[str, Any] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class AwsClient:
    """Makes botocore clients for one session and calls them with retries.

    Args:
        session: the :class:`Session` (see :mod:`weave_nb.providers.aws.auth`).
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
        self._api: Any = None

    @property
    def api(self) -> Any:
        """The typed facade over this client's calls (:class:`~.api.Api`: ``lam``, ``iam``, ``apigw``, ``logs``)."""
        if self._api is None:
            from .api import Api

            self._api = Api(self)
        return self._api

    @property
    def _clients(self) -> dict[str, Any]:
        """The session's clients by service (tests put stubbed clients here)."""
        return self.session.clients

    @property
    def region(self) -> str:
        """The region the clients talk to."""
        return self.session.region

    def client(self, service: str) -> Any:
        """The botocore client for ``service`` (made once per session, on first use), with botocore's retries off."""
        clients = self.session.clients
        if service in clients:
            return clients[service]
        with self.session.lock:  # botocore sessions are not thread-safe; clients are
            return self._client_locked(service)

    def _client_locked(self, service: str) -> Any:
        clients = self.session.clients
        if service not in clients:
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
            clients[service] = self.session.boto.client(service, **kwargs)
        return clients[service]

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


@cache
def shared_loader() -> Any:
    """The process's one botocore data loader.

    Every session made by :func:`make_boto_session` uses it, so botocore's
    JSON data (endpoints, partitions, service models, waiters) is read from
    disk once per process, not once per session or client.
    """
    from botocore.loaders import create_loader

    return create_loader()


class BotoSession:
    """A botocore session on the shared loader, with the few boto3 ``Session`` methods weave-nb uses.

    boto3 itself is not imported: importing it also loads s3transfer (about
    50 ms per process) and boto3's resource machinery, none of which the
    provider needs.

    Args:
        aws_access_key_id, aws_secret_access_key, aws_session_token: static credentials, if given.
        profile_name: a profile of the shared AWS files.

    Raises:
        botocore.exceptions.ProfileNotFound: ``profile_name`` is not in the shared files.
    """

    def __init__(self, aws_access_key_id: str | None = None, aws_secret_access_key: str | None = None,
                 aws_session_token: str | None = None, profile_name: str | None = None) -> None:
        import botocore.session

        core = botocore.session.Session(profile=profile_name)
        core.register_component("data_loader", shared_loader())
        if profile_name is not None:
            core.get_scoped_config()  # an unknown profile fails here, as boto3.Session does
        if aws_access_key_id is not None or aws_secret_access_key is not None:
            core.set_credentials(aws_access_key_id, aws_secret_access_key, aws_session_token)
        self._session = core

    @property
    def region_name(self) -> str | None:
        """The region the shared files or the environment configure."""
        return self._session.get_config_variable("region")

    def get_credentials(self) -> Any:
        """botocore's credentials (``None`` when none are found)."""
        return self._session.get_credentials()

    def client(self, service: str, **kwargs: Any) -> Any:
        """A botocore client for ``service`` (the same keyword arguments as ``boto3.client``)."""
        return self._session.create_client(service, **kwargs)


def make_boto_session(**kwargs: Any) -> BotoSession:
    """A session with ``kwargs`` (access keys, token, profile_name) on the shared loader."""
    return BotoSession(**kwargs)


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)
