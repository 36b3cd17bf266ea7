"""The release rules of the core: states after each operation, what is pruned, the store, and providers without releases."""

from __future__ import annotations

import pytest

from weave_nb.core.errors import WeaveError
from weave_nb.core.inventory import Inventory
from weave_nb.core.manager import DeploymentManager
from weave_nb.core.releases import (Release, ReleaseStore, after_deploy, after_promote, after_rollback, keep_count, to_prune,
                                    traffic_text)

from frontend_fakes import HELLO, make_provider


def rel(number: int, state: str, weight: float | None = None, content: str | None = None, pruned: bool = False) -> Release:
    return Release(number=number, provider="p", name="n", version_id=str(number), content_hash=content or f"c{number}",
                   settings_hash="s", state=state, created_at="2026-01-01T00:00:00+00:00", created_by="me", weight=weight,
                   details={"pruned": True} if pruned else {})


def states(rels: list[Release]) -> list[tuple[int, str, float | None]]:
    return [(r.number, r.state, r.weight) for r in rels]


def test_states_after_deploy_canary_promote_and_rollback():
    one = after_deploy([], rel(1, "live"))
    two = after_deploy(one, rel(2, "live"))
    three = after_deploy(two, rel(3, "live"))
    assert states(three) == [(1, "retired", None), (2, "previous", None), (3, "live", None)]
    canary = after_deploy(three, rel(4, "live"), canary=10)
    assert states(canary) == [(1, "retired", None), (2, "previous", None), (3, "live", 0.9), (4, "canary", 0.1)]
    assert traffic_text(canary) == "v3 90% / v4 10%"
    assert traffic_text(canary, {"3": 0.75, "4": 0.25}) == "v3 75% / v4 25%"  # the provider's live split wins
    promoted = after_promote(canary, canary[3])
    assert states(promoted) == [(1, "retired", None), (2, "retired", None), (3, "previous", None), (4, "live", None)]
    ended = after_rollback(canary, canary[2])  # rollback during a canary: the canary gets nothing
    assert states(ended) == [(1, "retired", None), (2, "previous", None), (3, "live", None), (4, "retired", None)]
    back = after_rollback(three, three[1])
    assert states(back) == [(1, "retired", None), (2, "live", None), (3, "previous", None)]
    older = after_rollback(three, three[0])  # --to an older one
    assert states(older) == [(1, "live", None), (2, "retired", None), (3, "previous", None)]


def test_prune_keeps_the_newest_and_never_live_canary_or_previous():
    rels = [rel(1, "retired"), rel(2, "retired"), rel(3, "previous"), rel(4, "live")]
    assert [r.number for r in to_prune(rels, 2, adding=True)] == [1, 2, 3]  # 4 becomes previous, the new one live
    assert [r.number for r in to_prune(rels, 2, adding=True, canary=True)] == [1, 2]  # a canary keeps 3 previous
    assert [r.number for r in to_prune(rels, 3, adding=False)] == [1]
    assert [r.number for r in to_prune(rels, 2, adding=True, content_hash="c1")] == [2, 3]  # redeploying release 1's weave
    assert to_prune([rel(1, "retired", pruned=True), rel(2, "live")], 1, adding=True) == []  # pruned once only
    assert keep_count({"WEAVE_KEEP_RELEASES": "3"}) == 3 and keep_count({"WEAVE_KEEP_RELEASES": "0"}) == 5
    assert keep_count({}) == 5


def test_store_round_trip_and_region_column(tmp_path):
    store = ReleaseStore(Inventory(tmp_path))
    assert store.next_number("p", "n") == 1
    store.save([rel(1, "previous"), rel(2, "live", weight=0.9)])
    store.save([Release(**{**rel(1, "live").__dict__, "region": "eu-west-1"})])
    found = store.list("p", "n")
    assert states(found) == [(1, "live", None), (2, "live", 0.9)] and found[0].region == "eu-west-1"
    assert [r.number for r in store.list("p", "n", region="eu-west-1")] == [1]
    assert store.next_number("p", "n") == 3
    store.delete("p", "n")
    assert store.list("p", "n") == []


def test_a_provider_without_releases_records_them_but_refuses_rollback(tmp_path):
    mgr = DeploymentManager(home=tmp_path, providers={"slow": make_provider()})
    mgr.deploy({"name": "demo", "provider": "slow", "weave_text": HELLO})
    mgr.deploy({"name": "demo", "provider": "slow", "weave_text": HELLO.replace("say hello", "say hi")})
    assert [(r.number, r.state) for r in mgr.releases("demo")] == [(2, "live"), (1, "previous")]
    with pytest.raises(WeaveError, match="the slow provider has no releases/canary"):
        mgr.rollback("demo")
    with pytest.raises(WeaveError, match="slow provider has no canary"):
        mgr.deploy({"name": "demo", "provider": "slow", "weave_text": HELLO, "options": {"canary": 5}})
