"""Ownership marks and the check that stops a command before it touches what this inventory did not make."""

from __future__ import annotations

import stat

import pytest

from weave_nb.core import ownership
from weave_nb.core.errors import ConfigError, ForeignResource
from weave_nb.core.inventory import Inventory


def test_owner_id_is_made_once_per_home_and_kept_private(tmp_path):
    first = Inventory(tmp_path / "a").owner_id
    assert len(first) == 16 and all(c in "0123456789abcdef" for c in first)
    assert Inventory(tmp_path / "a").owner_id == first
    assert Inventory(tmp_path / "b").owner_id != first
    assert stat.S_IMODE((tmp_path / "a" / ownership.OWNER_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize("style, keys", [
    ("tag", ("weave-nb:managed", "weave-nb:name", "weave-nb:owner")),
    ("label", ("weave-nb-managed", "weave-nb-name", "weave-nb-owner")),
    ("docker", ("weave-nb.managed", "weave-nb.name", "weave-nb.owner")),
])
def test_marks_in_each_providers_spelling(style, keys):
    marks = ownership.marks(style, "Team_A", "0123456789abcdef")
    assert list(marks) == list(keys)
    assert marks[keys[0]] == "true" and marks[keys[2]] == "0123456789abcdef"
    assert marks[keys[1]] == ("team_a" if style == "label" else "Team_A")


def test_our_marks_pass_and_need_no_adoption():
    marks = ownership.marks("tag", "x", "me")
    assert ownership.check("tag", "function weave-x", marks, "me", adopt=False, name="x") is False
    assert ownership.judge("tag", marks, "me").ours


@pytest.mark.parametrize("found, shown", [
    (None, "no weave-nb managed mark"),
    ({"team": "data"}, "no weave-nb managed mark"),
    ({"weave-nb:managed": "true", "weave-nb:name": "x"}, "managed mark but no owner id"),
    ({"weave-nb:managed": "true", "weave-nb:name": "x", "weave-nb:owner": "someone-else"}, "owner mark 'someone-else'"),
])
def test_anything_else_stops_with_the_resource_and_its_mark_named(found, shown):
    with pytest.raises(ForeignResource) as caught:
        ownership.check("tag", "Lambda function weave-x", found, "me", adopt=False, name="x")
    assert isinstance(caught.value, ConfigError)  # a refusal before any change: exit 2 in the CLI
    assert "Lambda function weave-x" in caught.value.message and shown in caught.value.message
    assert "--adopt" in caught.value.suggestion and "--all-owners" in caught.value.suggestion


def test_adopt_is_asked_for_never_implied():
    assert ownership.check("label", "function x", {"other": "1"}, "me", adopt=True, name="x") is True
