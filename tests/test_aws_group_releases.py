"""Releases of a deployment group on aws, against moto_server over HTTP.

Each region's member records its releases like a single deploy; releases,
rollback, promote and --canary act on every region or on one. Every check of
where traffic goes reads the region's ``live`` alias back with a boto3 client
made for that region.
"""

from __future__ import annotations

import io
import json

import pytest

try:
    from tests.aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from aws_servers import EXAMPLES, Rule, aws, moto_server  # noqa: F401

from weave_nb.core.errors import ConfigError, DeploymentFailed

pytestmark = pytest.mark.aws

HELLO = (EXAMPLES / "hello.weave.yaml").read_text()
REGIONS = "us-east-1,eu-west-1"
EAST, WEST = "us-east-1", "eu-west-1"


def client(aws, region):
    import boto3

    return boto3.client("lambda", endpoint_url=aws.moto.url, region_name=region,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def alias(aws, region) -> dict:
    return client(aws, region).get_alias(FunctionName=f"weave-demo-{region}", Name="live")


def weights(aws, region) -> dict:
    return (alias(aws, region).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def deploy(mgr, greeting: str, region: str = REGIONS, **values):
    text = HELLO.replace("Greet the user warmly.", greeting)
    return mgr.deploy({"name": "demo", "provider": "aws", "weave_text": text, "region": region, **values})


def states(mgr, region=None) -> list[tuple]:
    return [(r.region, r.number, r.state, r.version_id) for r in mgr.releases("demo", "aws", region=region)]


def run_cli(*argv):
    from weave_nb.frontends.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_group_deploy_twice_records_each_regions_releases_and_rollback_moves_every_alias(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.")
    # each region: releases 2 (live) and 1 (previous), region set, version ids from its own Lambda versions
    assert states(mgr) == [(EAST, 2, "live", "2"), (EAST, 1, "previous", "1"),
                           (WEST, 2, "live", "2"), (WEST, 1, "previous", "1")]
    assert states(mgr, WEST) == [(WEST, 2, "live", "2"), (WEST, 1, "previous", "1")]
    assert {r.name for r in mgr.releases("demo", "aws")} == {"demo-us-east-1", "demo-eu-west-1"}
    assert alias(aws, EAST)["FunctionVersion"] == alias(aws, WEST)["FunctionVersion"] == "2"

    plan = mgr.rollback("demo", "aws", dry_run=True)  # one plan, each region's steps
    assert plan.operation == "rollback" and {s.key.split("/")[0] for s in plan.steps} == {EAST, WEST}
    assert all(s.params["version"] == "1" for s in plan.steps if s.call == "route_alias")
    assert alias(aws, EAST)["FunctionVersion"] == "2"  # the dry run changed nothing

    events = []
    info = mgr.rollback("demo", "aws", sink=events.append)
    assert alias(aws, EAST)["FunctionVersion"] == alias(aws, WEST)["FunctionVersion"] == "1"
    assert "2 of 2 regions" in info.message and f"{EAST}: rolled back: v1 is live again" in info.message
    assert set(info.details["regions"]) == {EAST, WEST}
    assert [e.ok for e in events if type(e).__name__ == "Done"] == [True]
    assert states(mgr) == [(EAST, 2, "previous", "2"), (EAST, 1, "live", "1"),
                           (WEST, 2, "previous", "2"), (WEST, 1, "live", "1")]

    # the DataFrame of the Python API: every region's rows, with the region column
    import weave_nb

    frame = weave_nb.releases("demo", manager=mgr)
    assert list(zip(frame["region"], frame["number"], frame["state"])) == [
        (EAST, 2, "previous"), (EAST, 1, "live"), (WEST, 2, "previous"), (WEST, 1, "live")]


def test_rollback_with_region_moves_only_that_regions_alias(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.")
    aws.proxy.clear()
    mgr.rollback("demo", "aws", region=WEST)
    assert alias(aws, WEST)["FunctionVersion"] == "1" and alias(aws, EAST)["FunctionVersion"] == "2"
    assert not [c for c in aws.proxy.mutating() if EAST in c.path]
    assert states(mgr, EAST) == [(EAST, 2, "live", "2"), (EAST, 1, "previous", "1")]
    assert states(mgr, WEST) == [(WEST, 2, "previous", "2"), (WEST, 1, "live", "1")]
    # --to on every region: back to 2 in eu-west-1; us-east-1 is at 2 already, so that region fails, the other is done
    with pytest.raises(DeploymentFailed) as err:
        mgr.rollback("demo", "aws", to=2)
    assert "1 of 2 regions" in err.value.message and f"{EAST}: failed" in err.value.message
    assert alias(aws, WEST)["FunctionVersion"] == alias(aws, EAST)["FunctionVersion"] == "2"


def test_canary_on_a_group_splits_each_regions_alias_and_promote_ends_every_one(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    plan = mgr.plan({"name": "demo", "provider": "aws", "region": REGIONS, "options": {"canary": 10},
                     "weave_text": HELLO.replace("Greet the user warmly.", "Greet briskly.")})
    assert [s.key for s in plan.steps if s.call == "split_alias"] == [f"{EAST}/alias", f"{WEST}/alias"]
    info = deploy(mgr, "Greet briskly.", options={"canary": 10})
    assert info.status.value == "active"
    for region in (EAST, WEST):
        assert alias(aws, region)["FunctionVersion"] == "1"
        assert weights(aws, region) == {"2": pytest.approx(0.1)}
    assert states(mgr, EAST) == [(EAST, 2, "canary", "2"), (EAST, 1, "live", "1")]
    rows = {d.region: d.row()["traffic"] for d in mgr.list("aws").deployments if d.name == "demo"}
    assert rows == {EAST: "v1 90% / v2 10%", WEST: "v1 90% / v2 10%"}  # the traffic column of each region's row

    with pytest.raises(ConfigError, match="already a canary") as err:  # refused for the group, nothing changed
        deploy(mgr, "Greet slowly.", options={"canary": 20})
    assert f"`weave promote demo --region {EAST}`" in err.value.suggestion
    assert weights(aws, WEST) == {"2": pytest.approx(0.1)}
    mgr.promote("demo", "aws", dry_run=True)
    assert weights(aws, EAST) == {"2": pytest.approx(0.1)}  # the dry run changed nothing
    info = mgr.promote("demo", "aws")
    assert "promoted in 2 of 2 regions" in info.message
    for region in (EAST, WEST):
        assert alias(aws, region)["FunctionVersion"] == "2" and weights(aws, region) == {}
    assert states(mgr, WEST) == [(WEST, 2, "live", "2"), (WEST, 1, "previous", "1")]
    assert all(d.row()["traffic"] is None for d in mgr.list("aws").deployments)


def test_canary_is_refused_for_the_whole_group_when_one_region_cannot_take_one(aws):
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.", region=EAST + ",eu-central-1")
    mgr.destroy("demo", "aws", region="eu-central-1")
    aws.proxy.clear()
    # eu-west-1 is new to the group: nothing live there to split with
    with pytest.raises(ConfigError, match="--canary on group 'demo' refused, nothing was changed: in eu-west-1"):
        deploy(mgr, "Greet briskly.", options={"canary": 10})
    assert aws.proxy.mutating() == []
    assert weights(aws, EAST) == {} and states(mgr) == [(EAST, 1, "live", "1")]


def test_group_deploys_prune_old_releases_in_each_region_as_plan_steps(aws, monkeypatch):
    monkeypatch.setenv("WEAVE_KEEP_RELEASES", "2")
    mgr = aws.manager()
    for greeting in ("One.", "Two."):
        deploy(mgr, greeting)
    plan = mgr.plan({"name": "demo", "provider": "aws", "region": REGIONS,
                     "weave_text": HELLO.replace("Greet the user warmly.", "Three.")})
    assert [s.key for s in plan.steps if s.call == "delete_release"] == [f"{EAST}/prune-1", f"{WEST}/prune-1"]
    deploy(mgr, "Three.")
    for region in (EAST, WEST):
        versions = [v["Version"] for v in client(aws, region).list_versions_by_function(
            FunctionName=f"weave-demo-{region}")["Versions"]]
        assert versions == ["$LATEST", "2", "3"]
        assert [(r.number, r.state, r.pruned) for r in mgr.releases("demo", "aws", region=region)] == [
            (3, "live", False), (2, "previous", False), (1, "retired", True)]


def test_cli_releases_rollback_and_promote_on_a_group(aws):
    weave_file = aws.home.parent / "hello.weave.yaml"
    weave_file.write_text(HELLO)
    for greeting in ("Greet warmly.", "Greet briskly."):
        weave_file.write_text(HELLO.replace("Greet the user warmly.", greeting))
        code, _, err = run_cli("deploy", "--name", "demo", "--provider", "aws", "--config", str(weave_file), "--region", REGIONS)
        assert code == 0, err
    code, out, err = run_cli("releases", "demo", "--output", "json")
    assert code == 0, err
    assert [(r["region"], r["number"], r["state"]) for r in json.loads(out)] == [
        (EAST, 2, "live"), (EAST, 1, "previous"), (WEST, 2, "live"), (WEST, 1, "previous")]
    code, out, _ = run_cli("releases", "demo", "--region", EAST)
    assert code == 0 and EAST in out and WEST not in out

    code, out, err = run_cli("rollback", "demo", "--region", EAST)
    assert code == 0, err
    assert alias(aws, EAST)["FunctionVersion"] == "1" and alias(aws, WEST)["FunctionVersion"] == "2"

    # every region, with eu-west-1's alias failing: us-east-1 is done (to 2), eu-west-1 reported, exit 1
    aws.proxy.add(Rule("PUT", rf"/functions/weave-demo-{WEST}/aliases/live", status=500, count=50))
    code, out, err = run_cli("rollback", "demo", "--to", "2")
    assert code == 1
    text = out + err
    assert "1 of 2 regions" in text and f"{WEST}: failed" in text and f"[{EAST}]" in out
    assert alias(aws, EAST)["FunctionVersion"] == "2" and alias(aws, WEST)["FunctionVersion"] == "2"
    aws.proxy.clear()

    weave_file.write_text(HELLO.replace("Greet the user warmly.", "Greet slowly."))
    code, _, err = run_cli("deploy", "--name", "demo", "--provider", "aws", "--config", str(weave_file), "--canary", "10")
    assert code == 0, err
    assert weights(aws, EAST) == weights(aws, WEST) == {"3": pytest.approx(0.1)}
    code, out, _ = run_cli("deployments", "--provider", "aws")
    assert out.count("v2 90% / v3 10%") == 2
    code, out, err = run_cli("promote", "demo", "--region", WEST)
    assert code == 0, err
    assert alias(aws, WEST)["FunctionVersion"] == "3" and weights(aws, EAST) == {"3": pytest.approx(0.1)}
    code, out, err = run_cli("promote", "demo")  # eu-west-1 has no canary left: it fails, us-east-1 is promoted
    assert code == 1 and "no canary to promote" in out + err
    assert alias(aws, EAST)["FunctionVersion"] == "3" and weights(aws, EAST) == {}


def test_magics_releases_rollback_and_promote_take_a_region(aws, tmp_path, monkeypatch):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.frontends.magics import WeaveMagics, unload_ipython_extension

    monkeypatch.chdir(tmp_path)
    mgr = aws.manager()
    deploy(mgr, "Greet warmly.")
    deploy(mgr, "Greet briskly.")
    shell = InteractiveShell.instance()
    magics = WeaveMagics(shell, manager=mgr)
    magics.progress = "text"
    shell.register_magics(magics)
    try:
        frame = shell.run_line_magic("weave_releases", f"demo --region {WEST}")
        assert list(zip(frame["region"], frame["number"])) == [(WEST, 2), (WEST, 1)]
        assert len(shell.run_line_magic("weave_releases", "demo")) == 4
        shell.run_line_magic("weave_rollback", f"demo --region {WEST}")
        assert alias(aws, WEST)["FunctionVersion"] == "1" and alias(aws, EAST)["FunctionVersion"] == "2"
        deploy(mgr, "Greet slowly.", region=EAST, options={"canary": 20})
        assert weights(aws, EAST) == {"3": pytest.approx(0.2)} and weights(aws, WEST) == {}
        shell.run_line_magic("weave_promote", f"demo --region {EAST}")
        assert alias(aws, EAST)["FunctionVersion"] == "3" and weights(aws, EAST) == {}
    finally:
        unload_ipython_extension(shell)
