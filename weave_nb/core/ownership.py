"""Ownership marks: which inventory made a cloud resource.

Every inventory has an id, made once and kept in ``$WEAVE_HOME/owner-id``.
Every resource weave-nb makes carries three marks next to each other: the
managed flag, the deployment name and that owner id (as AWS tags, GCP
labels or Docker labels; :func:`marks` gives them in each provider's
spelling). Deploy, update and undeploy act only on resources that carry the
managed mark and this inventory's id; anything else stops the command
before any change (:func:`check`), unless the user asked to adopt it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

from .errors import ForeignResource
from .private_files import write_once

OWNER_FILE = "owner-id"

Style = Literal["tag", "label", "docker"]
_KEYS = {
    # AWS tags allow ':'; GCP labels want lowercase letters, digits, '-' and '_'; Docker labels use dotted names
    "tag": ("weave-nb:managed", "weave-nb:name", "weave-nb:owner"),
    "label": ("weave-nb-managed", "weave-nb-name", "weave-nb-owner"),
    "docker": ("weave-nb.managed", "weave-nb.name", "weave-nb.owner"),
}


def owner_id(home: str | os.PathLike[str]) -> str:
    """This inventory's id: 16 lowercase hex digits, created on first use (and then never changed)."""
    return write_once(Path(home) / OWNER_FILE, lambda: secrets.token_hex(8).encode()).decode().strip()


def keys(style: Style) -> tuple[str, str, str]:
    """The (managed, name, owner) mark keys in a provider's spelling."""
    return _KEYS[style]


def label_value(text: str) -> str:
    """``text`` as a GCP label value (lowercase, 63 characters, ``[a-z0-9_-]``)."""
    out = "".join(c if c.isalnum() or c in "-_" else "-" for c in text.lower())
    return out[:63]


def marks(style: Style, name: str, owner: str) -> dict[str, str]:
    """The marks to put on every resource of deployment ``name`` made by inventory ``owner``."""
    managed, kname, kowner = _KEYS[style]
    value = label_value(name) if style == "label" else name
    return {managed: "true", kname: value, kowner: owner}


@dataclass(frozen=True)
class Verdict:
    """Whose a resource is: ``ours``, ``foreign`` (no mark), or another inventory's (``other``)."""

    owner: str | None
    kind: Literal["ours", "foreign", "other"]

    @property
    def ours(self) -> bool:
        """True when this inventory made the resource."""
        return self.kind == "ours"


def judge(style: Style, found: Mapping[str, str] | None, owner: str) -> Verdict:
    """Whose a resource is, from the marks ``found`` on it.

    A resource with the managed mark but no owner mark was made by a
    weave-nb release before owner ids; it counts as ours only through
    adoption, like any other resource without our id.
    """
    managed, _, kowner = _KEYS[style]
    found = found or {}
    if str(found.get(managed, "")).lower() != "true":
        return Verdict(None, "foreign")
    theirs = found.get(kowner)
    if theirs == owner:
        return Verdict(theirs, "ours")
    return Verdict(theirs, "other")


def check(style: Style, what: str, found: Mapping[str, str] | None, owner: str, adopt: bool, name: str) -> bool:
    """Stop unless the resource ``what`` is ours, or the user asked to adopt it.

    Args:
        style: the mark spelling of the provider.
        what: the resource, for the message ("Lambda function weave-demo").
        found: the marks on the resource (tags, labels).
        owner: this inventory's id.
        adopt: the user passed ``--adopt``.
        name: the deployment name (for the hint).

    Returns:
        True when the resource must be adopted (the plan shows an ``adopt`` step),
        False when it is ours already.

    Raises:
        ForeignResource: not ours and not to be adopted; nothing was changed.
    """
    verdict = judge(style, found, owner)
    if verdict.ours:
        return False
    if adopt:
        return True
    mark = f"owner mark {verdict.owner!r}" if verdict.kind == "other" and verdict.owner else (
        "the weave-nb managed mark but no owner id" if verdict.kind == "other" else "no weave-nb managed mark")
    whose = "another weave-nb inventory" if verdict.kind == "other" and verdict.owner else "something else"
    raise ForeignResource(
        f"{what} exists but was made by {whose} ({mark}); this inventory's id is {owner!r}, so it is left untouched",
        f"pick another --name, or pass --adopt to take {what} over on purpose "
        f"(`weave deployments --all-owners` lists what other inventories made)",
    )
