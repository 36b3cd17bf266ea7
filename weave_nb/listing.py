"""Listings: the inventory's rows merged with what providers report live."""

from __future__ import annotations

from dataclasses import dataclass, field

from .config import DeploymentInfo, DeploymentStatus


@dataclass
class Listing:
    """The result of :meth:`DeploymentManager.list`: deployments plus notes on skipped providers."""

    deployments: list[DeploymentInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def merge_live(records: list[DeploymentInfo], live: list[DeploymentInfo]) -> list[DeploymentInfo]:
    """Merge the inventory's rows with a provider's live view and mark drift.

    A recorded deployment the provider no longer has gets ``drift="missing"``;
    a live one with no record gets ``drift="unrecorded"``.
    """
    live_by_name = {d.name: d for d in live}
    out = []
    for rec in records:
        now = live_by_name.pop(rec.name, None)
        if now is None:
            if rec.status == DeploymentStatus.ACTIVE:  # a deploying one may not exist yet: never "missing"
                rec = rec.model_copy(update={"drift": "missing", "health": "gone"})
            out.append(rec)
            continue
        update = {"status": now.status, "health": now.health, "endpoint": now.endpoint or rec.endpoint}
        if now.version:
            update["version"] = now.version
        out.append(rec.model_copy(update=update))
    for extra in live_by_name.values():
        out.append(extra.model_copy(update={"drift": "unrecorded"}))
    return out


def split_owners(live: list[DeploymentInfo], owner: str) -> tuple[list[DeploymentInfo], list[DeploymentInfo]]:
    """Split a provider's live view into this inventory's deployments and other inventories'.

    Providers put the owner mark they found on a resource in
    ``details["owner"]``; a live deployment whose mark names another
    inventory is returned in the second list, marked ``drift="other owner"``
    so no front end shows it as ours.
    """
    ours, theirs = [], []
    for info in live:
        found = info.details.get("owner")
        if found in (None, owner):
            ours.append(info)
        else:
            theirs.append(info.model_copy(update={"drift": "other owner"}))
    return ours, theirs
