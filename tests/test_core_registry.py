"""Providers load through the ``weave_nb.providers`` entry point group.

The entry points are replaced (monkeypatch) by ones pointing at modules
written into a temporary folder, the way an installed plug-in would be found.
"""

from __future__ import annotations

import itertools
from importlib.metadata import EntryPoint

import pytest

from weave_nb.core import registry
from weave_nb.core.errors import ProviderUnavailable
from weave_nb.core.manager import DeploymentManager
from weave_nb.providers.local.provider import LocalProvider

_counter = itertools.count()

PLUGIN = '''
from weave_nb.providers.base import DeploymentProvider

class AcmeProvider(DeploymentProvider):
    name = "acme"
    def plan(self, config, artifact, ctx): ...
    def finish(self, run): ...
    def status(self, ctx): ...
    def plan_destroy(self, ctx, **options): ...
    def list_deployments(self, records): return []
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Register ``name -> module source`` pairs as entry points; returns the register function."""
    monkeypatch.syspath_prepend(str(tmp_path))
    points: list[EntryPoint] = []
    monkeypatch.setattr(registry, "entry_points", lambda group: [p for p in points if p.group == group])

    def register(name: str, source: str, attr: str = "AcmeProvider") -> None:
        module = f"weave_test_plugin_{next(_counter)}"
        (tmp_path / f"{module}.py").write_text(source)
        points.append(EntryPoint(name=name, value=f"{module}:{attr}", group=registry.ENTRY_POINT_GROUP))

    return register


def test_plugin_is_found_listed_and_usable(plugins, weave_home):
    plugins("acme", PLUGIN)
    cls = registry.load_provider_class("acme")
    assert cls.__name__ == "AcmeProvider"
    assert registry.provider_names()[:4] == ["local", "aws", "gcp", "docker"]
    assert "acme" in registry.provider_names()
    mgr = DeploymentManager()
    assert isinstance(mgr.provider("acme"), cls) and "acme" in mgr.provider_names()
    assert "skipped acme" not in " ".join(mgr.list().notes)


def test_builtin_missing_dependency_names_the_extra(tmp_path, monkeypatch):
    # a built-in is loaded from its own module path (entry points are not scanned for it): point it at one whose SDK is missing
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "weave_test_builtin_aws.py").write_text("import weave_test_no_such_sdk\n")
    monkeypatch.setitem(registry.BUILTINS, "aws", ("weave_test_builtin_aws:AwsProvider", "aws"))
    with pytest.raises(ProviderUnavailable) as caught:
        registry.load_provider_class("aws")
    assert "weave_test_no_such_sdk" in caught.value.message
    assert caught.value.suggestion == "pip install -e '.[aws]' in your weave-nb checkout"


def test_plugin_missing_dependency_names_the_module(plugins):
    plugins("acme", "import weave_test_no_such_sdk.client\n")
    with pytest.raises(ProviderUnavailable) as caught:
        registry.load_provider_class("acme")
    assert "weave_test_no_such_sdk" in caught.value.message
    assert "weave_test_no_such_sdk" in caught.value.suggestion


def test_broken_import_and_missing_class_are_provider_unavailable(plugins):
    plugins("halfbaked", "from json import no_such_name\n")
    plugins("nameless", PLUGIN, attr="NoSuchClass")
    for name in ("halfbaked", "nameless"):
        with pytest.raises(ProviderUnavailable) as caught:
            registry.load_provider_class(name)
        assert name in caught.value.message


def test_unknown_provider_lists_the_known_ones(plugins):
    plugins("acme", PLUGIN)
    with pytest.raises(ProviderUnavailable) as caught:
        registry.load_provider_class("nope")
    assert "unknown provider 'nope'" in caught.value.message
    assert "local" in caught.value.suggestion and "acme" in caught.value.suggestion


def test_builtins_load_without_entry_points(plugins):
    assert registry.load_provider_class("local") is LocalProvider
    assert registry.provider_names() == ["local", "aws", "gcp", "docker"]


def test_unavailable_provider_is_a_note_in_listings_and_an_error_when_asked(plugins, weave_home):
    plugins("acme", "import weave_test_no_such_sdk\n")
    mgr = DeploymentManager()
    notes = mgr.list().notes
    assert any(n.startswith("skipped acme: the acme provider needs weave_test_no_such_sdk") for n in notes)
    with pytest.raises(ProviderUnavailable):
        mgr.list(provider="acme")
