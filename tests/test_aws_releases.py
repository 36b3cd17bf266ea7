"""Releases on the aws provider against moto_server over HTTP: history, rollback, canary, promote, prune.

Every check of where traffic goes reads the ``live`` alias back with boto3.
"""

from __future__ import annotations

from pathlib import Path

import pytest

try:
    from tests.aws_servers import EXAMPLES, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, aws, moto_server  # noqa: F401

from weave_nb.core.errors import ConfigError

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()


def deploy(mgr, greeting: str, **values):
    text = HELLO.replace("Greet the user warmly.", greeting)
    return mgr.deploy({"name": "rel", "provider": "aws", "weave_text": text, **values})


def alias(aws) -> dict:
    return aws.client("lambda").get_alias(FunctionName="weave-rel", Name="live")


def states(mgr) -> list[tuple[int, str, str]]:
    return [(r.number, r.state, r.version_id) for r in mgr.releases("rel", "aws")]


def test_rollback_moves_the_alias_back_to_release_1(aws):
    mgr = aws.manager()
    one = deploy(mgr, "Greet warmly.")
    two = deploy(mgr, "Greet briskly.")
    assert (one.version, two.version) == ("1", "2") and alias(aws)["FunctionVersion"] == "2"
    assert states(mgr) == [(2, "live", "2"), (1, "previous", "1")]
    rels = mgr.releases("rel", "aws")
    assert rels[0].content_hash != rels[1].content_hash and rels[0].created_by

    plan = mgr.rollback("rel", "aws", dry_run=True)
    assert plan.operation == "rollback" and plan.steps[0].call == "route_alias" and plan.steps[0].params["version"] == "1"
    assert alias(aws)["FunctionVersion"] == "2"  # the dry run changed nothing

    info = mgr.rollback("rel", "aws")
    assert alias(aws)["FunctionVersion"] == "1" and info.version == "1"
    assert not (alias(aws).get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert states(mgr) == [(2, "previous", "2"), (1, "live", "1")]
    assert info.content_hash == rels[1].content_hash
    # a deploy of the same weave as the live release changes nothing: no new release
    again = deploy(mgr, "Greet warmly.")
    assert [s.action for s in mgr.plan({"name": "rel", "provider": "aws", "weave_text": HELLO.replace(
        "Greet the user warmly.", "Greet warmly.")}).changing()] == []
    assert again.version == "1" and len(states(mgr)) == 2


def test_canary_splits_the_alias_and_promote_ends_it(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    plan = mgr.deploy({"name": "rel", "provider": "aws", "weave_text": HELLO.replace("Greet the user warmly.", "Greet briskly."),
                       "options": {"canary": 10}}, dry_run=True)
    assert plan.step("alias").call == "split_alias" and "10%" in plan.step("alias").detail
    info = deploy(mgr, "Greet briskly.", options={"canary": 10})
    live = alias(aws)
    assert live["FunctionVersion"] == "1"
    assert live["RoutingConfig"]["AdditionalVersionWeights"] == {"2": pytest.approx(0.1)}
    assert info.version == "1" and "canary" in info.message
    assert states(mgr) == [(2, "canary", "2"), (1, "live", "1")]
    row = next(d for d in mgr.list("aws").deployments if d.name == "rel")
    assert row.row()["traffic"] == "v1 90% / v2 10%"

    with pytest.raises(ConfigError, match="already a canary"):
        deploy(mgr, "Greet slowly.", options={"canary": 20})

    mgr.promote("rel", "aws")
    live = alias(aws)
    assert live["FunctionVersion"] == "2"
    assert not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert states(mgr) == [(2, "live", "2"), (1, "previous", "1")]
    assert next(d for d in mgr.list("aws").deployments if d.name == "rel").row()["traffic"] is None


def test_rollback_during_a_canary_sends_it_nothing(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.", options={"canary": 25})
    assert alias(aws)["RoutingConfig"]["AdditionalVersionWeights"] == {"2": pytest.approx(0.25)}
    mgr.rollback("rel", "aws")
    live = alias(aws)
    assert live["FunctionVersion"] == "1" and not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert states(mgr) == [(2, "retired", "2"), (1, "live", "1")]


def test_canary_needs_a_live_release_and_a_percent(aws):
    mgr = aws.manager()
    with pytest.raises(ConfigError, match="needs a live release"):
        deploy(mgr, "Greet warmly.", options={"canary": 10})
    assert aws.client("lambda").list_functions()["Functions"] == []  # nothing was made
    deploy(mgr, "Greet warmly.")
    with pytest.raises(ConfigError, match="1 to 99"):
        deploy(mgr, "Greet briskly.", options={"canary": 100})
    with pytest.raises(ConfigError, match="changes nothing"):
        deploy(mgr, "Greet warmly.", options={"canary": 10})


def test_prune_deletes_old_versions_as_plan_steps(aws, monkeypatch):
    monkeypatch.setenv("WEAVE_KEEP_RELEASES", "2")
    mgr = aws.manager()
    for greeting in ("One.", "Two."):
        deploy(mgr, greeting)
    plan = mgr.plan({"name": "rel", "provider": "aws", "weave_text": HELLO.replace("Greet the user warmly.", "Three.")})
    assert [s.key for s in plan.steps if s.call == "delete_release"] == ["prune-1"]
    zips = {r.number: r.details["zip"] for r in mgr.releases("rel", "aws")}
    deploy(mgr, "Three.")
    assert not Path(zips[1]).exists() and Path(zips[2]).is_file()  # the pruned release's package copy went too
    versions = [v["Version"] for v in aws.client("lambda").list_versions_by_function(FunctionName="weave-rel")["Versions"]]
    assert versions == ["$LATEST", "2", "3"]
    assert [(n, s, mgr_r.pruned) for (n, s, _), mgr_r in zip(states(mgr), mgr.releases("rel", "aws"))] == [
        (3, "live", False), (2, "previous", False), (1, "retired", True)]
    with pytest.raises(ConfigError, match="pruned"):
        mgr.rollback("rel", "aws", to=1)


def test_a_failed_canary_deploy_puts_the_alias_back_and_records_no_release(aws):
    from aws_servers import Rule

    from weave_nb.core.errors import WeaveError

    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    aws.proxy.add(Rule("PUT", r"/functions/weave-rel/url$", status=500, count=1000))  # fails after the alias was split
    with pytest.raises(WeaveError):
        deploy(mgr, "Greet briskly.", public=True, options={"canary": 10})
    live = alias(aws)
    assert live["FunctionVersion"] == "1" and not (live.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    assert states(mgr) == [(1, "live", "1")]
    steps = [(s["key"], s["outcome"]) for s in mgr.inventory.journal.runs("aws", "rel")[-1]["steps"]]
    assert ("alias", "undone") in steps


def test_a_failed_rollback_changes_nothing(aws):
    from aws_servers import Rule

    from weave_nb.core.errors import WeaveError

    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.")
    aws.proxy.add(Rule("PUT", r"/functions/weave-rel/aliases/live$", status=500, count=1000))
    with pytest.raises(WeaveError, match="rollback failed"):
        mgr.rollback("rel", "aws")
    assert alias(aws)["FunctionVersion"] == "2"
    assert states(mgr) == [(2, "live", "2"), (1, "previous", "1")]


def test_rollback_and_promote_refuse_a_function_another_inventory_owns(aws):
    """Moving the alias is a change like a deploy: a function whose owner mark is not this inventory's is refused."""
    from weave_nb.core.errors import ForeignResource

    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.")
    lam = aws.client("lambda")
    arn = lam.get_function(FunctionName="weave-rel")["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"weave-nb:owner": "someone-else"})
    with pytest.raises(ForeignResource):
        mgr.rollback("rel", "aws", dry_run=True)
    with pytest.raises(ForeignResource):
        mgr.rollback("rel", "aws")
    assert alias(aws)["FunctionVersion"] == "2"  # untouched
