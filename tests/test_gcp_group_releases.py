"""Releases of a deployment group on gcp: each location's Cloud Run traffic, against the Cloud Functions fake over HTTP."""

from __future__ import annotations

import pytest

pytest.importorskip("google.cloud.functions_v2")
pytest.importorskip("google.cloud.run_v2")

from test_gcp_regions import HELLO, LOCATIONS, fake, manager  # noqa: E402,F401

TEXT = open(HELLO).read()
PLACES = LOCATIONS.split(",")


def deploy(mgr, greeting: str, **values):
    text = TEXT.replace("Greet the user warmly.", greeting)
    return mgr.deploy({"name": "demo", "provider": "gcp", "weave_text": text, "region": LOCATIONS, "public": True, **values})


def split(mgr, location: str) -> dict:
    """The live traffic of one location's service, read from the fake: revision -> weight."""
    return mgr.provider("gcp").traffic(mgr.context("gcp", f"demo-{location}"))


def revisions(mgr, location: str) -> dict[int, str]:
    return {r.number: r.version_id for r in mgr.releases("demo", "gcp", region=location)}


def test_group_releases_rollback_canary_and_promote_move_each_locations_traffic(manager):
    assert "Greet the user warmly." in TEXT
    deploy(manager, "Greet warmly.")
    deploy(manager, "Greet briskly.")
    rels = manager.releases("demo", "gcp")
    assert [(r.region, r.number, r.state) for r in rels] == [
        (PLACES[0], 2, "live"), (PLACES[0], 1, "previous"), (PLACES[1], 2, "live"), (PLACES[1], 1, "previous")]
    manager.rollback("demo", "gcp")
    for place in PLACES:
        assert split(manager, place) == {revisions(manager, place)[1]: 1.0}
    manager.rollback("demo", "gcp", to=2, region=PLACES[1])
    assert split(manager, PLACES[1]) == {revisions(manager, PLACES[1])[2]: 1.0}
    assert split(manager, PLACES[0]) == {revisions(manager, PLACES[0])[1]: 1.0}

    deploy(manager, "Greet slowly.", options={"canary": 10})
    for place in PLACES:
        live = next(r for r in manager.releases("demo", "gcp", region=place) if r.state == "live")
        assert split(manager, place) == {live.version_id: pytest.approx(0.9), revisions(manager, place)[3]: pytest.approx(0.1)}
    manager.promote("demo", "gcp")
    for place in PLACES:
        assert split(manager, place) == {revisions(manager, place)[3]: 1.0}
    manager.destroy("demo")
    assert manager.inventory.list() == []
