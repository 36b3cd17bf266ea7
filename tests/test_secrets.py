"""Secrets never leak: not in CLI output, reprs, events, logs, inventory rows, artifacts or error messages.

A deployment is made with known fake secrets in three places (``--env``, the
weave's ``env`` through ``${VAR}``, and an ``AuthConfig``), then everything
weave-nb wrote or printed is searched for them. The server process itself
does receive the environment values: that is where they belong.
"""

from __future__ import annotations

import io
import json
import sqlite3
import traceback
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from weave_nb.frontends import cli
from weave_nb.core.config import AuthConfig, DeploymentConfig, DeploymentInfo, Plan, PlannedStep, make_config
from weave_nb.core.errors import ConfigError, WeaveError
from weave_nb.core.manager import DeploymentManager
from weave_nb.providers.base import DeploymentProvider

FLAG_SECRET = "flag-secret-7Qw9Zr2Lm5Xv"
SPEC_SECRET = "spec-secret-K3pN8tY6cB1d"
AUTH_SECRET = "auth-secret-H4jS0fE9uR7a"
SECRETS = (FLAG_SECRET, SPEC_SECRET, AUTH_SECRET)

SECRET_WEAVE = """\
version: "1.0"
agents:
  first: {model: mock, outputs: one}
  second: {model: mock, inputs: first, outputs: two}
weaves:
  pair: {agents: [first, second]}
env:
  SERVICE_TOKEN: "${WEAVE_TEST_SPEC_SECRET}"
"""


def leaks(text: str | bytes) -> list[str]:
    raw = text if isinstance(text, bytes) else text.encode()
    return [s for s in SECRETS if s.encode() in raw]


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with zips expanded (their entries are compressed)."""
    out = {}
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out[str(path)] = data
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as zf:
                    for name in zf.namelist():
                        out[f"{path}!{name}"] = zf.read(name)
    return out


def inventory_dump(home: Path) -> str:
    with sqlite3.connect(home / "inventory.db") as db:
        return "\n".join(db.iterdump())


@pytest.fixture
def secret_weave(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVE_TEST_SPEC_SECRET", SPEC_SECRET)
    path = tmp_path / "pair.weave.yaml"
    path.write_text(SECRET_WEAVE)
    return path


def test_cli_and_api_deploys_leak_no_secret(weave_home, secret_weave, manager):
    shown = []

    def weave(*argv: str) -> int:
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), out=out, err=err, stdin=io.StringIO("y\n"))
        shown.extend([out.getvalue(), err.getvalue()])
        return code

    base = ["-n", "clidemo", "-c", str(secret_weave), "--env", f"API_TOKEN={FLAG_SECRET}", "-v"]
    assert weave("plan", *base) == 0
    assert weave("deploy", *base) == 0
    assert weave("deploy", *base) == 0  # unchanged redeploy
    assert weave("status", "clidemo") == 0
    assert weave("deployments") == 0
    assert weave("invoke", "clidemo", "-i", "hello") == 0
    assert weave("logs", "clidemo") == 0

    events = []
    values = {
        "name": "apidemo", "weave_file": str(secret_weave), "env": {"API_TOKEN": FLAG_SECRET},
        "auth": {"method": "api_key", "api_key": AUTH_SECRET},
    }
    config, spec = manager.configure(values)
    plan = manager.plan(values, sink=events.append)
    info = manager.deploy(values, sink=events.append)
    listing = manager.list()
    status = manager.status("apidemo")

    # the secrets really were used: the server processes got them in their environment
    for name in ("clidemo", "apidemo"):
        pid = manager.inventory.get("local", name).details["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"API_TOKEN={FLAG_SECRET}".encode() in environ
        assert f"SERVICE_TOKEN={SPEC_SECRET}".encode() in environ
    assert config.env_plain()["SERVICE_TOKEN"] == SPEC_SECRET and config.auth.get("api_key") == AUTH_SECRET

    seen = {
        "cli output": "\n".join(shown),
        "config": repr(config) + str(config) + config.model_dump_json() + repr(config.model_dump()),
        "auth": repr(config.auth) + config.auth.model_dump_json(),
        "plan": repr(plan) + plan.render() + plan.to_json(),
        "info": repr(info) + info.model_dump_json() + info._repr_html_() + info.summary() + repr(info.row()),
        "listing": repr(listing) + repr(status),
        "events": "\n".join(repr(e) for e in events),
        "manager": repr(manager.auth),
        "inventory rows": inventory_dump(weave_home),
        "artifact": repr(spec) + "".join(c.decode() for c in manager.provider("local").build_artifact(spec, config).files.values()),
    }
    for path, data in files_under(weave_home).items():
        seen[path] = data.decode(errors="replace")
    leaked = {where: leaks(text) for where, text in seen.items() if leaks(text)}
    assert leaked == {}
    assert len([p for p in seen if p.endswith("server.log")]) == 2

    manager.destroy("clidemo")
    manager.destroy("apidemo")


class LeakyProvider(DeploymentProvider):
    """A plug-in whose errors quote the secrets it was given, at a chosen stage."""

    name = "leaky"

    def __init__(self, auth, stage="deploy", weave_error=False):
        super().__init__(auth)
        self.stage, self.weave_error = stage, weave_error

    def _fail(self, ctx_env):
        text = f"request rejected: token={ctx_env['API_TOKEN']} service={ctx_env['SERVICE_TOKEN']} auth={AUTH_SECRET}"
        raise (WeaveError(text, "check the token") if self.weave_error else RuntimeError(text))

    def validate_config(self, config):
        if self.stage == "validate":
            self._fail(config.env_plain())

    def plan(self, config, artifact, ctx):
        if self.stage == "plan":
            self._fail(ctx.env)
        return Plan(provider="leaky", name=config.name, steps=[PlannedStep(key="x", resource="x", action="create", call="make")])

    def apply_make(self, run, step):
        run.ctx.log("calling the API")
        self._fail(run.ctx.env)

    def finish(self, run):
        raise AssertionError("never reached: the only step fails")

    def status(self, ctx):
        return DeploymentInfo(name=ctx.name, provider="leaky")

    def plan_destroy(self, ctx, **options):
        return Plan(provider="leaky", name=ctx.name, operation="undeploy")

    def list_deployments(self, records):
        return []


@pytest.mark.parametrize("stage", ["validate", "plan", "deploy"])
@pytest.mark.parametrize("weave_error", [False, True])
def test_failures_quoting_secrets_are_scrubbed(weave_home, secret_weave, stage, weave_error):
    mgr = DeploymentManager(providers={"leaky": LeakyProvider(None, stage, weave_error)})
    events = []
    values = {
        "name": "demo", "provider": "leaky", "weave_file": str(secret_weave), "env": {"API_TOKEN": FLAG_SECRET},
        "auth": {"method": "api_key", "api_key": AUTH_SECRET},
    }
    with pytest.raises(WeaveError) as caught:
        mgr.deploy(values, sink=events.append)
    exc = caught.value
    assert "request rejected: token=*** service=*** auth=***" in exc.message
    shown = "".join(traceback.format_exception(exc)) + str(exc) + repr(exc) + repr(exc.args)
    shown += "\n".join(repr(e) for e in events) + inventory_dump(weave_home)
    assert leaks(shown) == []
    if stage == "deploy":
        assert mgr.inventory.get("leaky", "demo").message.startswith("request rejected: token=***")
    else:
        assert mgr.inventory.get("leaky", "demo") is None


def test_config_validation_errors_never_echo_values():
    bad = {"name": f"bad name {FLAG_SECRET}", "memory_mb": -1, "port": 99999, "env": {"A": 12345678}, "provider": "local"}
    with pytest.raises(ConfigError) as caught:
        make_config(bad)
    message = caught.value.message
    assert message.startswith("invalid deployment settings: ")
    for field in ("name:", "memory_mb:", "port:"):
        assert field in message
    assert leaks(message) == [] and "99999" not in message and "12345678" not in message

    with pytest.raises(ValidationError) as raw:
        DeploymentConfig(**bad)
    assert leaks(str(raw.value)) == [] and "12345678" not in str(raw.value)
    with pytest.raises(ValidationError) as raw:
        AuthConfig(method="magic", params={"api_key": AUTH_SECRET})
    assert leaks(str(raw.value)) == []


def test_env_flag_errors_never_echo_values():
    with pytest.raises(ConfigError) as caught:
        make_config({"name": "demo", "env": [FLAG_SECRET]})
    assert leaks(str(caught.value)) == []
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["deploy", "-n", "demo", "--env", FLAG_SECRET], out=out, err=err) == 2
    assert "an --env entry is not NAME=VALUE" in err.getvalue() and leaks(err.getvalue() + out.getvalue()) == []


def test_auth_params_named_like_secrets_are_secret():
    auth = AuthConfig.from_mapping({"method": "api_key", "api_key": AUTH_SECRET, "region": "eu-west-1"})
    assert auth.get("api_key") == AUTH_SECRET and auth.get("region") == "eu-west-1"
    assert leaks(repr(auth) + auth.model_dump_json() + json.dumps(auth.model_dump(mode="json"))) == []


def test_option_flag_errors_never_echo_values():
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["deploy", "-n", "demo", "-o", FLAG_SECRET], out=out, err=err) == 2
    assert "--option expects KEY=VALUE" in err.getvalue() and leaks(err.getvalue() + out.getvalue()) == []
