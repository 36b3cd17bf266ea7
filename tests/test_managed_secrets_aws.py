"""Managed secrets on AWS, against moto_server over HTTP: Secrets Manager, the role's policy, the runtime's read.

A known fake value is deployed with ``--secret``; the test then searches
everything weave-nb wrote or printed, and the function's configuration, for
it. The stdlib runtime reads it back with only the ARN from the function's
environment (a SigV4 ``GetSecretValue`` sent to moto_server).
"""

from __future__ import annotations

import datetime
import io
import json
import sqlite3

import pytest

try:
    from tests.aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401

from weave_nb.frontends import cli
from weave_nb.runtime import secret_loader

pytestmark = pytest.mark.aws

VALUE = "sk-fake-secret-9Hq2Lp7Vx4Zt"
OTHER = "sk-fake-other-3Bn8Kd1Wm6Ry"


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err)
    return code, out.getvalue() + err.getvalue()


def leaks_in_home(home, value):
    found = []
    for path in home.rglob("*"):
        if path.is_file() and value.encode() in path.read_bytes():
            found.append(str(path))
    db = home / "inventory.db"
    with sqlite3.connect(db) as conn:  # the journal and resources tables, row by row (not only the file's pages)
        for table, in conn.execute("select name from sqlite_master where type='table'"):
            for row in conn.execute(f"select * from {table}"):
                if VALUE in repr(row):
                    found.append(f"{table} row")
    return found


def test_deploy_with_a_secret_stores_it_in_secrets_manager_and_only_its_arn_in_the_function(aws, tmp_path, monkeypatch):
    weave = tmp_path / "hello.weave.yaml"
    weave.write_text((EXAMPLES / "hello.weave.yaml").read_text())
    monkeypatch.setenv("OPENAI_API_KEY", VALUE)
    code, plan_text = run_cli("plan", "--name", "demo", "-p", "aws", "-c", str(weave), "--secret", "OPENAI_API_KEY")
    assert code == 0, plan_text
    assert "secret weave/demo/OPENAI_API_KEY" in plan_text and VALUE not in plan_text
    code, output = run_cli("deploy", "--name", "demo", "-p", "aws", "-c", str(weave), "--secret", "OPENAI_API_KEY")
    assert code == 0, output
    assert VALUE not in output

    sm, lam, iam = aws.client("secretsmanager"), aws.client("lambda"), aws.client("iam")
    secret = sm.describe_secret(SecretId="weave/demo/OPENAI_API_KEY")
    assert sm.get_secret_value(SecretId="weave/demo/OPENAI_API_KEY")["SecretString"] == VALUE
    tags = {t["Key"]: t["Value"] for t in secret["Tags"]}
    assert tags["weave-nb:managed"] == "true" and tags["weave-nb:name"] == "demo" and tags["weave-nb:owner"]

    env = lam.get_function_configuration(FunctionName="weave-demo")["Environment"]["Variables"]
    assert VALUE not in json.dumps(env)
    assert "OPENAI_API_KEY" not in env
    assert json.loads(env["WEAVE_SECRET_ARNS"]) == {"OPENAI_API_KEY": secret["ARN"]}

    policy = iam.get_role_policy(RoleName="weave-nb-demo", PolicyName="weave-nb-secrets")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    assert policy["Statement"] == [{"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                                    "Resource": [secret["ARN"]]}]
    assert leaks_in_home(aws.home, VALUE) == []

    # the runtime, with the function's environment and the function's credentials only, reads the value by its ARN
    runtime_env = {**env, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_ENDPOINT_URL": aws.moto.url, "AWS_REGION": "us-east-1"}
    assert secret_loader.load_secrets(runtime_env) == ["OPENAI_API_KEY"]
    assert runtime_env["OPENAI_API_KEY"] == VALUE

    # unchanged redeploy: nothing to do
    code, again = run_cli("plan", "--name", "demo", "-p", "aws", "-c", str(weave), "--secret", "OPENAI_API_KEY")
    assert code == 0 and "~ secret" not in again and "+ secret" not in again, again

    # a new value: one update step, a new current version, same ARN in the function
    monkeypatch.setenv("OPENAI_API_KEY", OTHER)
    code, output = run_cli("deploy", "--name", "demo", "-p", "aws", "-c", str(weave), "--secret", "OPENAI_API_KEY")
    assert code == 0, output
    assert sm.get_secret_value(SecretId="weave/demo/OPENAI_API_KEY")["SecretString"] == OTHER
    assert OTHER not in output

    code, output = run_cli("undeploy", "demo", "-p", "aws", "--force")
    assert code == 0, output
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=secret["ARN"])


def test_undeploy_never_deletes_a_secret_it_does_not_own(aws, tmp_path, monkeypatch):
    sm = aws.client("secretsmanager")
    theirs = sm.create_secret(Name="weave/demo/THEIRS", SecretString="not-ours")["ARN"]
    monkeypatch.setenv("SERVICE_TOKEN", VALUE)
    mgr = aws.manager()
    mgr.deploy({"name": "demo", "provider": "aws", "weave_text": (EXAMPLES / "hello.weave.yaml").read_text(),
                "secrets": ["SERVICE_TOKEN"]})
    mgr.destroy("demo", "aws")
    assert sm.describe_secret(SecretId=theirs)["Name"] == "weave/demo/THEIRS"
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId="weave/demo/SERVICE_TOKEN")


def test_a_secret_of_that_name_made_by_someone_else_stops_the_deploy(aws, monkeypatch):
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="weave/demo/SERVICE_TOKEN", SecretString="someone-elses")
    monkeypatch.setenv("SERVICE_TOKEN", VALUE)
    from weave_nb.core.errors import ForeignResource

    with pytest.raises(ForeignResource):
        aws.manager().deploy({"name": "demo", "provider": "aws", "weave_text": (EXAMPLES / "hello.weave.yaml").read_text(),
                              "secrets": ["SERVICE_TOKEN"]})
    assert sm.get_secret_value(SecretId="weave/demo/SERVICE_TOKEN")["SecretString"] == "someone-elses"


def test_dropping_a_secret_deletes_it_and_the_policy(aws, monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", VALUE)
    text = (EXAMPLES / "hello.weave.yaml").read_text()
    mgr = aws.manager()
    mgr.deploy({"name": "demo", "provider": "aws", "weave_text": text, "secrets": ["SERVICE_TOKEN"]})
    mgr.deploy({"name": "demo", "provider": "aws", "weave_text": text})
    sm, iam, lam = aws.client("secretsmanager"), aws.client("iam"), aws.client("lambda")
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId="weave/demo/SERVICE_TOKEN")
    assert "weave-nb-secrets" not in iam.list_role_policies(RoleName="weave-nb-demo")["PolicyNames"]
    env = (lam.get_function_configuration(FunctionName="weave-demo").get("Environment") or {}).get("Variables") or {}
    assert "WEAVE_SECRET_ARNS" not in env
    mgr.destroy("demo", "aws")


def test_a_failed_deploy_undoes_the_secret_and_its_policy(aws, monkeypatch):
    """CreateFunction keeps failing: the executor undoes the finished steps, newest first, secret and policy included."""
    from weave_nb.core.errors import WeaveError

    monkeypatch.setenv("SERVICE_TOKEN", VALUE)
    aws.proxy.add(Rule("POST", r"^/2015-03-31/functions/?$", status=500, count=1000))
    with pytest.raises(WeaveError):
        aws.manager().deploy({"name": "demo", "provider": "aws", "weave_text": (EXAMPLES / "hello.weave.yaml").read_text(),
                              "secrets": ["SERVICE_TOKEN"]})
    sm, iam = aws.client("secretsmanager"), aws.client("iam")
    assert sm.list_secrets()["SecretList"] == []
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "weave-nb-demo" not in roles  # the role (and so its inline policies) went too
    assert leaks_in_home(aws.home, VALUE) == []


def test_a_secret_without_a_value_is_refused_before_any_call(aws, monkeypatch):
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    code, output = run_cli("plan", "--name", "demo", "-p", "aws", "-c", str(EXAMPLES / "hello.weave.yaml"), "--secret", "NOT_SET_ANYWHERE")
    assert code == 2 and "secret NOT_SET_ANYWHERE has no value" in output and "export NOT_SET_ANYWHERE=" in output


def test_the_runtime_signature_matches_botocore_sigv4():
    """The stdlib signer gives the same Authorization header as botocore's SigV4Auth for the same request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = datetime.datetime(2026, 11, 30, 12, 0, 0, tzinfo=datetime.timezone.utc)
    url = "https://secretsmanager.eu-west-1.amazonaws.com/"
    body = b'{"SecretId": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:weave/demo/X-AbCdEf"}'
    base = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"}
    ours = secret_loader.sign_v4("POST", url, base, body, "eu-west-1", "secretsmanager", "AKIDEXAMPLE", "wJalrXUtnFEMI", "tok", now=when)
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={**base, "X-Amz-Date": when.strftime("%Y%m%dT%H%M%SZ"),
                                  "X-Amz-Content-Sha256": ours["X-Amz-Content-Sha256"]})
    signer = SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI", "tok"), "secretsmanager", "eu-west-1")
    request.context["timestamp"] = when.strftime("%Y%m%dT%H%M%SZ")  # botocore's signing steps, at the same second
    signer._modify_request_before_signing(request)
    theirs = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    assert ours["Authorization"].rsplit("Signature=", 1)[1] == theirs
    assert "x-amz-security-token" in ours["Authorization"] and "x-amz-target" in ours["Authorization"]


def test_the_runtime_names_a_secret_it_cannot_read_without_its_value(aws):
    env = {"WEAVE_SECRET_ARNS": json.dumps({"MISSING": "arn:aws:secretsmanager:us-east-1:123456789012:secret:weave/x/MISSING-abcdef"}),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": aws.moto.url}
    with pytest.raises(secret_loader.SecretLoadError, match="secret .*MISSING.*ResourceNotFound"):
        secret_loader.load_secrets(env)
    assert "MISSING" not in env
