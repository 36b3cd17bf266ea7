"""The aws planner's decisions from in-memory observed state: no server, no SDK call, milliseconds.

What the planner decides for each remote situation is checked here on
``Observed`` values built by hand; the moto tests (test_aws_plan.py) check
that the executed steps are these and that they do what they say.
"""

from __future__ import annotations

import pytest

from weave_nb.core.auth import AuthenticationManager
from weave_nb.core.config import DeploymentConfig
from weave_nb.providers.aws.endpoint_plan import SID_URL_INVOKE, SID_URL_PUBLIC, adopt_step, url_steps
from weave_nb.providers.aws.provider import AwsProvider
from weave_nb.providers.aws.resources import Observed
from weave_nb.providers.aws.settings import LOG_POLICY_NAME, basic_policy_arn, log_policy_document

ROLE_ARN = "arn:aws:iam::123456789012:role/weave-nb-demo"
TAGS = {"weave-nb:managed": "true", "weave-nb:name": "demo", "weave-nb:owner": "0123456789abcdef"}


def role_steps(obs: Observed, adopt: bool = False, **options):
    provider = AwsProvider(AuthenticationManager())
    config = DeploymentConfig(name="demo", provider="aws", region="us-east-1", options=options)
    return provider._role_steps(config, provider.options(config), obs, "us-east-1", "weave-demo", TAGS, adopt)


def brief(steps):
    return [(s.key, s.action, s.call, s.undo) for s in steps]


def test_no_role_yet_creates_it_and_its_scoped_log_policy_with_the_account_left_to_apply_time():
    steps = role_steps(Observed())
    assert brief(steps) == [("role", "create", "create_role", "delete_role"),
                            ("role-log-policy", "create", "put_role_policy", "delete_role_policy")]
    assert steps[1].params["account_id"] is None and steps[1].params["policy_name"] == LOG_POLICY_NAME


def test_an_older_role_with_the_managed_policy_gets_the_inline_one_then_the_detach():
    obs = Observed(role={"Arn": ROLE_ARN}, role_policies=[basic_policy_arn("us-east-1")])
    steps = role_steps(obs)
    assert brief(steps) == [("role", "no-change", None, None),
                            ("role-log-policy", "create", "put_role_policy", "delete_role_policy"),
                            ("role-policy", "delete", "detach_policy", "attach_policy")]
    assert steps[1].params["account_id"] == "123456789012"


def test_a_role_with_the_wanted_document_needs_nothing():
    doc = log_policy_document("us-east-1", "123456789012", "weave-demo")
    assert brief(role_steps(Observed(role={"Arn": ROLE_ARN}, role_log_policy=doc))) == [
        ("role", "no-change", None, None), ("role-log-policy", "no-change", None, None)]


def test_a_changed_document_is_updated_and_its_undo_puts_the_old_one_back():
    old = {"Version": "2012-10-17", "Statement": []}
    (_, policy) = role_steps(Observed(role={"Arn": ROLE_ARN}, role_log_policy=old))
    assert (policy.action, policy.undo, policy.params["previous_document"]) == ("update", "restore_role_policy", old)


def test_adopting_a_role_tags_it_and_never_plans_its_removal():
    steps = role_steps(Observed(role={"Arn": ROLE_ARN}, role_policies=[basic_policy_arn("us-east-1")]), adopt=True)
    assert steps[0].action == "adopt" and steps[0].undo is None and steps[0].params["tags"] == TAGS
    assert "role-policy" not in [s.key for s in steps]  # an adopted role keeps the managed policies it had


def test_a_given_role_arn_plans_nothing_on_iam():
    assert brief(role_steps(Observed(), role_arn=ROLE_ARN)) == [("role", "no-change", None, None)]


@pytest.mark.parametrize("public, url, sids, expected", [
    (False, None, [], [("url", "create", "create_url")]),
    (True, None, [], [("url", "create", "create_url"), (f"permission-{SID_URL_PUBLIC}", "create", "add_permission"),
                      (f"permission-{SID_URL_INVOKE}", "create", "add_permission")]),
    (False, {"AuthType": "AWS_IAM"}, [], [("url", "no-change", None)]),
    # public, then a redeploy without --public: the URL turns private and the anonymous statements go
    (False, {"AuthType": "NONE"}, [SID_URL_PUBLIC, SID_URL_INVOKE],
     [("url", "update", "update_url"), (f"permission-{SID_URL_PUBLIC}", "delete", "remove_permission"),
      (f"permission-{SID_URL_INVOKE}", "delete", "remove_permission")]),
])
def test_function_url_steps(public, url, sids, expected):
    obs = Observed(url=url, policy=[{"Sid": s} for s in sids])
    steps = url_steps("weave-demo", public, obs)
    assert [(s.key, s.action, s.call) for s in steps] == expected
    if steps[0].changes:
        assert steps[0].params["auth_type"] == ("NONE" if public else "AWS_IAM")


def test_adopt_steps_name_the_resource_and_carry_our_marks():
    step = adopt_step("function", "weave-demo", "arn:aws:lambda:us-east-1:123456789012:function:weave-demo", TAGS)
    assert (step.action, step.call, step.undo, step.params["tags"]) == ("adopt", "adopt", None, TAGS)
