"""Listings and the one status rule: the inventory's rows merged with what providers report live.

:func:`effective_status` is the only place that decides what a deployment's
status and drift are; ``DeploymentManager.list`` (through :func:`merge_live`)
and ``DeploymentManager.status`` both use it, so ``weave deployments``,
``weave status``, ``%weave_deployments`` and the widgets board agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .config import DeploymentInfo, DeploymentStatus

STATUSES = tuple(s.value for s in DeploymentStatus if s != DeploymentStatus.DESTROYED)
UNFINISHED = (DeploymentStatus.DEPLOYING, DeploymentStatus.DESTROYING)


@dataclass
class Listing:
    """The result of :meth:`DeploymentManager.list`: deployments plus notes on skipped providers."""

    deployments: list[DeploymentInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def only(self, status: str | None) -> list[DeploymentInfo]:
        """The deployments whose status is ``status`` (any case); all of them for ``None`` or ``""``.

        Raises:
            ConfigError: ``status`` is not a status name.
        """
        wanted = check_status(status)
        return [d for d in self.deployments if not wanted or d.status.value == wanted]


def check_status(status: object) -> str | None:
    """``status`` as a status name to filter on (lower case), ``None`` for no filter.

    Raises:
        ConfigError: ``status`` is not a status name (with the nearest one, if any).
    """
    if status is None or status == "":
        return None
    if isinstance(status, DeploymentStatus):
        return status.value
    wanted = status.strip().lower() if isinstance(status, str) else None
    if wanted not in STATUSES:
        from .errors import ConfigError
        from .options import did_you_mean

        near = did_you_mean(wanted, STATUSES) if wanted else ""
        raise ConfigError(f"unknown status {status!r:.40}{near}", f"choose one of: {', '.join(STATUSES)}")
    return wanted


def effective_status(
    record: DeploymentInfo | None,
    live: DeploymentInfo | None,
    *,
    locked: bool = False,
    live_known: bool = True,
) -> DeploymentInfo:
    """What to show for one deployment, from its inventory row and the provider's live view.

    The rule, in one place:

    - recorded but missing live: ``failed``, drift ``missing``;
    - live but not recorded: the live view, drift ``unrecorded``;
    - recorded as failed, deploying or destroying: never shown as ``active``
      (a live failure still shows as ``failed``);
    - recorded as deploying/destroying while nobody holds its lock: the
      process doing it is gone, drift ``interrupted`` (unless ``missing``);
      while a process holds it, the operation is running: its status stands
      and nothing is called missing (a deploy has not made it yet, an
      undeploy has already removed it).

    Args:
        record: the inventory row, or ``None``.
        live: the provider's view, or ``None`` when the provider does not have it.
            A view whose ``drift`` is ``missing`` (a provider's ``status`` saying it
            is gone) counts as missing; its health word is kept.
        locked: some process holds the deployment's lock (an operation is running).
        live_known: ``False`` when the provider was not asked (inventory only, or it
            could not be reached): only the record speaks.

    Returns:
        A new DeploymentInfo (the inputs are not changed).

    Raises:
        ValueError: both ``record`` and ``live`` are ``None``.
    """
    if record is None:
        if live is None:
            raise ValueError("effective_status needs a record or a live view")
        return live.model_copy(update={"drift": "unrecorded"})
    update: dict = {}
    running = record.status in UNFINISHED and locked
    missing = live_known and (live is None or live.drift == "missing") and not running
    if missing:
        update = {"status": DeploymentStatus.FAILED, "drift": "missing",
                  "health": (live.health if live is not None else None) or "gone"}
    elif live is not None and live.drift != "missing" and live_known:
        status = live.status
        if record.status != DeploymentStatus.ACTIVE and live.status != DeploymentStatus.FAILED:
            status = record.status
        update = {
            "status": status,
            "drift": None,
            "health": live.health,
            "endpoint": live.endpoint or record.endpoint,
            "region": live.region or record.region,
            "version": live.version or record.version,
            "message": live.message or record.message,
            "details": {**record.details, **live.details},
        }
    if record.status in UNFINISHED and not locked:
        verb = "deploy" if record.status == DeploymentStatus.DEPLOYING else "undeploy"
        update["drift"] = update.get("drift") or "interrupted"
        update["message"] = f"the {verb} was interrupted: deploy again to finish, or undeploy to remove what was made"
    return record.model_copy(update=update)


def merge_live(
    records: list[DeploymentInfo],
    live: list[DeploymentInfo] | None,
    is_locked: Callable[[str], bool] | None = None,
) -> list[DeploymentInfo]:
    """Every recorded and live deployment of one provider, each through :func:`effective_status`.

    Args:
        records: the provider's inventory rows.
        live: what the provider reports (``None``: it was not asked).
        is_locked: tells whether some process holds a deployment's lock, by name
            (asked only for rows left deploying/destroying; default: nobody does).
    """
    live_by_name = {d.name: d for d in live or []}
    out = [
        effective_status(
            rec, live_by_name.pop(rec.name, None), live_known=live is not None,
            locked=rec.status in UNFINISHED and is_locked is not None and is_locked(rec.name),
        )
        for rec in records
    ]
    out.extend(effective_status(None, extra) for extra in live_by_name.values())
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
