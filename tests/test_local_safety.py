"""Issue 11: what a weave file may decide, secrets in errors, file modes under $WEAVE_HOME, Lambda log rights.

A weave file is data people share: it may not choose an executable, where
credentials go, or expose the server; only the user's flags may. Tests use a
real manager on a private home and real server processes.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from weave_nb.core.errors import ConfigError
from weave_nb.core.events import WarningEvent

from conftest import MOCK_WEAVE

BASE = MOCK_WEAVE.replace("deployment: {provider: local}\n", "")


def weave_with(tmp_path, deployment: str = "", env: str = ""):
    path = tmp_path / "shared.weave.yaml"
    path.write_text(BASE + textwrap.dedent(deployment) + textwrap.dedent(env))
    return path


# -- 2. the weave file's powers ------------------------------------------------------------------

HOSTILE_SECTIONS = {
    "options.python": (f"deployment:\n  provider: local\n  options: {{python: {sys.executable}}}\n", "--option python="),
    "python": (f"deployment:\n  provider: local\n  python: {sys.executable}\n", "--option python="),
    "host 0.0.0.0": ("deployment: {provider: local, host: 0.0.0.0}\n", "--host"),
    "host ::": ("deployment: {provider: local, host: '::'}\n", "--host"),
    "host lan": ("deployment: {provider: local, host: 192.168.1.20}\n", "--host"),
    "public": ("deployment: {provider: local, public: true}\n", "--public"),
    "aws endpoint_url": ("deployment: {provider: aws, options: {endpoint_url: 'https://collector.example'}}\n",
                         "--option endpoint_url="),
    "gcp api_endpoint": ("deployment: {provider: gcp, options: {api_endpoint: 'https://collector.example'}}\n",
                         "--option api_endpoint="),
    "docker registry": ("deployment: {provider: docker, registry: collector.example}\n", "--option registry="),
    "env origins": ("deployment: {provider: local, env: {WEAVE_ALLOWED_ORIGINS: '*'}}\n", "--env WEAVE_ALLOWED_ORIGINS="),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SECTIONS))
def test_a_weave_file_may_not_choose_executables_binds_or_endpoints(manager, tmp_path, case):
    section, flag = HOSTILE_SECTIONS[case]
    path = weave_with(tmp_path, section)
    with pytest.raises(ConfigError) as caught:
        manager.plan({"name": "shared", "weave_file": str(path)})
    assert "a weave file may not choose" in caught.value.message
    assert flag in caught.value.suggestion
    assert "collector.example" not in caught.value.message + caught.value.suggestion
    assert manager.inventory.get("local", "shared") is None


def test_a_weave_file_env_may_not_set_the_server_browser_rules(manager, tmp_path):
    path = weave_with(tmp_path, env="env:\n  WEAVE_ALLOWED_HOSTS: '*'\n")
    with pytest.raises(ConfigError, match="env.WEAVE_ALLOWED_HOSTS"):
        manager.plan({"name": "shared", "weave_file": str(path)})


def test_loopback_hosts_in_the_file_are_fine(manager, tmp_path):
    for host in ("127.0.0.1", "localhost", "127.0.0.2"):
        path = weave_with(tmp_path, f"deployment: {{provider: local, host: '{host}', public: false}}\n")
        plan = manager.plan({"name": "shared", "weave_file": str(path)})
        assert f"listens on {host}" in plan.render()


def test_the_user_may_choose_them_and_the_plan_says_so(manager, tmp_path):
    path = weave_with(tmp_path)
    events = []
    plan = manager.plan({"name": "shared", "weave_file": str(path), "host": "0.0.0.0",
                         "options": {"python": sys.executable}}, sink=events.append)
    text = plan.render()
    assert f"the server runs {sys.executable} and listens on 0.0.0.0" in text
    assert "0.0.0.0 is not a loopback address" in text
    assert [e.text for e in events if isinstance(e, WarningEvent)] == [plan.notes[-1]]
    quiet = manager.plan({"name": "shared", "weave_file": str(path)}, sink=events.append)
    assert len(quiet.notes) == 1 and "listens on 127.0.0.1" in quiet.notes[0]


def test_the_cli_shows_the_refusal_with_the_flag_to_use(weave_home, tmp_path):
    """The CLI shows the refusal as a one-line error with the flag to use (exit 2, nothing created)."""
    import io

    from weave_nb.frontends import cli

    path = weave_with(tmp_path, "deployment: {provider: local, host: 0.0.0.0}\n")
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["deploy", "-n", "shared", "-c", str(path), "--host", "127.0.0.1"], out=out, err=err)
    assert code == 2 and "deployment.host" in err.getvalue() and "--host" in err.getvalue()


# -- 3a. an --env entry that is not NAME=VALUE is never echoed ----------------------------------

PASTED = [
    "sk-abc123DEF456ghi789=x",          # a key pasted where the name goes
    "sk-abc123DEF456ghi789",            # a key pasted alone
    "c2stYWJjMTIzREVGNDU2Z2hpNzg5",      # base64, no '='
    "9f86d081884c7d659a2feaa0c55ad015=1",  # hex secret starting with a digit
    "=sk-abc123DEF456ghi789",            # value without a name
]


@pytest.mark.parametrize("entry", PASTED)
def test_cli_env_errors_never_echo_the_entry(weave_home, mock_weave, entry):
    import io

    from weave_nb.frontends import cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["deploy", "-n", "demo", "-c", str(mock_weave), "--env", "OK=1", "--env", entry], out=out, err=err)
    shown = out.getvalue() + err.getvalue()
    assert code == 2 and "an --env entry is not NAME=VALUE with a valid NAME (entry #2)" in shown
    for part in (entry, entry.split("=")[0] or entry[1:], entry[:12]):
        assert part not in shown


@pytest.mark.parametrize("entry", PASTED)
def test_magic_env_errors_never_echo_the_entry(entry):
    from weave_nb.frontends.arguments import config_values

    with pytest.raises(ConfigError) as caught:
        config_values({"name": "demo", "env": [entry]})
    shown = caught.value.message + caught.value.suggestion
    assert "entry #1" in shown and entry[:12] not in shown


def test_api_env_mapping_errors_never_echo_the_name(manager, mock_weave):
    from weave_nb.frontends import api

    with pytest.raises(ConfigError) as caught:
        api.deploy("demo", weave_file=str(mock_weave), env={"OK": "1", "sk-abc123DEF456ghi789": "x"}, manager=manager)
    assert "entry #2" in caught.value.message and "sk-abc123" not in caught.value.message


def test_the_env_form_never_echoes_a_pasted_line():
    from weave_nb.frontends.widgets.models import parse_env_text

    env, problems = parse_env_text("OK=1\nghp_abc123DEF456ghi789jkl\nsk-abc123DEF456=x\n", environ={})
    assert env == {"OK": "1"} and len(problems) == 2
    assert not any("abc123" in p for p in problems)


# -- 3b. secrets with quotes and backslashes are scrubbed however an error escapes them --------

ODD_SECRET = 'pa"ss\\wo\'rd/é-7Qw9'  # a double quote, a backslash, a single quote, a slash, non-ASCII


def _escaped_forms(value: str) -> dict[str, str]:
    import json

    return {
        "raw": value,
        "json": json.dumps(value)[1:-1],
        "json-unicode": json.dumps(value, ensure_ascii=False)[1:-1],
        "json-in-json": json.dumps(json.dumps(value)[1:-1])[1:-1],
        "repr": repr(value)[1:-1],
        "json-slash": json.dumps(value)[1:-1].replace("/", "\\/"),
    }


class EchoingProvider:
    """Built per test: its errors and log lines quote the secret in one escaped form."""

    @staticmethod
    def make(form: str, stage: str, weave_error: bool):
        from weave_nb.core.config import DeploymentInfo, Plan, PlannedStep
        from weave_nb.core.errors import WeaveError
        from weave_nb.providers.base import DeploymentProvider

        class Provider(DeploymentProvider):
            name = "echoing"

            def _fail(self, env):
                import json

                body = json.dumps({"message": f"invalid header value {env['DB_PASSWORD']}"})
                text = f"upstream said {body} and {_escaped_forms(env['DB_PASSWORD'])[form]}"
                raise WeaveError(text, "check it") if weave_error else RuntimeError(text)

            def plan(self, config, artifact, ctx):
                if stage == "plan":
                    self._fail(ctx.env)
                return Plan(provider=self.name, name=config.name, steps=[PlannedStep(key="x", resource="x", action="create", call="make")])

            def apply_make(self, run, step):
                run.ctx.log(f"sending {_escaped_forms(run.ctx.env['DB_PASSWORD'])[form]}")
                self._fail(run.ctx.env)

            def finish(self, run):
                raise AssertionError("never reached: the only step fails")

            def status(self, ctx):
                return DeploymentInfo(name=ctx.name, provider=self.name)

            def plan_destroy(self, ctx, **options):
                return Plan(provider=self.name, name=ctx.name, operation="undeploy")

            def list_deployments(self, records):
                return []

        return Provider(None)


@pytest.mark.parametrize("form", sorted(_escaped_forms("x")))
@pytest.mark.parametrize("stage", ["plan", "deploy"])
@pytest.mark.parametrize("weave_error", [False, True])
def test_escaped_secrets_are_scrubbed_from_errors_and_events(weave_home, mock_weave, form, stage, weave_error):
    import traceback

    from weave_nb.core.errors import WeaveError
    from weave_nb.core.manager import DeploymentManager

    mgr = DeploymentManager(providers={"echoing": EchoingProvider.make(form, stage, weave_error)})
    events = []
    with pytest.raises(WeaveError) as caught:
        mgr.deploy({"name": "demo", "provider": "echoing", "weave_file": str(mock_weave),
                    "env": {"DB_PASSWORD": ODD_SECRET}}, sink=events.append)
    exc = caught.value
    shown = "".join(traceback.format_exception(exc)) + repr(exc.args) + "\n".join(repr(e) for e in events)
    row = mgr.inventory.get("echoing", "demo")
    shown += row.message if row and row.message else ""
    assert "upstream said" in exc.message
    for name, text in _escaped_forms(ODD_SECRET).items():
        assert text not in shown, f"the {name} form leaked"
    assert "7Qw9" not in shown


def test_the_runtime_scrubs_escaped_forms_too():
    import json

    from weave_nb.runtime.errors import scrub, secret_values

    secrets = secret_values({"DB_PASSWORD": ODD_SECRET}, ())
    upstream = json.dumps({"error": {"message": f"bad key {ODD_SECRET}", "echo": repr(ODD_SECRET)}})
    assert "7Qw9" not in scrub(upstream, secrets)
    assert scrub("plain text", secrets) == "plain text"


# -- 4. $WEAVE_HOME is private: 0700 folders, 0600 files, whatever the umask ------------------

def _modes(home):
    import stat

    out = {str(home): stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        out[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return out


@pytest.fixture
def open_umask():
    import os

    old = os.umask(0)  # the most permissive umask: modes must come from the code, not the umask
    yield
    os.umask(old)


def test_a_local_deploy_leaves_only_private_files_in_the_home(weave_home, mock_weave, open_umask):
    import os

    from weave_nb.core.manager import DeploymentManager

    mgr = DeploymentManager(home=weave_home)
    info = mgr.deploy({"name": "modes", "weave_file": str(mock_weave), "env": {"API_TOKEN": "tok-1234"}})
    mgr.invoke("modes", payload={"input": "hi"})  # the server writes its log
    mgr.deploy({"name": "modes", "weave_file": str(mock_weave), "env": {"API_TOKEN": "tok-5678"}})  # a redeploy
    modes = _modes(weave_home)
    assert "inventory.db" in modes and any(p.endswith("server.log") for p in modes)
    assert any(p.endswith("artifact.zip") for p in modes) and any(p.endswith("weave.json") for p in modes)
    loose = {p: oct(m) for p, m in modes.items()
             if m != (0o700 if os.path.isdir(os.path.join(weave_home, p)) else 0o600)}
    assert loose == {}, f"not private: {loose}"
    assert info.endpoint


def test_an_existing_home_is_tightened(tmp_path, open_umask):
    from weave_nb.core.inventory import Inventory

    home = tmp_path / "old-home"
    (home / "locks").mkdir(parents=True, mode=0o755)
    home.chmod(0o755)
    (home / "inventory.db").touch(mode=0o644)
    Inventory(home)
    modes = _modes(home)
    assert modes[str(home)] == 0o700 and modes["locks"] == 0o700 and modes["inventory.db"] == 0o600


def test_kept_lambda_packages_are_private(tmp_path, open_umask):
    """The aws provider keeps each release's zip under $WEAVE_HOME/aws/<name>/ for `weave invoke --local`."""
    from types import SimpleNamespace

    from weave_nb.core.artifact import build_artifact
    from weave_nb.core.inventory import Inventory
    from weave_nb.core.plan import PlannedStep
    from weave_nb.spec.model import parse_weave

    pytest.importorskip("botocore")
    from weave_nb.providers.aws.provider import AwsProvider

    home = tmp_path / "home"
    inventory = Inventory(home)
    step = PlannedStep(key="zip", resource="package", action="create", call="keep_zip",
                       params={"path": str(home / "aws" / "demo" / "0123456789abcdef.zip")})
    run = SimpleNamespace(artifact=build_artifact(parse_weave(BASE)), ctx=SimpleNamespace(inventory=inventory, name="demo"))
    path = Path(AwsProvider.apply_keep_zip(None, run, step)["zip"])
    assert path.is_file()
    loose = {p: oct(m) for p, m in _modes(home).items() if m not in (0o700, 0o600)}
    assert loose == {}, f"not private: {loose}"


# -- 5. the Lambda execution role may write only its own function's logs -------------------------

def test_log_policy_is_scoped_to_the_functions_own_log_group():
    import json

    from weave_nb.providers.aws.settings import LOG_POLICY_NAME, log_policy_document

    doc = log_policy_document("eu-west-1", "123456789012", "weave-demo")
    group = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/weave-demo"
    assert doc["Version"] == "2012-10-17"
    grants = {}
    for st in doc["Statement"]:
        assert st["Effect"] == "Allow"
        for action in [st["Action"]] if isinstance(st["Action"], str) else st["Action"]:
            grants[action] = sorted([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])
    assert grants == {
        "logs:CreateLogGroup": sorted([group, group + ":*"]),
        "logs:CreateLogStream": [group + ":*"],
        "logs:PutLogEvents": [group + ":*"],
    }
    text = json.dumps(doc)
    assert '"*"' not in text and "logs:*" not in text and len(text) < 2048
    assert LOG_POLICY_NAME and json.loads(text) == doc


def test_log_policy_follows_the_partition():
    from weave_nb.providers.aws.settings import log_policy_document

    doc = log_policy_document("cn-north-1", "123456789012", "f")
    assert all(r.startswith("arn:aws-cn:logs:cn-north-1:123456789012:log-group:/aws/lambda/f")
               for st in doc["Statement"] for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))


@pytest.mark.parametrize("region, account, fname", [
    ("eu-west-1", "*", "weave-demo"),                 # any account
    ("eu-west-1", "12345678901", "weave-demo"),       # 11 digits
    ("*", "123456789012", "weave-demo"),              # any region
    ("eu-west-1:123456789012:log-group:x", "123456789012", "f"),
    ("eu-west-1", "123456789012", "*"),               # every function's logs
    ("eu-west-1", "123456789012", "weave-*"),
    ("eu-west-1", "123456789012", "a:b"),
    ("eu-west-1", "123456789012", ""),
    ("eu-west-1", "123456789012", "weave-demo\n"),  # '$' alone would let a newline through
    ("eu-west-1", "123456789012\n", "weave-demo"),
])
def test_log_policy_refuses_wildcards_and_malformed_parts(region, account, fname):
    from weave_nb.providers.aws.settings import log_policy_document

    with pytest.raises(ValueError):
        log_policy_document(region, account, fname)
