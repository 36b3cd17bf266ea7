"""Bad input and missing credentials: a clear error before any remote call, nothing created."""

from __future__ import annotations

import pytest

from weave_nb.core.errors import ConfigError, CredentialsError

try:
    from tests.aws_servers import EXAMPLES, aws, aws_offline, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, aws_offline, moto_server  # noqa: F401

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()


@pytest.mark.parametrize("values, match", [
    ({"name": "a" * 60}, "function name"),
    ({"name": "a" * 56}, "IAM role name"),
    ({"memory_mb": 64}, "memory 64 MB"),
    ({"memory_mb": 20000}, "memory 20000 MB"),
    ({"timeout_seconds": 901}, "timeout 901 s"),
    ({"region": "mars-north-1"}, "not a known AWS region"),
    ({"type": "container"}, "type 'container'"),
    ({"options": {"runtime": "python2.7"}}, "unsupported runtime"),
    ({"options": {"architecture": "sparc"}}, "architecture"),
    ({"options": {"endpoint": "grpc"}}, "endpoint"),
    ({"options": {"role_arn": "not-an-arn"}}, "IAM role ARN"),
    ({"options": {"log_retention_days": 2}}, "must be one of"),
    ({"options": {"nonsense": 1}}, "nonsense"),
    ({"env": {"AWS_REGION": "x"}}, "reserved"),
])
def test_bad_settings_fail_before_any_call(aws_offline, values, match):
    mgr = aws_offline.manager()
    with pytest.raises(ConfigError, match=match) as err:
        mgr.deploy({"name": "demo", "provider": "aws", "weave_text": HELLO, **values})
    assert err.value.suggestion
    assert aws_offline.proxy.calls == []


def test_package_too_large_fails_before_upload(aws_offline, monkeypatch):
    from weave_nb.providers.aws import provider as aws_provider

    real = aws_provider.AwsProvider.build_artifact

    def huge(self, spec, config):
        art = real(self, spec, config)
        files = dict(art.files)
        files["padding.bin"] = b"\0" * (251 * 1024 * 1024)
        return type(art)(data=art.data, content_hash=art.content_hash, files=files, spec=art.spec)

    monkeypatch.setattr(aws_provider.AwsProvider, "build_artifact", huge)
    with pytest.raises(ConfigError, match="250 MB"):
        aws_offline.manager().deploy({"name": "demo", "provider": "aws", "weave_text": HELLO})
    assert aws_offline.proxy.calls == []


def test_zipped_limit_is_checked():
    from weave_nb.providers.aws.settings import check_size

    check_size(50 * 2**20, 250 * 2**20)
    with pytest.raises(ConfigError, match="50 MB"):
        check_size(50 * 2**20 + 1, 1)


@pytest.mark.parametrize("name", ["a" * 55, "x"])
def test_longest_valid_name_is_accepted(aws, name):
    info = aws.manager().deploy({"name": name, "provider": "aws", "weave_text": HELLO})
    assert info.status.value == "active"
    assert aws.client("lambda").get_function(FunctionName=f"weave-{name}")


def test_missing_credentials_lists_the_ways_and_calls_nothing(aws_offline, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CredentialsError) as err:
        aws_offline.manager().deploy({"name": "demo", "provider": "aws", "weave_text": HELLO})
    text = str(err.value)
    for way in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "api_key", "iam_role", "AWS_ENDPOINT_URL"):
        assert way in text
    assert aws_offline.proxy.calls == []


def test_half_a_key_pair_is_an_error(aws_offline, monkeypatch):
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CredentialsError, match="AWS_SECRET_ACCESS_KEY is missing"):
        aws_offline.manager().deploy({"name": "demo", "provider": "aws", "weave_text": HELLO})
    assert aws_offline.proxy.calls == []


def test_missing_region_is_a_clear_error(aws_offline, monkeypatch):
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="no AWS region") as err:
        aws_offline.manager().deploy({"name": "demo", "provider": "aws", "weave_text": HELLO})
    assert "AWS_REGION" in err.value.suggestion
    assert aws_offline.proxy.calls == []


def test_role_name_taken_by_someone_else_is_refused(aws):
    import json

    aws.client("iam").create_role(RoleName="weave-nb-demo", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    from weave_nb.core.errors import ForeignResource

    with pytest.raises(ForeignResource, match="IAM role weave-nb-demo exists but was made by something else"):
        aws.manager().deploy({"name": "demo", "provider": "aws", "weave_text": HELLO})
    assert aws.counts()["functions"] == 0
    assert aws.client("iam").get_role(RoleName="weave-nb-demo")  # theirs: left alone


def test_existing_role_arn_is_used_without_creating_one(aws):
    import json

    iam = aws.client("iam")
    arn = iam.create_role(RoleName="mine", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    mgr = aws.manager()
    mgr.deploy({"name": "demo", "provider": "aws", "weave_text": HELLO, "options": {"role_arn": arn}})
    assert aws.client("lambda").get_function(FunctionName="weave-demo")["Configuration"]["Role"] == arn
    assert aws.counts()["roles"] == 0  # no weave-nb-* role
    mgr.destroy("demo", "aws")
    assert iam.get_role(RoleName="mine")


def test_partition_aware_policy_arn():
    from weave_nb.providers.aws.settings import basic_policy_arn

    assert basic_policy_arn("us-east-1") == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    assert basic_policy_arn("cn-north-1").startswith("arn:aws-cn:iam::aws:policy/")
    assert basic_policy_arn("us-gov-west-1").startswith("arn:aws-us-gov:iam::aws:policy/")
