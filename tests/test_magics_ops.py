"""%weave_bench and %weave_alarm in a real InteractiveShell against a real local deployment (a real process)."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from conftest import MOCK_WEAVE, undeploy_all_local
from weave_nb.core.manager import DeploymentManager
from weave_nb.frontends.magics import WeaveMagics


@pytest.fixture
def env(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    shell = InteractiveShell.instance()
    mgr = DeploymentManager(home=home)
    answers: list[str] = []
    magics = WeaveMagics(shell, manager=mgr, ask=lambda prompt: answers.pop(0))
    magics.progress = "text"
    shell.register_magics(magics)
    weave = tmp_path / "chain.weave.yaml"
    weave.write_text(MOCK_WEAVE)
    mgr.deploy({"name": "demo", "weave_file": str(weave)})
    yield type("Env", (), {"shell": shell, "mgr": mgr, "answers": answers})
    undeploy_all_local(home)


def test_weave_bench_returns_one_row_per_request_and_draws_the_histogram(env, capsys, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objs, **kw: shown.extend(objs) or _Handle(shown))
    frame = env.shell.run_line_magic("weave_bench", 'demo -n 12 -c 3 --input "tides"')
    assert isinstance(frame, pd.DataFrame) and len(frame) == 12
    assert (frame["status"] == 200).all() and frame["latency_ms"].gt(0).all()
    out = capsys.readouterr().out
    assert "demo on local: 12 requests, 3 concurrent" in out and "p95" in out
    pngs = [o for o in shown if type(o).__name__ == "Image"]
    assert len(pngs) == 1 and pngs[0].data[:8] == b"\x89PNG\r\n\x1a\n"  # the histogram, as a PNG
    lines = [o for o in shown if type(o).__name__ == "Pretty"]
    assert lines and "0/12" in lines[0].data  # the redrawn progress line (text mode), later updated to 12/12
    assert any("12/12" in getattr(o, "data", "") for o in shown)


def test_weave_bench_asks_before_more_than_1000_and_refuses_unknown_names(env, capsys):
    env.answers.append("n")
    assert env.shell.run_line_magic("weave_bench", "demo -n 1001") is None
    assert "cancelled: nothing was sent" in capsys.readouterr().out
    with pytest.raises(UsageError, match="no deployment named 'ghost'"):
        env.shell.run_line_magic("weave_bench", "ghost -n 2")


def test_weave_alarm_on_local_is_a_usage_error_and_invoke_stdin_is_refused(env):
    with pytest.raises(UsageError, match="alarms are not available on local"):
        env.shell.run_line_magic("weave_alarm", "demo --p95-ms 500")
    with pytest.raises(UsageError, match="standard input"):
        env.shell.run_line_magic("weave_invoke", "demo --input -")
    answer = env.shell.run_line_magic("weave_invoke", "demo --input tides --timeout 20")
    assert answer["weave"] == "chain"


class _Handle:
    """What ``display(..., display_id=True)`` returns: ``update`` shows the new object too."""

    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(obj)
