"""The Python API (weave_nb.deploy, plan, deployments, undeploy, status, invoke, logs) over a real inventory."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from frontend_fakes import HELLO, make_provider, weave_text

import weave_nb
from weave_nb.core.config import DeploymentStatus
from weave_nb.core.errors import NotFound
from weave_nb.core.manager import DeploymentManager
from weave_nb.frontends.render import line_sink


@pytest.fixture
def mgr(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    return DeploymentManager(home=tmp_path / "home", providers={"slow": make_provider()})


def test_public_surface():
    import weave_nb.core.http_call  # noqa: F401 - the HTTP helper module, loaded by providers

    for name in ("deploy", "plan", "deployments", "undeploy", "status", "invoke", "logs", "provider_options"):
        assert name in weave_nb.__all__ and callable(getattr(weave_nb, name))


def test_public_surface_holds_the_errors_spec_and_sandbox_and_resolves_every_name():
    from weave_nb import sandbox, spec
    from weave_nb.core import errors

    for name in ("WeaveError", "WeaveSpecError", "ConfigError", "ProviderUnavailable", "CredentialsError",
                 "DeploymentFailed", "DeploymentBusy", "NotFound", "ForeignResource", "InventoryError"):
        assert name in weave_nb.__all__ and getattr(weave_nb, name) is getattr(errors, name)
    assert weave_nb.WeaveSpec is spec.WeaveSpec and weave_nb.load_weave is spec.load_weave
    assert weave_nb.Sandbox is sandbox.Sandbox
    assert {"WeaveSpec", "load_weave", "parse_weave", "Sandbox", "effective_status"} <= set(weave_nb.__all__)
    for name in weave_nb.__all__:
        assert getattr(weave_nb, name) is not None, name
    assert set(weave_nb.__all__) <= set(dir(weave_nb))
    with pytest.raises(AttributeError):
        weave_nb.no_such_name  # noqa: B018


def test_except_weave_nb_not_found_catches_the_managers_error(mgr):
    try:
        weave_nb.status("ghost", manager=mgr)
    except weave_nb.NotFound as exc:
        assert "no deployment named 'ghost'" in exc.message
    else:
        raise AssertionError("no NotFound")
    assert issubclass(weave_nb.NotFound, weave_nb.WeaveError)


def test_import_weave_nb_is_cheap():
    """``import weave_nb`` loads no pydantic, cloud SDK, pandas, IPython, ipywidgets or YAML parser."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "before = set(sys.modules)\n"  # e.g. a namespace package a .pth file loads at start-up
        "import weave_nb\n"
        "heavy = ('pydantic', 'boto3', 'botocore', 'google', 'docker', 'pandas', 'IPython', 'ipywidgets', 'yaml')\n"
        "print(sorted(m for m in heavy if m in set(sys.modules) - before))\n"
        "print(weave_nb.WeaveSpec.__name__, weave_nb.deploy.__module__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines() == ["[]", "WeaveSpec weave_nb.frontends.api"], done.stdout


def test_api_round_trip(mgr, capsys):
    plan = weave_nb.plan("api1", "slow", weave_text=HELLO, manager=mgr)
    assert [s.action for s in plan.steps] == ["create", "create"] and mgr.inventory.list() == []
    info = weave_nb.deploy("api1", "slow", weave_text=HELLO, env={"K": "secret-value"}, region="r-1", manager=mgr)
    assert info.status == DeploymentStatus.ACTIVE and info.region == "r-1"
    printed = capsys.readouterr().out
    assert "build the image" in printed and "secret-value" not in printed
    stream = io.StringIO()
    weave_nb.deploy("api2", weave_text=weave_text(provider="slow"), defaults={"region": "d-1"}, sink=line_sink(stream), manager=mgr)
    assert mgr.inventory.get("slow", "api2").region == "d-1" and "run the service" in stream.getvalue()
    df = weave_nb.deployments(provider="slow", manager=mgr)
    assert isinstance(df, pd.DataFrame) and list(df["name"]) == ["api2", "api1"]
    assert isinstance(df["updated_at"].dtype, pd.DatetimeTZDtype)
    assert len(weave_nb.deployments(provider="slow", status="FAILED", manager=mgr)) == 0
    assert weave_nb.status("api1", "slow", manager=mgr).health == "healthy"
    assert weave_nb.invoke("api1", "yo", "slow", manager=mgr)["output"] == "echo: yo"
    assert weave_nb.logs("api1", "slow", manager=mgr) == "log of api1"
    assert weave_nb.undeploy("api1", "slow", manager=mgr).status == DeploymentStatus.DESTROYED
    with pytest.raises(NotFound):
        weave_nb.undeploy("api1", "slow", manager=mgr)


def test_provider_is_found_from_the_inventory(mgr):
    """Like the CLI and the magics: without a provider, the one the deployment is recorded on."""
    from weave_nb.core.errors import ConfigError

    weave_nb.deploy("found", "slow", weave_text=HELLO, sink=lambda e: None, manager=mgr)
    assert weave_nb.status("found", manager=mgr).provider == "slow"
    assert weave_nb.invoke("found", "hi", manager=mgr)["output"] == "echo: hi"
    assert weave_nb.logs("found", manager=mgr) == "log of found"
    mgr._overrides["slow2"] = make_provider()
    weave_nb.deploy("found", "slow2", weave_text=HELLO, sink=lambda e: None, manager=mgr)
    with pytest.raises(ConfigError, match="several deployments are named 'found'"):
        weave_nb.status("found", manager=mgr)
    assert weave_nb.undeploy("found", "slow2", manager=mgr).provider == "slow2"
    assert weave_nb.undeploy("found", manager=mgr).provider == "slow"
    assert mgr.inventory.list() == []
    with pytest.raises(NotFound, match=r"no deployment named 'found' in the inventory \(providers searched: local, "):
        weave_nb.status("found", manager=mgr)  # never guessed to be on local


def test_deployments_frame_missing_values_health_words_and_failed_region(weave_home, mock_weave):
    """pandas' missing values per dtype (NA for text, NaT for times), one health vocabulary, failed rows keep their region."""
    import pandas as pd

    import weave_nb
    from weave_nb.core.config import DeploymentInfo, DeploymentStatus
    from weave_nb.frontends.frame import HEALTH, deployments_frame

    weave_nb.deploy("fine", "local", weave_file=str(mock_weave))
    with pytest.raises(weave_nb.WeaveError):
        weave_nb.deploy("broken", "local", weave_file=str(mock_weave), options={"python": "/bin/false"})
    df = weave_nb.deployments(provider="local")
    by = df.set_index("name")
    assert by.loc["broken", "status"] == "failed" and by.loc["broken", "region"] == "localhost"
    assert by.loc["fine", "health"] == "healthy" and by.loc["broken", "health"] in HEALTH
    for col in ("name", "provider", "status", "region", "endpoint", "drift", "health", "version", "message"):
        assert df[col].dtype == "string", (col, df[col].dtype)
        assert all(v is pd.NA or isinstance(v, str) for v in df[col]), (col, list(df[col]))
    weave_nb.undeploy("fine", "local")
    weave_nb.undeploy("broken", "local")

    words = {"active": "healthy", "running": "healthy", "gone": "missing", "function missing": "missing",
             "not running": "missing", "no container": "missing", "unhealthy": "unhealthy", "starting": "starting", None: None}
    infos = [DeploymentInfo(name=f"d{i}", provider="p", status=DeploymentStatus.ACTIVE, health=word)
             for i, word in enumerate(words)]
    frame = deployments_frame(infos).set_index("name")
    assert [None if v is pd.NA else v for v in frame.loc[[i.name for i in infos], "health"]] == list(words.values())
    assert frame["region"].isna().all() and frame["region"].iloc[0] is pd.NA
    empty = deployments_frame([])
    assert list(empty.dtypes.astype(str)) == [str(frame.reset_index()[c].dtype) for c in empty.columns]


def test_weave_error_in_ipython_is_its_message_and_hint_with_the_traceback_behind_a_flag(weave_home, monkeypatch):
    """The Python API in a cell shows a WeaveError as three short lines, not a 40-line traceback."""
    from IPython.core.interactiveshell import InteractiveShell

    import weave_nb.core.errors

    shell = InteractiveShell.instance()
    monkeypatch.delenv("WEAVE_TRACEBACKS", raising=False)
    shown: list[list[str]] = []
    monkeypatch.setattr(shell, "_showtraceback", lambda etype, evalue, stb: shown.append(stb))
    result = shell.run_cell("import weave_nb\nweave_nb.status('nobody', 'local')", store_history=False)
    assert isinstance(result.error_in_exec, weave_nb.core.errors.NotFound)
    (lines,) = shown
    text = "\n".join(lines)
    assert len(lines) == 3 and "no deployment named 'nobody'" in text
    assert text.count("no deployment named") == 1 and text.count("hint:") == 1
    assert "SHOW_TRACEBACKS = True" in lines[-1] and "Traceback" not in text
    monkeypatch.setattr(weave_nb.core.errors, "SHOW_TRACEBACKS", True)
    shell.run_cell("weave_nb.status('nobody', 'local')", store_history=False)
    assert len(shown[-1]) > 3 and "status(" in "\n".join(shown[-1]), "the full traceback, when asked for"


def test_api_undeploy_streams_its_steps_as_deploy_does(weave_home, mock_weave, capsys):
    import weave_nb

    weave_nb.deploy("streamed", "local", weave_file=str(mock_weave))
    capsys.readouterr()
    info = weave_nb.undeploy("streamed", "local")
    out = capsys.readouterr().out
    assert "Undeploy plan for streamed on local" in out and "==> [1/" in out and "OK streamed removed from local" in out
    assert info.status.value == "destroyed"


def test_api_invoke_of_a_sandbox_aws_deployment_runs_locally_and_says_so(weave_home, monkeypatch, capsys):
    from frontend_fakes import HELLO, make_provider

    import weave_nb
    from weave_nb.core.manager import DeploymentManager

    calls: list[bool] = []

    class SandboxAws(make_provider()):  # type: ignore[misc]
        def invoke(self, ctx, payload, local=False, timeout=60):
            calls.append(local)
            return {"output": "ok"}

    mgr = DeploymentManager(home=weave_home, providers={"aws": SandboxAws})
    monkeypatch.setenv("WEAVE_SANDBOX", "1")
    monkeypatch.setenv("WEAVE_SANDBOX_PROVIDERS", "aws")
    weave_nb.deploy("boxed", "aws", weave_text=HELLO, manager=mgr, sink=lambda event: None)
    capsys.readouterr()
    assert weave_nb.invoke("boxed", "hi", provider="aws", manager=mgr) == {"output": "ok"} and calls == [True]
    assert "note: sandbox: ran the deployed zip on this machine" in capsys.readouterr().out
