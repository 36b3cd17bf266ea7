"""Credentials: environment, shared files and profiles, api_key, iam_role (STS), the weave credentials file."""

from __future__ import annotations

import pytest

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def deploy(mgr, **values):
    return mgr.deploy({"name": "demo", "provider": "aws", "weave_text": HELLO, **values})


def _no_env_keys(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


def test_api_key_in_config_is_used_and_kept_secret(aws, monkeypatch):
    _no_env_keys(monkeypatch)
    auth = {"method": "api_key", "access_key_id": "AKIDTESTKEY", "secret_access_key": SECRET}
    info = deploy(aws.manager(), auth=auth)
    assert info.status.value == "active"
    assert SECRET not in repr(info) and SECRET not in info.model_dump_json()
    assert SECRET.encode() not in (aws.home / "inventory.db").read_bytes()
    for path in (aws.home / "aws").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


def test_profile_from_shared_credentials_file(aws, monkeypatch, tmp_path):
    _no_env_keys(monkeypatch)
    creds = tmp_path / "aws-credentials"
    creds.write_text("[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret-from-file\n")
    monkeypatch.setenv("AWS_PROFILE", "dev")
    assert deploy(aws.manager()).status.value == "active"


def test_unknown_profile_is_a_credentials_error(aws, monkeypatch):
    from weave_nb.core.errors import CredentialsError

    _no_env_keys(monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(CredentialsError, match="profile 'nope'"):
        deploy(aws.manager())
    assert aws.proxy.calls == []


def test_iam_role_is_assumed_through_sts(aws):
    auth = {"method": "iam_role", "role_arn": "arn:aws:iam::123456789012:role/deployer", "external_id": "ext-123"}
    info = deploy(aws.manager(), auth=auth)
    assert info.status.value == "active"
    ops = [c.operation for c in aws.proxy.calls]
    assert ops[0] == "AssumeRole"
    assert info.details["auth_method"] == "iam_role"
    # later operations assume the same role again
    aws.proxy.clear()
    aws.manager().status("demo", "aws")
    assert aws.proxy.calls[0].operation == "AssumeRole"


def test_external_id_is_sent_and_never_recorded(aws, monkeypatch):
    monkeypatch.setenv("AWS_ROLE_EXTERNAL_ID", "ext-from-env-42")
    mgr = aws.manager()
    deploy(mgr, auth={"method": "iam_role", "role_arn": "arn:aws:iam::123456789012:role/deployer"})
    assume = [c for c in aws.proxy.calls if c.operation == "AssumeRole"]
    assert b"ExternalId=ext-from-env-42" in assume[0].body
    assert b"ext-from-env-42" not in (aws.home / "inventory.db").read_bytes()


def test_iam_role_without_arn_is_refused_before_any_call(aws):
    from weave_nb.core.errors import CredentialsError

    with pytest.raises(CredentialsError, match="role_arn"):
        deploy(aws.manager(), auth={"method": "iam_role"})
    assert aws.proxy.calls == []


def test_weave_credentials_file_and_endpoint_option(aws, monkeypatch):
    _no_env_keys(monkeypatch)
    endpoint = aws.proxy.url
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    aws.home.mkdir(parents=True, exist_ok=True)
    (aws.home / "credentials.yaml").write_text(
        "aws:\n  AWS_ACCESS_KEY_ID: AKIDFILE\n  AWS_SECRET_ACCESS_KEY: from-weave-file\n"
    )
    mgr = aws.manager()
    info = deploy(mgr, options={"endpoint_url": endpoint})
    assert info.details["endpoint_url"] == endpoint
    # status and undeploy reuse the recorded endpoint override
    assert mgr.status("demo", "aws").status.value == "active"
    mgr.destroy("demo", "aws")
    assert aws.counts()["functions"] == 0


def test_session_token_from_the_environment_signs_every_call(aws, monkeypatch):
    token = "FQoGZXIvYXdzEXAMPLE-session-token-4471"
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    info = deploy(aws.manager())
    assert info.status.value == "active" and info.details["auth_method"] == "env_vars"
    assert aws.proxy.calls
    assert all(c.headers.get("x-amz-security-token") == token for c in aws.proxy.calls)
    assert token.encode() not in (aws.home / "inventory.db").read_bytes()
    assert token not in info.model_dump_json()
