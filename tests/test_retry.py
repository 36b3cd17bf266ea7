"""The shared retry loop (weave_nb.providers.retry) that the aws and gcp clients both use."""

from __future__ import annotations

import pytest

from weave_nb.providers.retry import RetryPolicy, retry


class Flaky(Exception):
    pass


def _failing(times: int, error: type[Exception] = Flaky):
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= times:
            raise error(f"failure {len(calls)}")
        return "ok"

    return fn, calls


def test_transient_errors_are_retried_with_doubling_capped_delays():
    fn, calls = _failing(4)
    sleeps, seen = [], []
    policy = RetryPolicy(attempts=5, base=0.5, cap=1.5, rand=None)
    result = retry(fn, lambda e: isinstance(e, Flaky), sleeps.append, policy, lambda e, d: seen.append((str(e), d)))
    assert result == "ok" and len(calls) == 5
    assert sleeps == [0.5, 1.0, 1.5, 1.5]
    assert seen == [("failure 1", 0.5), ("failure 2", 1.0), ("failure 3", 1.5), ("failure 4", 1.5)]


def test_the_last_transient_error_is_raised_after_the_final_attempt():
    fn, calls = _failing(10)
    sleeps = []
    with pytest.raises(Flaky, match="failure 3"):
        retry(fn, lambda e: True, sleeps.append, RetryPolicy(attempts=3, rand=None))
    assert len(calls) == 3 and len(sleeps) == 2


def test_a_permanent_error_is_raised_at_once():
    fn, calls = _failing(1, ValueError)
    sleeps = []
    with pytest.raises(ValueError):
        retry(fn, lambda e: isinstance(e, Flaky), sleeps.append, RetryPolicy())
    assert len(calls) == 1 and sleeps == []


@pytest.mark.parametrize("rand, expected", [(0.0, [0.5, 1.0, 2.0]), (1.0, [1.0, 2.0, 4.0]), (None, [1.0, 2.0, 4.0])])
def test_jitter_scales_into_the_upper_half(rand, expected):
    policy = RetryPolicy(base=1.0, cap=4.0, rand=None if rand is None else (lambda: rand))
    assert [policy.delay(n) for n in (1, 2, 3)] == expected


def test_gcp_client_keeps_its_fixed_delays():
    pytest.importorskip("google.cloud.functions_v2")
    from google.api_core import exceptions as gexc
    from google.auth.credentials import AnonymousCredentials

    from weave_nb.providers.gcp.auth import GcpSession
    from weave_nb.providers.gcp.client import GcpClient

    sleeps = []
    session = GcpSession(AnonymousCredentials(), "p", "oauth", "http://127.0.0.1:9", None)
    client = GcpClient(session, sleeps.append, lambda: 0.0)
    fn, calls = _failing(9, lambda msg: gexc.ServiceUnavailable(msg))

    with pytest.raises(gexc.ServiceUnavailable):
        client.call(lambda retry=None: fn())
    assert len(calls) == 5 and sleeps == [0.5, 1.0, 2.0, 4.0]
