"""weave releases / rollback / promote, their magics and the Python API, on real local deployments."""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import weave_nb
from weave_nb.frontends.magics import WeaveFailure, WeaveMagics

from conftest import MOCK_WEAVE
from support import weave_cli  # noqa: E402


weave = weave_cli  # the CLI in this process (tests/support.py)


def two_releases(path, name: str) -> None:
    path.write_text(MOCK_WEAVE)
    assert weave("deploy", "--name", name, "--config", str(path))[0] == 0
    path.write_text(MOCK_WEAVE.replace("fetch then draft", "fetch and draft"))
    assert weave("deploy", "--name", name, "--config", str(path))[0] == 0


def test_cli_releases_rollback_and_errors(weave_home, tmp_path):
    two_releases(tmp_path / "w.weave.yaml", "clirel")
    code, out, err = weave("releases", "clirel")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["NUMBER", "STATE", "VERSION_ID", "TRAFFIC"]
    assert [line.split()[:2] for line in lines[1:]] == [["2", "live"], ["1", "previous"]]
    code, out, _ = weave("releases", "clirel", "--output", "json")
    rows = json.loads(out)
    assert [(r["number"], r["state"], r["traffic"]) for r in rows] == [(2, "live", "100%"), (1, "previous", None)]

    code, out, _ = weave("rollback", "clirel", "--dry-run")
    assert code == 0 and out.startswith("Rollback plan for clirel on local:") and "release 1" in out
    code, out, err = weave("rollback", "clirel")
    assert code == 0, err
    assert "rolled back: v1 is live again" in out
    assert [r["state"] for r in json.loads(weave("releases", "clirel", "--output", "json")[1])] == ["previous", "live"]

    code, _, err = weave("rollback", "clirel", "--to", "9")
    assert code == 1 and "no release 9" in err
    code, _, err = weave("promote", "clirel")
    assert code != 0 and "no canary to promote" in err
    code, _, err = weave("deploy", "--name", "clirel", "--config", str(tmp_path / "w.weave.yaml"), "--canary", "10")
    assert code != 0 and "local provider has no canary" in err
    assert weave("undeploy", "clirel", "--force")[0] == 0


def test_magics_and_python_api(weave_home, tmp_path):
    two_releases(tmp_path / "w.weave.yaml", "magrel")
    shell = InteractiveShell.instance()
    magics = WeaveMagics(shell)
    magics.stream = False
    shell.register_magics(magics)
    try:
        frame = shell.run_line_magic("weave_releases", "magrel")
        assert list(frame["state"]) == ["live", "previous"] and list(frame["number"]) == [2, 1]
        assert str(frame["created_at"].dtype) == "datetime64[ns, UTC]"
        plan = shell.run_line_magic("weave_rollback", "magrel --dry-run")
        assert plan.operation == "rollback"
        info = shell.run_line_magic("weave_rollback", "magrel")
        assert info.message == "rolled back: v1 is live again"
        with pytest.raises(UsageError, match="no canary to promote"):
            shell.run_line_magic("weave_promote", "magrel")
        with pytest.raises((UsageError, WeaveFailure), match="no release 5"):
            shell.run_line_magic("weave_rollback", "magrel --to 5")
    finally:
        shell.magics_manager.registry.pop("WeaveMagics", None)

    again = weave_nb.rollback("magrel", to=2, sink=lambda event: None)
    assert again.message == "rolled back: v2 is live again"
    listed = weave_nb.releases("magrel", as_frame=False)
    assert [(r.number, r.state) for r in listed] == [(2, "live"), (1, "previous")]
    assert isinstance(listed[0], weave_nb.Release)
