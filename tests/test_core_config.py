"""Config models, events, credentials chain and text rendering."""

from __future__ import annotations

import io

import pytest
from pydantic import SecretStr

from weave_nb.core.auth import AuthenticationManager, EnvironmentCredentialProvider, FileCredentialProvider
from weave_nb.core.config import (
    DeploymentConfig, DeploymentInfo, Plan, PlannedStep, make_config, parse_env_pairs,
)
from weave_nb.core.errors import ConfigError, CredentialsError
from weave_nb.core.events import Done, LogLine, PlanReady, ProgressUpdate, Reporter, StepFinished, StepStarted
from weave_nb.frontends.render import format_event, line_sink, table


@pytest.mark.parametrize("name", ["a", "demo-1", "A_b-c", "x" * 63])
def test_valid_names(name):
    assert DeploymentConfig(name=name).name == name


@pytest.mark.parametrize("name", ["", "1demo", "-x", "has space", "x" * 64, "dot.ted", "ümlaut"])
def test_invalid_names_are_config_errors_naming_the_rule(name):
    with pytest.raises(ConfigError) as caught:
        make_config({"name": name})
    assert caught.value.message.startswith("invalid deployment settings: name: must start with a letter")
    assert "nothing was created" in caught.value.suggestion


def test_make_config_merges_and_ignores_none():
    config = make_config(
        {"name": "x", "region": None, "memory_mb": 256, "options": {"python": None, "extra": 1}, "env": ["B=2"]},
        {"region": "eu", "memory_mb": 128, "base_image": "slim", "env": {"A": "1", "B": "1"}},
    )
    assert (config.region, config.memory_mb) == ("eu", 256)
    assert config.options == {"base_image": "slim", "extra": 1}
    assert config.env_plain() == {"A": "1", "B": "2"}
    assert all(isinstance(v, SecretStr) for v in config.env.values())
    assert make_config({"name": "x", "provider": " AWS "}).provider == "aws"


@pytest.mark.parametrize("field, value", [("memory_mb", 0), ("timeout_seconds", -1), ("port", 70000), ("bogus", 1)])
def test_out_of_range_or_unknown_fields(field, value):
    with pytest.raises(ConfigError) as caught:
        make_config({"name": "x", field: value})
    assert f"{field}:" in caught.value.message


def test_env_names_are_checked_in_mappings_too():
    for env in ({"1BAD": "v"}, {"A-B": "v"}, {"": "v"}, {"A=B": "v"}):
        with pytest.raises(ConfigError) as caught:
            make_config({"name": "x", "env": env})
        assert "env:" in caught.value.message and "not a valid environment variable name" in caught.value.message
        assert "'v'" not in caught.value.message
    assert make_config({"name": "x", "env": {"_OK1": "v"}}).env_plain() == {"_OK1": "v"}


def test_parse_env_pairs():
    assert parse_env_pairs(["A=1", "B=x=y", " C =", "_D=ok"]) == {"A": "1", "B": "x=y", "C": "", "_D": "ok"}
    for bad in (["A"], ["1A=x"], ["A-B=x"]):
        with pytest.raises(ConfigError):
            parse_env_pairs(bad)


def test_plan_render_and_changes():
    steps = [PlannedStep(key="a", resource="role", action="create", detail="new"),
             PlannedStep(key="b", resource="fn", action="no-change")]
    plan = Plan(provider="aws", name="demo", steps=steps)
    assert plan.has_changes
    text = plan.render()
    assert text.splitlines()[0] == "Plan for demo on aws:" and "+ create    role  (new)" in text
    quiet = Plan(provider="aws", name="demo", steps=steps[1:], notes=["sandbox"])
    assert not quiet.has_changes and "no changes" in quiet.render() and "note: sandbox" in quiet.render()
    assert Plan.model_validate_json(plan.to_json()) == plan


def test_info_row_summary_and_html_escape():
    info = DeploymentInfo(name="demo", provider="local", status="active", endpoint="http://h/<x>", drift="missing")
    assert info.row()["status"] == "active"
    assert info.summary() == "demo [local] active http://h/<x> (drift: missing)"
    assert "&lt;x&gt;" in info._repr_html_() and "<x>" not in info._repr_html_()


def test_info_html_shows_every_field_with_the_endpoint_as_a_link():
    import datetime as dt

    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    later = when + dt.timedelta(minutes=1)
    info = DeploymentInfo(name="demo", provider="aws", status="active", endpoint="https://x.example/run",
                          region="eu-west-1", created_at=when, updated_at=later, details={"api_key_hint": "kept out"})
    page = info._repr_html_()
    for shown in ("demo", "aws", ">active<", "eu-west-1", "2026-01-02T03:04:05+00:00", "2026-01-02T03:05:05+00:00"):
        assert shown in page, shown
    assert '<a href="https://x.example/run" target="_blank">https://x.example/run</a>' in page
    assert "kept out" not in page, "details (provider internals) are not shown"
    bare = DeploymentInfo(name="d", provider="local")._repr_html_()
    assert "<a " not in bare and "pending" in bare


def test_reporter_counts_steps_and_survives_a_broken_sink():
    seen = []
    ticks = iter([0.0, 1.5, 2.0, 2.25])
    rep = Reporter(seen.append, total=2, clock=lambda: next(ticks))
    rep.finish("a", rep.start("a", "first"))
    rep.finish("b", rep.start("b", "second"), "failed", "boom")
    assert [type(e) for e in seen] == [StepStarted, StepFinished, ProgressUpdate, StepStarted, StepFinished]
    assert seen[0].index == 1 and seen[0].total == 2 and seen[1].seconds == 1.5
    assert seen[2].fraction == 0.5 and seen[4].outcome == "failed"

    def broken(event):
        raise RuntimeError("display gone")

    Reporter(broken).log("still fine")


def test_render_lines():
    info = DeploymentInfo(name="d", provider="local", status="active", endpoint="http://e", message="no changes")
    assert format_event(Done(ok=True, info=info)) == "OK d is active at http://e (no changes)"
    assert format_event(Done(ok=True, info=info.model_copy(update={"message": None}))) == "OK d is active at http://e"
    assert format_event(Done(ok=False, message="bad", suggestion="fix")) == "ERROR bad\n  hint: fix"
    assert format_event(StepStarted(step="s", description="go", index=1, total=3)) == "==> [1/3] go"
    assert format_event(ProgressUpdate(fraction=0.5)) is None
    out = io.StringIO()
    sink = line_sink(out, skip_done=True)
    sink(LogLine(text="hello"))
    sink(Done(ok=True, message="x"))
    sink(PlanReady(Plan(provider="p", name="n")))
    assert out.getvalue() == "    hello\nPlan for n on p:\n  no changes\n"
    assert table([], ["name"]) == "(no deployments)"
    assert table([{"name": "a", "x": None}], ["name", "x"]).splitlines() == ["NAME  X", "a     -"]


def test_auth_chain_order_and_aliases(tmp_path):
    creds = tmp_path / "credentials.yaml"
    creds.write_text("aws:\n  AWS_ACCESS_KEY_ID: from-file\n  AWS_REGION: eu-west-1\n")
    mgr = AuthenticationManager([EnvironmentCredentialProvider({"AWS_ACCESS_KEY_ID": "from-env"}),
                                 FileCredentialProvider(creds)])
    assert mgr.lookup("aws", "AWS_ACCESS_KEY_ID").get_secret_value() == "from-env"
    assert mgr.setting("aws", "AWS_REGION") == "eu-west-1"
    auth = make_config({"name": "x", "auth": {"method": "api_key", "access_key_id": "from-auth"}}).auth
    assert mgr.lookup("aws", "AWS_ACCESS_KEY_ID", auth=auth).get_secret_value() == "from-auth"
    with pytest.raises(CredentialsError) as caught:
        mgr.require("aws", ["AWS_SECRET_ACCESS_KEY"], "set AWS_SECRET_ACCESS_KEY")
    assert caught.value.suggestion == "set AWS_SECRET_ACCESS_KEY"
    assert "from-env" not in repr(mgr)


def test_bad_credentials_file_is_a_credentials_error(tmp_path):
    bad = tmp_path / "credentials.yaml"
    bad.write_text("aws: [unclosed\n")
    with pytest.raises(CredentialsError, match="not valid YAML"):
        FileCredentialProvider(bad).get("aws", "X")
