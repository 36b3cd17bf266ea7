"""Releases on gcp (rollback, canary, promote, prune) against the Cloud Functions fake's Cloud Run v2 API.

Provider level: each plan is run by the one Executor; the service's traffic is
read back over HTTP with the official ``google-cloud-run`` client
(``run_v2.ServicesClient``, REST transport), and calls to the function URL
show which revision answers (each release serves a different weave).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import requests

pytest.importorskip("google.cloud.run_v2")

from google.api_core import exceptions as gexc  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from google.auth.credentials import AnonymousCredentials  # noqa: E402
from google.cloud import functions_v2, run_v2  # noqa: E402

from weave_nb.core.errors import ConfigError, DeploymentFailed, NotFound  # noqa: E402
from weave_nb.core.executor import Executor  # noqa: E402
from weave_nb.core.plan import Plan  # noqa: E402
from weave_nb.sandbox.emulators.gcf_fake_run import (  # noqa: E402
    CONDITION_STATES, INGRESS, LAUNCH_STAGES, SERVICE_FIELDS, TRAFFIC_TYPES,
)

from test_gcf_fake import FAST_POLL, HELLO_V2, client_for, make_zip, upload  # noqa: E402
from test_gcf_fake import deploy as raw_deploy  # noqa: E402
from test_gcp_provider import HELLO, PIPELINE, ROOT, fake, gcp_env, manager, post  # noqa: E402,F401

TRIAGE = str(ROOT / "examples" / "support_triage.weave.yaml")
PARENT = "projects/demo-proj/locations/us-central1"
FN = f"{PARENT}/functions/demo-fn"
SERVICE = f"{PARENT}/services/demo-fn"
LATEST = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST

try:  # the core's release record, once merged; until then the same attributes
    from weave_nb.core.releases import Release  # type: ignore[import-not-found]
except ImportError:
    @dataclasses.dataclass
    class Release:  # type: ignore[no-redef]
        number: int
        provider: str
        name: str
        version_id: str
        content_hash: str = ""
        settings_hash: str = ""
        state: str = "live"
        created_at: str = ""
        created_by: str = ""
        weight: float | None = None
        region: str | None = None
        details: dict = dataclasses.field(default_factory=dict)


def release(number: int, revision: str, state: str = "previous") -> Release:
    return Release(number=number, provider="gcp", name="demo-fn", version_id=revision, content_hash="",
                   settings_hash="", state=state, created_at="", created_by="tester")


def run_clients(fake) -> tuple[run_v2.ServicesClient, run_v2.RevisionsClient]:
    opts = ClientOptions(api_endpoint=fake.url)
    return (run_v2.ServicesClient(credentials=AnonymousCredentials(), transport="rest", client_options=opts),
            run_v2.RevisionsClient(credentials=AnonymousCredentials(), transport="rest", client_options=opts))


def service_split(fake) -> dict[str, int]:
    """The service's traffic as the official client reads it: revision -> percent (0% left out)."""
    svc = run_clients(fake)[0].get_service(name=SERVICE)
    assert [(t.revision, t.percent) for t in svc.traffic_statuses if t.type_ != LATEST] == [
        (t.revision, t.percent) for t in svc.traffic if t.type_ != LATEST]  # reconciled: status matches spec
    split: dict[str, int] = {}
    for status in svc.traffic_statuses:
        if status.percent:
            split[status.revision] = split.get(status.revision, 0) + status.percent
    return split


def run_deploy(manager, weave: str, prune=(), **options):
    """Plan and run a deploy with the one Executor, as the manager does (with ``prune``'s steps appended, as the
    core appends them); returns (plan, run)."""
    canary = options.pop("canary", None)  # given to the provider directly: the core's own canary checks are not under test
    config, provider, artifact = manager.package({"name": "demo-fn", "provider": "gcp", "weave_file": weave,
                                                  "options": options})
    if canary is not None:
        config = config.model_copy(update={"options": {**config.options, "canary": canary}})
    ctx = manager.context("gcp", "demo-fn")
    ctx.settings_hash = manager.settings_hash(config)
    plan = provider.plan(config, artifact, ctx)
    if prune:
        plan.steps.extend(provider.plan_prune(ctx, list(prune)))
    run = Executor(provider).run(plan, ctx, config, artifact)
    info = provider.finish(run)
    ctx.save(status=info.status, endpoint=info.endpoint, region=info.region, details=info.details)
    return plan, run


def run_plan(manager, plan: Plan):
    provider = manager.provider("gcp")
    return Executor(provider).run(plan, manager.context("gcp", "demo-fn"))


def answers(fake, n: int) -> dict[str, int]:
    """Call the function URL ``n`` times; how many answers each weave gave."""
    url = fake.functions()[FN]["url"]
    out: dict[str, int] = {}
    for _ in range(n):
        weave = post(url, {"input": "ticket: my order is late"}, fake)["weave"]
        out[weave] = out.get(weave, 0) + 1
    return out


# ---------------------------------------------------------------- the release cycle on the service's traffic
def test_rollback_canary_promote_and_prune_move_the_cloud_run_traffic(manager, gcp_env):
    fake = gcp_env
    provider = manager.provider("gcp")
    assert provider.supports_canary is True

    _, run1 = run_deploy(manager, HELLO)
    r1 = run1.outputs["release_version"]
    assert r1 == fake.functions()[FN]["serviceConfig"]["revision"] and service_split(fake) == {r1: 100}
    _, run2 = run_deploy(manager, PIPELINE)
    r2 = run2.outputs["release_version"]
    assert r2 != r1 and service_split(fake) == {r2: 100}
    assert answers(fake, 3) == {"research_pipeline": 3}
    ctx = manager.context("gcp", "demo-fn")
    assert provider.traffic(ctx) == {r2: 1.0}

    # rollback: 100% of the service's traffic to release 1's revision
    releases = [release(1, r1), release(2, r2, "live")]
    plan = provider.plan_rollback(ctx, releases[0], releases)
    [step] = plan.changing()
    assert (step.call, step.undo, step.params["targets"]) == (
        "set_traffic", "set_traffic_back", [{"type": "REVISION", "revision": r1, "percent": 100}])
    run = run_plan(manager, plan)
    assert run.results["traffic"]["previous_traffic"] == [{"type": "LATEST", "revision": None, "percent": 100}]
    assert run.outputs["release_version"] == run.outputs["version"] == r1  # the version that serves now
    assert service_split(fake) == {r1: 100} and provider.traffic(ctx) == {r1: 1.0}
    assert answers(fake, 4) == {"hello": 4}  # every call lands on the revision holding 100%
    fn = client_for(fake).get_function(name=FN)
    assert fn.service_config.all_traffic_on_latest_revision is False  # the latest (release 2) serves nothing
    status = provider.status(manager.context("gcp", "demo-fn"))
    assert (status.version, status.details["serving"]) == (r1, f"{r1} 100%")  # what serves, not the latest
    assert not provider.plan_rollback(ctx, releases[0], releases).has_changes  # already there

    # canary 10: a new revision takes 10%, release 1 keeps 90%
    plan, run3 = run_deploy(manager, TRIAGE, canary=10)
    assert [s.key for s in plan.steps][:5] == ["upload", "pin", "function", "wait", "canary"]
    assert plan.step("function").params["all_traffic"] is False
    assert "serviceConfig.allTrafficOnLatestRevision" in plan.step("function").params["update_mask"]
    assert plan.step("pin").action == "no-change"  # the rollback already pinned release 1 by name
    r3 = run3.outputs["release_version"]
    assert r3 not in (r1, r2) and service_split(fake) == {r1: 90, r3: 10}
    assert provider.traffic(ctx) == {r1: 0.9, r3: 0.1}
    assert answers(fake, 100) == {"hello": 90, "support_triage": 10}  # the split, observable over HTTP

    # promote: 100% on the canary's revision
    releases = [release(1, r1, "live"), release(2, r2), release(3, r3, "canary")]
    assert run_plan(manager, provider.plan_promote(ctx, releases[2], releases)).outputs["release_version"] == r3
    assert service_split(fake) == {r3: 100}
    assert answers(fake, 3) == {"support_triage": 3}
    assert client_for(fake).get_function(name=FN).service_config.all_traffic_on_latest_revision is True
    processes = fake.revision_processes()
    assert set(processes) == {f"{SERVICE}/revisions/{r3}"}  # revisions without traffic scaled to zero

    # prune: delete the revisions of dropped releases, never the one serving
    steps = provider.plan_prune(ctx, [release(1, r1), release(2, r2), release(3, r3, "live")])
    assert [(s.key, s.action) for s in steps] == [(f"prune-{r1}", "delete"), (f"prune-{r2}", "delete"),
                                                 (f"prune-{r3}", "no-change")]
    run_plan(manager, Plan(provider="gcp", name="demo-fn", steps=steps))
    listed = [r.name.rsplit("/", 1)[-1] for r in run_clients(fake)[1].list_revisions(parent=SERVICE)]
    assert listed == [r3]
    with pytest.raises(NotFound, match=r1):
        provider.plan_rollback(ctx, release(1, r1), [])


def test_rollback_during_a_canary_sends_the_canary_nothing(manager, gcp_env):
    fake = gcp_env
    provider = manager.provider("gcp")
    r1 = run_deploy(manager, HELLO)[1].outputs["release_version"]
    plan, run = run_deploy(manager, PIPELINE, canary=25)
    assert plan.step("pin").action == "update"  # LATEST 100% would follow the new revision: pin release 1 first
    assert "serviceConfig.allTrafficOnLatestRevision" in plan.step("function").params["update_mask"]
    r2 = run.outputs["release_version"]
    assert service_split(fake) == {r1: 75, r2: 25}
    releases = [release(1, r1, "live"), release(2, r2, "canary")]
    ctx = manager.context("gcp", "demo-fn")
    plan = provider.plan_rollback(ctx, releases[0], releases)
    assert "gets 0%" in plan.step("traffic").detail
    run_plan(manager, plan)
    assert service_split(fake) == {r1: 100}
    assert answers(fake, 4) == {"hello": 4}


def test_a_failed_canary_deploy_puts_the_traffic_back(manager, gcp_env):
    fake = gcp_env
    r1 = run_deploy(manager, HELLO)[1].outputs["release_version"]
    fake.fail_next_build("Build failed: syntax error in main.py")
    with pytest.raises(DeploymentFailed):
        run_deploy(manager, PIPELINE, canary=10)
    svc = run_clients(fake)[0].get_service(name=SERVICE)
    # the pin was undone: 100% LATEST again (on the revision the function's restore made from release 1's source)
    assert [(t.type_, t.percent) for t in svc.traffic] == [(LATEST, 100)]
    assert answers(fake, 3) == {"hello": 3}
    assert r1 in [r.name.rsplit("/", 1)[-1] for r in run_clients(fake)[1].list_revisions(parent=SERVICE)]


def test_a_plain_deploy_after_a_rollback_sends_all_traffic_to_the_new_revision(manager, gcp_env):
    fake = gcp_env
    provider = manager.provider("gcp")
    r1 = run_deploy(manager, HELLO)[1].outputs["release_version"]
    r2 = run_deploy(manager, PIPELINE)[1].outputs["release_version"]
    ctx = manager.context("gcp", "demo-fn")
    run_plan(manager, provider.plan_rollback(ctx, release(1, r1), [release(1, r1), release(2, r2, "live")]))
    config, _, artifact = manager.package({"name": "demo-fn", "provider": "gcp", "weave_file": PIPELINE})
    ctx.settings_hash = manager.settings_hash(config)
    same = provider.plan(config, artifact, ctx)  # release 2's code again: nothing new, the rollback stays
    assert not same.has_changes and any("rollback or canary" in note for note in same.notes)
    plan, run = run_deploy(manager, TRIAGE)
    assert "serviceConfig.allTrafficOnLatestRevision" in plan.step("function").params["update_mask"]
    assert service_split(fake) == {run.outputs["release_version"]: 100}
    assert answers(fake, 2) == {"support_triage": 2}


def test_prune_deletes_old_revisions_after_the_new_one_is_up_and_never_undoes_the_deploy(manager, gcp_env):
    fake = gcp_env
    provider = manager.provider("gcp")
    r1 = run_deploy(manager, HELLO)[1].outputs["release_version"]
    r2 = run_deploy(manager, PIPELINE)[1].outputs["release_version"]
    ctx = manager.context("gcp", "demo-fn")
    run_plan(manager, provider.plan_rollback(ctx, release(1, r1), [release(1, r1), release(2, r2, "live")]))
    # release 2's revision serves nothing but is still the latest: Cloud Run refuses, the revision is kept
    events = []
    steps = provider.plan_prune(manager.context("gcp", "demo-fn"), [release(2, r2)])
    assert [(s.action, s.call) for s in steps] == [("delete", "delete_revision")]
    run = Executor(provider).run(Plan(provider="gcp", name="demo-fn", steps=steps), manager.context("gcp", "demo-fn", events.append))
    assert run.outputs == {"kept_revision": r2}
    assert any("kept the revision" in getattr(e, "text", "") for e in events)
    listed = {r.name.rsplit("/", 1)[-1] for r in run_clients(fake)[1].list_revisions(parent=SERVICE)}
    assert listed == {r1, r2}
    # in a deploy's plan the prune runs last, once the new revision is the latest: then it goes
    plan, run = run_deploy(manager, TRIAGE, prune=[release(2, r2)])
    assert plan.steps[-1].key == f"prune-{r2}" and run.outputs["deleted_revision"] == r2
    r3 = run.outputs["release_version"]
    listed = {r.name.rsplit("/", 1)[-1] for r in run_clients(fake)[1].list_revisions(parent=SERVICE)}
    assert listed == {r1, r3} and service_split(fake) == {r3: 100}


def test_canary_is_refused_before_anything_is_made(manager, gcp_env):
    fake = gcp_env
    with pytest.raises(ConfigError, match="live release"):
        run_deploy(manager, HELLO, canary=10)
    assert fake.functions() == {} and fake.counts["create"] == 0 and fake.counts["upload"] == 0
    reads = fake.counts["get"]
    for bad in (0, 100):
        with pytest.raises(ConfigError, match="canary"):
            manager.plan({"name": "demo-fn", "provider": "gcp", "weave_file": HELLO, "options": {"canary": bad}})
    assert fake.counts["get"] == reads  # the option is checked before any call


# ---------------------------------------------------------------- the fake's Cloud Run v2 contract
def test_fake_cloud_run_rejects_bad_traffic_and_serving_revision_deletes(fake):
    client = client_for(fake)
    first = raw_deploy(client, PARENT, "hello-fn").result(polling=FAST_POLL)
    source = upload(client, PARENT, make_zip(HELLO_V2))
    second = client.update_function(
        function=functions_v2.Function(name=first.name, build_config=functions_v2.BuildConfig(
            source=functions_v2.Source(storage_source=source))),
        update_mask={"paths": ["build_config.source"]}).result(polling=FAST_POLL)
    services, revisions = run_clients(fake)
    svc = services.get_service(name=first.service_config.service)
    assert svc.latest_ready_revision == f"{svc.name}/revisions/{second.service_config.revision}"
    assert svc.latest_created_revision == svc.latest_ready_revision and svc.etag and svc.generation >= 1
    by_rev = run_v2.TrafficTargetAllocationType.TRAFFIC_TARGET_ALLOCATION_TYPE_REVISION

    def patch(*targets, etag=None):
        body = run_v2.Service(name=svc.name, etag=etag or "",
                              traffic=[run_v2.TrafficTarget(type_=by_rev, revision=r, percent=p) for r, p in targets])
        return services.update_service(service=body, update_mask={"paths": ["traffic"]})

    with pytest.raises(gexc.BadRequest, match="add up to 100"):
        patch((first.service_config.revision, 60), (second.service_config.revision, 30))
    with pytest.raises(gexc.BadRequest, match="does not exist"):
        patch(("hello-fn-09999-zzz", 100))
    with pytest.raises(gexc.Conflict, match="etag"):
        patch((first.service_config.revision, 100), etag='"stale"')
    op = patch((first.service_config.revision, 50), (second.service_config.revision, 50))
    assert op.metadata.name == svc.name  # the operation's metadata is the Service, as on Cloud Run
    done = op.result(polling=FAST_POLL)
    assert [(t.revision, t.percent) for t in done.traffic_statuses] == [
        (first.service_config.revision, 50), (second.service_config.revision, 50)]
    assert {requests.get(second.url, timeout=10, headers=_bearer(fake, second.url)).text for _ in range(4)} == {
        "v1 -", "v2 -"}
    serving = f"{svc.name}/revisions/{first.service_config.revision}"
    with pytest.raises(gexc.BadRequest, match="traffic"):
        revisions.delete_revision(name=serving)
    patch((second.service_config.revision, 100)).result(polling=FAST_POLL)
    deleted = revisions.delete_revision(name=serving).result(polling=FAST_POLL)
    assert deleted.name == serving
    with pytest.raises(gexc.NotFound):
        revisions.get_revision(name=serving)
    assert fake.counts["run.services.patch"] == 5 and fake.counts["run.revisions.delete"] == 2


def _bearer(fake, url: str) -> dict:
    return {"Authorization": f"Bearer {fake.identity_token(url)}"}


def test_fake_run_tables_match_the_client_library():
    from google.api import launch_stage_pb2

    def names(enum):
        return [e.name for e in sorted(enum, key=lambda e: e.value)]

    assert TRAFFIC_TYPES == names(run_v2.TrafficTargetAllocationType)
    assert CONDITION_STATES == names(run_v2.Condition.State)
    assert INGRESS == names(run_v2.IngressTraffic)
    assert LAUNCH_STAGES == [name for name, _ in sorted(launch_stage_pb2.LaunchStage.items(), key=lambda kv: kv[1])]
    fields = run_v2.Service.pb().DESCRIPTOR.fields
    assert SERVICE_FIELDS == {f.json_name for f in fields}


# ---------------------------------------------------------------- through the core's commands (once merged with them)
def test_weave_rollback_canary_promote_through_the_manager(manager, gcp_env):
    pytest.importorskip("weave_nb.core.rollout", reason="the core's release commands are not on this branch")
    fake = gcp_env

    def deploy(weave, **options):
        return manager.deploy({"name": "demo-fn", "provider": "gcp", "weave_file": weave, "options": options})

    deploy(HELLO)
    deploy(PIPELINE)
    r1, r2 = [r.version_id for r in sorted(manager.releases("demo-fn", "gcp"), key=lambda r: r.number)]
    assert service_split(fake) == {r2: 100}
    info = manager.rollback("demo-fn", "gcp")
    assert info.version == r1 and service_split(fake) == {r1: 100}
    assert answers(fake, 3) == {"hello": 3}
    deploy(TRIAGE, canary=10)
    r3 = max(manager.releases("demo-fn", "gcp"), key=lambda r: r.number).version_id
    assert service_split(fake) == {r1: 90, r3: 10}
    assert answers(fake, 100) == {"hello": 90, "support_triage": 10}
    manager.promote("demo-fn", "gcp")
    assert service_split(fake) == {r3: 100}
    assert {r.version_id: r.state for r in manager.releases("demo-fn", "gcp")}[r3] == "live"


def test_rollback_refuses_a_function_another_inventory_owns(manager, gcp_env):
    """Moving the traffic is a change like a deploy: a function whose owner label is not ours is refused, untouched."""
    from weave_nb.core.errors import ForeignResource

    fake = gcp_env
    provider = manager.provider("gcp")
    r1 = run_deploy(manager, HELLO)[1].outputs["release_version"]
    r2 = run_deploy(manager, PIPELINE)[1].outputs["release_version"]
    client = client_for(fake)
    fn = client.get_function(name=FN)
    labels = dict(fn.labels, **{"weave-nb-owner": "someone-else"})
    client.update_function(function=functions_v2.Function(name=FN, labels=labels), update_mask={"paths": ["labels"]}).result()
    before = service_split(fake)  # (the fake, like the service, rolls out a revision for the label change)
    assert r1 not in before
    ctx = manager.context("gcp", "demo-fn")
    with pytest.raises(ForeignResource):
        provider.plan_rollback(ctx, release(1, r1), [release(1, r1), release(2, r2, "live")])
    assert service_split(fake) == before
    assert provider.traffic(ctx) == {rev: pct / 100 for rev, pct in before.items()}  # reading the split needs no ownership
