"""DeploymentManager with providers given to it, listing and drift, and how failures are reported.

The providers here are small real ``DeploymentProvider`` subclasses kept in
memory: they stand for third-party plug-ins, not for the local provider
(which is tested with real processes elsewhere).
"""

from __future__ import annotations

import pytest

from weave_nb.core.config import DeploymentInfo, DeploymentStatus, Plan, PlannedStep
from weave_nb.core.errors import ConfigError, CredentialsError, DeploymentFailed, NotFound, WeaveError
from weave_nb.core.events import Done, StepFinished
from weave_nb.core.listing import merge_live
from weave_nb.core.manager import DeploymentManager
from weave_nb.spec.model import find_weave_file
from weave_nb.providers.base import DeploymentProvider


class MemoryProvider(DeploymentProvider):
    """A plug-in that 'deploys' into a dict; ``fail_at`` makes one step raise."""

    name = "memory"

    def __init__(self, auth, fail_at=None, error=None):
        super().__init__(auth)
        self.live: dict[str, DeploymentInfo] = {}
        self.fail_at = fail_at
        self.error = error

    def plan(self, config, artifact, ctx):
        action = "no-change" if ctx.record and ctx.record.content_hash == artifact.content_hash else "create"
        return Plan(provider=self.name, name=config.name, steps=[
            PlannedStep(key="bucket", resource="bucket", action=action, call="make", undo="unmake"),
            PlannedStep(key="function", resource="function", action=action, call="make", undo="unmake"),
        ])

    def apply_make(self, run, step):
        if self.fail_at == step.key:
            raise self.error
        run.ctx.add_resource(step.key, f"{run.config.name}-{step.key}")
        return {step.key: f"{run.config.name}-{step.key}"}

    def undo_unmake(self, run, step, result):
        run.ctx.remove_resource(step.key, result[step.key])

    def finish(self, run):
        config = run.config
        info = DeploymentInfo(name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE,
                              endpoint=f"memory://{config.name}")
        self.live[config.name] = info
        return info

    def status(self, ctx):
        if ctx.name not in self.live:
            raise NotFound(f"no {ctx.name}")
        return self.live[ctx.name]

    def plan_destroy(self, ctx, **options):
        return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=[
            PlannedStep(key="all", resource="everything", action="delete", call="remove_all")])

    def apply_remove_all(self, run, step):
        self.live.pop(run.ctx.name, None)
        for res in run.ctx.resources():
            run.ctx.remove_resource(res.kind, res.id)

    def list_deployments(self, records):
        return list(self.live.values())


class Unconfigured(MemoryProvider):
    name = "unconfigured"

    def list_deployments(self, records):
        raise CredentialsError("no credentials for unconfigured", "set UNCONFIGURED_TOKEN")


class Crashing(MemoryProvider):
    name = "crashing"

    def list_deployments(self, records):
        raise ConnectionRefusedError("engine socket refused the connection")


def values(mock_weave, **extra):
    return {"name": "demo", "provider": "memory", "weave_file": str(mock_weave), **extra}


def test_given_provider_instance_is_used_and_recorded(manager, mock_weave):
    prov = MemoryProvider(manager.auth)
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    assert "memory" in mgr.provider_names() and mgr.provider("memory") is prov
    events = []
    info = mgr.deploy(values(mock_weave), sink=events.append)
    assert info.status == DeploymentStatus.ACTIVE and info.endpoint == "memory://demo"
    assert [e.step for e in events if isinstance(e, StepFinished)] == ["bucket", "function"]
    assert sorted(r.kind for r in mgr.inventory.get("memory", "demo").resources) == ["bucket", "function"]
    mgr.destroy("demo", "memory")
    assert mgr.inventory.get("memory", "demo") is None and prov.live == {}


def test_given_provider_class_is_instantiated_with_the_auth_manager(manager):
    mgr = DeploymentManager(home=manager.home, providers={"memory": MemoryProvider})
    prov = mgr.provider("MEMORY ")
    assert isinstance(prov, MemoryProvider) and prov.auth is mgr.auth
    assert mgr.provider("memory") is prov


def test_failing_step_marks_failed_and_rolls_back_through_the_journal(manager, mock_weave):
    prov = MemoryProvider(manager.auth, fail_at="function", error=RuntimeError("quota exceeded"))
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    events = []
    with pytest.raises(DeploymentFailed) as caught:
        mgr.deploy(values(mock_weave), sink=events.append)
    assert caught.value.message == "quota exceeded"
    assert "undeploy demo --provider memory" in caught.value.suggestion
    assert isinstance(events[-1], Done) and not events[-1].ok
    row = mgr.inventory.get("memory", "demo")
    assert row.status == DeploymentStatus.FAILED and row.message == "quota exceeded"
    assert row.resources == []  # the bucket step was undone by the executor
    journal = mgr.inventory.journal.runs("memory", "demo")[-1]
    assert journal["outcome"] == "failed"
    assert [(s["key"], s["outcome"]) for s in journal["steps"]] == [("bucket", "done"), ("function", "failed"), ("bucket", "undone")]
    prov.fail_at = None
    assert mgr.deploy(values(mock_weave)).status == DeploymentStatus.ACTIVE
    assert mgr.inventory.get("memory", "demo").message is None


def test_keep_on_failure_keeps_what_finished_steps_made(manager, mock_weave):
    class Keeping(MemoryProvider):
        def keep_on_failure(self, config):
            return True

    prov = Keeping(manager.auth, fail_at="function", error=RuntimeError("quota exceeded"))
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    with pytest.raises(DeploymentFailed):
        mgr.deploy(values(mock_weave))
    assert [r.kind for r in mgr.inventory.get("memory", "demo").resources] == ["bucket"]


def test_executed_steps_are_the_plans_changing_steps_and_dry_run_is_the_same_plan(manager, mock_weave):
    from weave_nb.core.events import PlanReady, StepStarted

    prov = MemoryProvider(manager.auth)
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    shown = mgr.deploy(values(mock_weave), dry_run=True)
    events = []
    mgr.deploy(values(mock_weave), sink=events.append)
    ran = [e.plan for e in events if isinstance(e, PlanReady)][0]
    assert ran.model_dump() == shown.model_dump()
    assert [e.step for e in events if isinstance(e, StepStarted)] == [s.key for s in ran.changing()] == ["bucket", "function"]
    steps = mgr.inventory.journal.runs("memory", "demo")[-1]["steps"]
    assert [(s["key"], s["call"], s["outcome"]) for s in steps] == [("bucket", "make", "done"), ("function", "make", "done")]
    # unchanged: every step is no-change, nothing runs, and the journal records no step
    events.clear()
    mgr.deploy(values(mock_weave), sink=events.append)
    assert not [e for e in events if isinstance(e, StepStarted) and e.description.startswith(("create", "update"))]
    assert mgr.inventory.journal.runs("memory", "demo")[-1]["steps"] == []


def test_weave_errors_keep_their_type_and_suggestion(manager, mock_weave):
    prov = MemoryProvider(manager.auth, fail_at="bucket", error=CredentialsError("token expired", "log in again"))
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    with pytest.raises(CredentialsError) as caught:
        mgr.deploy(values(mock_weave))
    assert (caught.value.message, caught.value.suggestion) == ("token expired", "log in again")


def test_list_merges_records_with_live_state(manager, mock_weave):
    prov = MemoryProvider(manager.auth)
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    mgr.deploy(values(mock_weave))
    mgr.deploy(values(mock_weave, name="vanished"))
    del prov.live["vanished"]
    prov.live["stranger"] = DeploymentInfo(name="stranger", provider="memory", status=DeploymentStatus.ACTIVE)
    listing = mgr.list(provider="memory")
    drift = {d.name: d.drift for d in listing.deployments}
    assert drift == {"demo": None, "vanished": "missing", "stranger": "unrecorded"}
    inventory_only = mgr.list(provider="memory", refresh=False)
    assert sorted(d.name for d in inventory_only.deployments) == ["demo", "vanished"]


def test_list_without_provider_skips_unavailable_ones_with_a_note(manager, mock_weave):
    mgr = DeploymentManager(home=manager.home, providers={
        "memory": MemoryProvider(manager.auth), "unconfigured": Unconfigured, "crashing": Crashing})
    mgr.deploy(values(mock_weave))
    mgr.inventory.save("crashing", "kept", status="active")
    listing = mgr.list()
    notes = {n.split(":")[0]: n for n in listing.notes}
    assert "skipped unconfigured" in notes and "no credentials" in notes["skipped unconfigured"]
    assert "skipped crashing" in notes and "refused" in notes["skipped crashing"]
    assert all("\n" not in n for n in listing.notes)
    assert "skipped memory" not in notes and "skipped local" not in notes
    assert {(d.provider, d.name) for d in listing.deployments} >= {("memory", "demo"), ("crashing", "kept")}
    with pytest.raises(CredentialsError):
        mgr.list(provider="unconfigured")
    with pytest.raises(WeaveError, match="could not list crashing deployments: ConnectionRefusedError"):
        mgr.list(provider="crashing")


def test_merge_live_marks_every_record_the_provider_lacks_missing():
    """The one status rule (see test_status_rule): recorded but missing live is failed and missing, whatever the record said."""
    failed = DeploymentInfo(name="f", provider="p", status=DeploymentStatus.FAILED)
    active = DeploymentInfo(name="a", provider="p", status=DeploymentStatus.ACTIVE)
    merged = {d.name: d for d in merge_live([failed, active], [])}
    assert {(d.status, d.drift) for d in merged.values()} == {(DeploymentStatus.FAILED, "missing")}


def test_unknown_deployment_is_not_found(manager):
    for call in (lambda: manager.destroy("ghost"), lambda: manager.status("ghost"),
                 lambda: manager.invoke("ghost"), lambda: manager.logs("ghost")):
        with pytest.raises(NotFound) as caught:
            call()
        assert "ghost" in caught.value.message and caught.value.suggestion
        assert caught.value.message.startswith("no deployment named 'ghost' in the inventory (providers searched: local, ")
    for call in (lambda: manager.destroy("ghost", "local"), lambda: manager.status("ghost", "local"),
                 lambda: manager.invoke("ghost", "local"), lambda: manager.logs("ghost", "local")):
        with pytest.raises(NotFound) as caught:
            call()
        assert str(caught.value) == ("no deployment named 'ghost' in the inventory (providers searched: local)\n"
                                     "  hint: list them with `weave deployments`")


def test_find_weave_file(tmp_path):
    with pytest.raises(WeaveError, match="none found"):
        find_weave_file(tmp_path)
    (tmp_path / "a.weave.yaml").write_text("x")
    assert find_weave_file(tmp_path).endswith("a.weave.yaml")
    (tmp_path / "b.weave.yaml").write_text("x")
    with pytest.raises(WeaveError, match="several"):
        find_weave_file(tmp_path)
    (tmp_path / "weave.yaml").write_text("x")
    assert find_weave_file(tmp_path).endswith("/weave.yaml")


def test_precedence_flags_over_defaults_over_weave_file(manager, tmp_path):
    path = tmp_path / "p.weave.yaml"
    path.write_text("""\
version: "1.0"
agents: {a: {model: mock}}
weaves: {w: {agents: [a]}}
deployment: {provider: local, region: from-file, memory_mb: 256, timeout_seconds: 30}
""")
    config, spec = manager.configure({"name": "x", "weave_file": str(path), "memory_mb": 512},
                                     defaults={"memory_mb": 128, "region": "from-defaults"})
    assert (config.memory_mb, config.region, config.timeout_seconds) == (512, "from-defaults", 30)


class NoCredentials(MemoryProvider):
    """Without credentials listing must stop at check_credentials, before any SDK work."""

    name = "nocreds"

    def check_credentials(self, config):
        raise CredentialsError("no credentials for nocreds", "set NOCREDS_TOKEN")

    def list_deployments(self, records):
        raise AssertionError("list_deployments must not run without credentials")


class PickyOptions(MemoryProvider):
    """check_credentials complains about the bare settings, but listing works."""

    name = "picky"

    def check_credentials(self, config):
        raise ConfigError("--region is required")

    def list_deployments(self, records):
        return [DeploymentInfo(name="seen", provider="picky", status=DeploymentStatus.ACTIVE)]


def test_listing_checks_credentials_first(manager):
    mgr = DeploymentManager(home=manager.home, providers={"nocreds": NoCredentials, "picky": PickyOptions})
    listing = mgr.list()
    assert any(n.startswith("skipped nocreds: no credentials") for n in listing.notes)
    assert not any("picky" in n for n in listing.notes)
    assert ("picky", "seen") in {(d.provider, d.name) for d in listing.deployments}


def test_deploy_accepts_a_config_object(manager, mock_weave):
    from weave_nb.core.config import DeploymentConfig

    prov = MemoryProvider(manager.auth)
    mgr = DeploymentManager(home=manager.home, providers={"memory": prov})
    config = DeploymentConfig(name="obj", provider="memory", weave_file=str(mock_weave), env={"TOKEN": "abcd1234"},
                              auth={"method": "api_key", "api_key": "k-1234"})
    info = mgr.deploy(config)
    assert info.status == DeploymentStatus.ACTIVE
    again, _ = mgr.configure(config)
    assert again.env_plain() == {"TOKEN": "abcd1234"} and again.auth.get("api_key") == "k-1234"
    assert mgr.settings_hash(again) == mgr.inventory.get("memory", "obj").settings_hash


class Exploding(MemoryProvider):
    """A plug-in with a bug: status and destroy raise plain Python errors."""

    name = "exploding"

    def status(self, ctx):
        raise RuntimeError("engine exploded")

    def apply_remove_all(self, run, step):
        raise KeyError("lost")


def test_unexpected_provider_errors_become_weave_errors_with_the_cause(manager, mock_weave):
    from weave_nb.core.manager import UNEXPECTED

    mgr = DeploymentManager(home=manager.home, providers={"exploding": Exploding})
    mgr.deploy(values(mock_weave, provider="exploding"))
    with pytest.raises(WeaveError) as caught:
        mgr.status("demo", "exploding")
    assert caught.value.message == "RuntimeError: engine exploded" and caught.value.suggestion == UNEXPECTED
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(WeaveError, match="KeyError: 'lost'"):
        mgr.destroy("demo", "exploding")
    row = mgr.inventory.get("exploding", "demo")
    assert row.status == DeploymentStatus.FAILED and "KeyError" in row.message


def test_a_weave_file_cannot_ask_to_adopt(manager, tmp_path):
    from weave_nb.core.errors import ConfigError

    path = tmp_path / "adopting.weave.yaml"
    path.write_text('version: "1.0"\nagents:\n  a: {model: mock}\nweaves:\n  w: {agents: [a]}\ndeployment: {adopt: true}\n')
    with pytest.raises(ConfigError, match="cannot ask to adopt"):
        manager.plan({"name": "demo", "weave_file": str(path)})
