"""Retry and waiter logic of the boto3 wrapper (in-process, with botocore's Stubber)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber

from weave_nb.core.errors import DeploymentFailed
from weave_nb.providers.aws.client import AwsClient, RetryPolicy, Session, is_transient


def _client(policy=None):
    lam = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    sleeps: list[float] = []
    client = AwsClient(Session(boto=None, region="us-east-1"), sleep=sleeps.append, policy=policy or RetryPolicy(rand=lambda: 1.0))
    client._clients["lambda"] = lam
    stub = Stubber(lam)
    stub.activate()
    return client, stub, sleeps


def _conf(**kw):
    return {"Configuration": {"FunctionName": "f", **kw}}


def test_waiter_uses_boto3_definition_and_injected_sleep():
    client, stub, sleeps = _client()
    for state in ("Pending", "Pending", "Active"):
        stub.add_response("get_function", _conf(State=state), {"FunctionName": "f"})
    out = client.wait("lambda", "function_active_v2", FunctionName="f")
    assert out["Configuration"]["State"] == "Active"
    assert sleeps == [1, 1]  # the waiter's own delay, through the injected sleep
    stub.assert_no_pending_responses()


def test_waiter_failure_state_raises_with_the_reason():
    client, stub, _ = _client()
    stub.add_response("get_function", _conf(LastUpdateStatus="Failed", LastUpdateStatusReason="bad zip"), {"FunctionName": "f"})
    with pytest.raises(DeploymentFailed, match="bad zip"):
        client.wait("lambda", "function_updated_v2", FunctionName="f")


def test_waiter_gives_up_after_max_wait():
    client, stub, sleeps = _client()
    for _ in range(4):
        stub.add_response("get_function", _conf(State="Pending"), {"FunctionName": "f"})
    with pytest.raises(DeploymentFailed, match="gave up"):
        client.wait("lambda", "function_active_v2", max_wait=3, FunctionName="f")
    assert sum(sleeps) == 3


def test_throttling_retried_with_bounded_backoff_then_raised():
    client, stub, sleeps = _client(RetryPolicy(attempts=4, base=0.5, cap=1.5, rand=lambda: 1.0))
    for _ in range(4):
        stub.add_client_error("get_function", service_error_code="TooManyRequestsException", http_status_code=429)
    with pytest.raises(ClientError):
        client.call("lambda", "get_function", FunctionName="f")
    assert sleeps == [0.5, 1.0, 1.5]


def test_client_errors_that_are_not_transient_are_not_retried():
    client, stub, sleeps = _client()
    stub.add_client_error("get_function", service_error_code="ResourceNotFoundException", http_status_code=404)
    with pytest.raises(ClientError):
        client.call("lambda", "get_function", FunctionName="f")
    assert sleeps == []


def test_transient_classification():
    def err(code, status):
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")

    assert is_transient(err("Throttling", 400))
    assert is_transient(err("", 503))
    assert is_transient(EndpointConnectionError(endpoint_url="http://x"))
    assert not is_transient(err("AccessDenied", 403))
    assert not is_transient(ValueError("x"))


def test_jitter_stays_within_half_to_full_delay():
    policy = RetryPolicy(base=1.0, cap=4.0, rand=lambda: 0.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 2.0]
