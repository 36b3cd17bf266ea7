"""The front-end core shared by the CLI, the magics, the widgets and the Python API.

Provider options from each provider's options model (help and friendly
errors), the error classifier, the invoke payload, the status filter, and
provider resolution giving the same NotFound in every front end.
"""

from __future__ import annotations


import pytest
from frontend_fakes import HELLO, make_provider
from pydantic import BaseModel, ConfigDict, Field

from weave_nb.frontends import cli
from weave_nb.core.config import DeploymentConfig
from weave_nb.core.errors import ConfigError
from support import weave_cli  # noqa: E402


class FolderOptions(BaseModel):
    """A plug-in's options."""

    model_config = ConfigDict(extra="forbid")

    bucket_path: str = Field(default="/srv/weaves", description="where the weaves are copied")
    replicas: int = Field(default=1, ge=1, le=5, description="how many copies run")


weave = weave_cli  # the CLI in this process (tests/support.py)


# ----------------------------------------------------------------------------- provider options
def test_a_bad_option_is_reported_in_plain_words_with_a_did_you_mean():
    provider = make_provider()(auth=None)
    provider.options_model = FolderOptions
    provider.name = "folder"
    with pytest.raises(ConfigError) as caught:
        provider.options(DeploymentConfig(name="x", options={"bucket_pth": "/x", "replicas": 9}))
    message, hint = caught.value.message, caught.value.suggestion
    assert message == ("invalid folder options: replicas must be less than or equal to 5; "
                       "unknown option 'bucket_pth' (did you mean 'bucket_path'?)")
    assert "Extra inputs" not in message and "Input should" not in message
    assert hint == "the folder options are: bucket_path, replicas; `weave deploy --help` describes them"


def test_the_cli_reports_a_mistyped_option_of_a_built_in_provider(weave_home, mock_weave):
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave), "-o", "startup_timeot=3")
    assert code == 2
    assert "unknown option 'startup_timeot' (did you mean 'startup_timeout'?)" in err
    assert "not permitted" not in err


def test_deploy_help_lists_every_providers_options_from_its_model(monkeypatch):
    """A plug-in's options show up in ``weave deploy --help`` and ``%weave_deploy -h`` like the built-ins'."""
    from weave_nb.core import registry

    plugin = type("FolderProvider", (make_provider(),), {"options_model": FolderOptions})
    real_load = registry.load_provider_class
    monkeypatch.setattr(registry, "provider_names", lambda: ["local", "docker", "folder"])
    monkeypatch.setattr(registry, "load_provider_class", lambda name: plugin if name == "folder" else real_load(name))
    code, out, _ = weave("deploy", "--help")
    assert code == 0
    listed = out.split("provider options (--option KEY=VALUE, repeatable):", 1)[1]
    assert "startup_timeout=float" in listed and "seconds to wait for /health" in listed  # local
    assert "health_timeout=float" in listed  # docker
    assert "  folder:" in listed and "bucket_path=str" in listed and "where the weaves are copied" in listed
    assert "replicas=int" in listed and "(default 1)" in listed

    from weave_nb.frontends.magics import WeaveMagics

    assert "bucket_path=str" in WeaveMagics.weave_deploy.parser.format_help()


# ----------------------------------------------------------------------------- one NotFound everywhere
NOT_FOUND = "no deployment named 'ghost' in the inventory (providers searched: "


@pytest.fixture
def mgr(weave_home):
    from weave_nb.core.manager import DeploymentManager

    return DeploymentManager(home=weave_home, providers={"slow": make_provider()})


def test_an_unknown_deployment_is_the_same_not_found_in_every_front_end(mgr, monkeypatch):
    """CLI, magics and Python API: the manager's NotFound, never a silent fall back to local."""
    import weave_nb
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.core.errors import NotFound
    from weave_nb.frontends.magics import WeaveMagics

    weave_nb.deploy("real", "slow", weave_text=HELLO, sink=lambda e: None, manager=mgr)
    monkeypatch.setattr(cli, "_manager", lambda: mgr)
    for argv in (["status", "ghost"], ["invoke", "ghost"], ["logs", "ghost"], ["undeploy", "ghost", "-f"]):
        code, out, err = weave(*argv)
        assert code == 1 and err.startswith("error: " + NOT_FOUND), (argv, err)
        assert "local, aws, gcp, docker, slow)" in err and "hint: list them with `weave deployments`" in err
    for call in (weave_nb.status, weave_nb.invoke, weave_nb.logs, weave_nb.undeploy):
        with pytest.raises(NotFound) as caught:
            call("ghost", manager=mgr)
        assert caught.value.message.startswith(NOT_FOUND)
    shell = InteractiveShell.instance()
    magics = WeaveMagics(shell, manager=mgr)
    magics.default_provider = "slow"  # a deploy default, not a guess for an unknown name
    for magic in (magics.weave_status, magics.weave_invoke, magics.weave_logs, magics.weave_undeploy):
        with pytest.raises(UsageError) as caught:
            magic("ghost --force" if magic == magics.weave_undeploy else "ghost")
        assert str(caught.value).startswith(NOT_FOUND)
    assert weave("status", "real")[0] == 0, "a recorded one is found on its provider"


# ----------------------------------------------------------------------------- the error classifier
def test_classify_decides_kind_exit_code_and_hint_once():
    from weave_nb.core.errors import (CredentialsError, DeploymentBusy, DeploymentFailed, NotFound, ProviderUnavailable,
                                 WeaveSpecError)
    from weave_nb.frontends.shared import classify

    for exc in (ConfigError("m", "s"), WeaveSpecError("m", "s"), ProviderUnavailable("m", "s"), CredentialsError("m", "s")):
        verdict = classify(exc)
        assert (verdict.kind, verdict.exit_code, verdict.user_mistake) == ("usage", 2, True)
        assert verdict.text() == "error: m\n  hint: s" and verdict.plain() == "m\n  hint: s"
    assert (classify(NotFound("m")).kind, classify(NotFound("m")).exit_code, classify(NotFound("m")).user_mistake) == ("not_found", 1, True)
    for exc in (DeploymentFailed("m", "s"), DeploymentBusy("m", "s")):
        assert (classify(exc).kind, classify(exc).exit_code, classify(exc).user_mistake) == ("failed", 1, False)
    stop = classify(KeyboardInterrupt(), undeploy="%weave_undeploy")
    assert stop.kind == "interrupted" and stop.text().startswith("interrupted: run the same command again") and "%weave_undeploy" in stop.text()
    bug = classify(KeyError("k"), verbose=False)
    assert bug.text() == "error: unexpected KeyError: 'k'\n  hint: run again with --verbose for the traceback"
    assert classify(KeyError("k")).suggestion == "this is a bug; please report it"


def test_hint_lines_and_status_colours_are_written_in_one_module():
    """``hint:`` and colour codes live in weave_nb/core/present.py only (no copies in the front ends)."""
    import ast
    import re
    from pathlib import Path

    import weave_nb

    root = Path(weave_nb.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "present.py" or "runtime" in path.parts or "emulators" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "hint: " in node.value or re.search(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?\b", node.value):
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {node.value[:40]!r}")
    assert not offenders, offenders


# ----------------------------------------------------------------------------- payload and status filter
def test_invoke_payload_takes_input_weave_and_json():
    from weave_nb.frontends.shared import invoke_payload

    assert invoke_payload("hi") == {"input": "hi"}
    assert invoke_payload("hi", "w") == {"input": "hi", "weave": "w"}
    assert invoke_payload("", None, '{"input": "from json", "weave": "a", "extra": 1}') == {"input": "from json", "weave": "a", "extra": 1}
    assert invoke_payload("flag", "b", {"input": "j", "weave": "a"}) == {"input": "flag", "weave": "b"}
    with pytest.raises(ConfigError, match="--json is not valid JSON"):
        invoke_payload("", None, "{nope")
    with pytest.raises(ConfigError, match="--json must be a JSON object"):
        invoke_payload("", None, "[1, 2]")


def test_invoke_json_reaches_the_weave_from_the_cli_and_the_api(mgr, monkeypatch):
    import json

    import weave_nb

    weave_nb.deploy("svc", "slow", weave_text=HELLO, sink=lambda e: None, manager=mgr)
    monkeypatch.setattr(cli, "_manager", lambda: mgr)
    code, out, err = weave("invoke", "svc", "--json", '{"input": "from json", "weave": "greet"}')
    assert code == 0, err
    assert json.loads(out) == {"weave": "greet", "input": "from json", "output": "echo: from json"}
    code, out, err = weave("invoke", "svc", "--json", "{nope")
    assert code == 2 and "--json is not valid JSON" in err
    assert weave_nb.invoke("svc", data={"input": "d"}, manager=mgr)["output"] == "echo: d"


def test_the_status_filter_is_shared_and_checked(mgr, monkeypatch):
    import weave_nb

    weave_nb.deploy("one", "slow", weave_text=HELLO, sink=lambda e: None, manager=mgr)
    assert list(weave_nb.deployments("slow", "ACTIVE", manager=mgr)["name"]) == ["one"]
    with pytest.raises(ConfigError, match=r"unknown status 'actve' \(did you mean 'active'\?\)"):
        weave_nb.deployments("slow", "actve", manager=mgr)
    assert [d.name for d in mgr.list("slow").only("failed")] == []


class TypedOptions(BaseModel):
    """Options of several types, as a plug-in may declare them."""

    model_config = ConfigDict(extra="forbid")

    python_version: str = "3.12"
    replicas: int = 1
    ratio: float = 0.5
    fast: bool = False


def test_option_values_are_converted_by_the_providers_model_not_guessed(weave_home, mock_weave, monkeypatch):
    """``-o python_version=3.10`` stays the text "3.10" (it used to become the number 3.1 and be refused)."""
    from weave_nb.core.manager import DeploymentManager

    typed = type("TypedProvider", (make_provider(),), {"options_model": TypedOptions})
    mgr = DeploymentManager(home=weave_home, providers={"slow": typed})
    monkeypatch.setattr(cli, "_manager", lambda: mgr)
    code, out, err = weave("deploy", "-n", "typed", "-p", "slow", "-c", str(mock_weave), "-o", "python_version=3.10",
                           "-o", "replicas=2", "-o", "ratio=2", "-o", "fast=yes")
    assert code == 0, err
    opts = typed(None).options(typed.seen[-1])
    assert (opts.python_version, opts.replicas, opts.ratio, opts.fast) == ("3.10", 2, 2.0, True)


def test_every_dedicated_option_flag_is_an_option_of_some_provider():
    """The shortcut flags (--endpoint, --base-image, ...) name fields of the providers' options models."""
    from weave_nb.frontends.arguments import OPTION_FLAGS
    from weave_nb.core.registry import BUILTINS, load_provider_class

    fields = set()
    for name in BUILTINS:
        fields |= set(load_provider_class(name).options_model.model_fields)
    assert set(OPTION_FLAGS) - fields == set()


def test_deployment_settings_errors_are_plain_words_too(weave_home):
    import weave_nb

    with pytest.raises(ConfigError) as caught:
        weave_nb.plan("x", "local", weave_text=HELLO, regoin="eu-1", memory_mb=-4)
    assert caught.value.message == ("invalid deployment settings: memory_mb: must be greater than 0; "
                                    "regoin: unknown setting (did you mean 'region'?)")


# ----------------------------------------------------------------------------- colours follow JupyterLab's theme
def test_every_colour_the_html_output_sets_is_a_jupyterlab_theme_variable():
    import re

    from weave_nb.core.config import DeploymentInfo, DeploymentStatus
    from weave_nb.core.events import Done, LogLine, StepFinished, StepStarted, WarningEvent
    from weave_nb.core.present import PALETTE, deployment_html, deployments_html, hint_html, notes_html
    from weave_nb.frontends.progress import ProgressState
    from weave_nb.sandbox.session import SandboxStatus, Service

    info = DeploymentInfo(name="demo", provider="local", status=DeploymentStatus.FAILED, region="r", endpoint="http://x",
                          details={"sandbox": True}, message="boom")
    state = ProgressState("deploy demo")
    for event in (StepStarted("a", "first", 1, 2), StepFinished("a", "ok"), StepStarted("b", "second", 2, 2),
                  StepFinished("b", "failed"), WarningEvent("careful"), LogLine("a log line"),
                  Done(ok=False, message="it failed", suggestion="try again")):
        state.apply(event)
    pages = [
        deployment_html(info), deployments_html([info.row()], ["name", "status"], ["a note"]), hint_html("do this"),
        notes_html(["n"]), state.render_html(),
        SandboxStatus(running=True, services=(Service(name="aws", url="http://127.0.0.1:1", pid=1, log="l"),))._repr_html_(),
        SandboxStatus(running=False)._repr_html_(),
    ]
    found = []
    for page in pages:
        for prop, value in re.findall(r"(color|background|border[\w-]*)\s*:\s*([^;'\"]+)", page):
            found.append(value)
            assert "var(--jp-" in value, f"{prop}: {value} is not a JupyterLab variable in {page[:200]}"
            assert not re.search(r"^\s*#[0-9a-fA-F]{3,6}", value), value
    assert len(found) >= 10
    assert all(v.startswith("var(--jp-") for v in PALETTE.values())
    banner = pages[-2]
    assert "background:var(--jp-layout-color2" in banner and "color:var(--jp-content-font-color1" in banner, \
        "the banner sets its text colour with its background, so the pair stays readable in both themes"
