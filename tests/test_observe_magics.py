"""%weave_logs and %weave_metrics in a real InteractiveShell, on a real local deployment; the metrics plots."""

from __future__ import annotations

import json
import threading
import urllib.request

import pandas as pd
import pytest
from conftest import MOCK_WEAVE, undeploy_all_local
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import weave_nb
from weave_nb.core.manager import DeploymentManager
from weave_nb.core.procutil import wait_for
from weave_nb.frontends.magics import WeaveMagics


def call(endpoint: str, request_id: str) -> None:
    req = urllib.request.Request(endpoint, data=json.dumps({"input": "tides"}).encode(),
                                 headers={"content-type": "application/json", "X-Request-Id": request_id})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200


@pytest.fixture
def session(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    shell = InteractiveShell.instance()
    mgr = DeploymentManager(home=home)
    magics = WeaveMagics(shell, manager=mgr)
    shell.register_magics(magics)
    weave_file = tmp_path / "chain.weave.yaml"
    weave_file.write_text(MOCK_WEAVE)
    info = mgr.deploy({"name": "nb", "weave_file": str(weave_file)})
    yield shell, mgr, info
    undeploy_all_local(home)
    from weave_nb.frontends.magics import unload_ipython_extension

    unload_ipython_extension(shell)


def test_weave_logs_magic_takes_the_cli_flags(session, capsys):
    shell, mgr, info = session
    for i in range(3):
        call(info.endpoint, f"nb-{i}")
    assert wait_for(lambda: "nb-2" in mgr.logs("nb"), 5)
    capsys.readouterr()
    shell.run_line_magic("weave_logs", 'nb --since 10m --filter "nb-1"')
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and '"request_id":"nb-1"' in out[0] and out[0][:4].isdigit()
    shell.run_line_magic("weave_logs", "nb --filter weave.request --tail 2")
    assert [line.count("nb-") for line in capsys.readouterr().out.splitlines()] == [1, 1]
    shell.run_line_magic("weave_logs", "nb --filter absent-text")
    assert capsys.readouterr().out == "no log lines for 'nb' on local containing 'absent-text'\n"
    with pytest.raises(UsageError, match="--since"):
        shell.run_line_magic("weave_logs", "nb --since soon")


def test_weave_logs_follow_streams_until_interrupted(session, capsys, monkeypatch):
    """The magic prints each new line; a kernel interrupt (KeyboardInterrupt) ends it quietly."""
    shell, mgr, info = session
    call(info.endpoint, "req-early")
    printed: list[str] = []
    real_print = print

    def fake_print(*args, **kwargs):
        text = " ".join(str(a) for a in args)
        printed.append(text)
        if "req-late" in text:
            raise KeyboardInterrupt  # what Jupyter's interrupt button raises in the cell
        real_print(*args, **kwargs)

    monkeypatch.setattr("builtins.print", fake_print)
    done = threading.Event()

    def run() -> None:
        shell.run_line_magic("weave_logs", "nb --follow --filter weave.request")
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert wait_for(lambda: any("req-early" in p for p in printed), 10)
    call(info.endpoint, "req-late")
    assert done.wait(5), "the follow did not end on the interrupt"
    assert [("req-early" in p, "req-late" in p) for p in printed] == [(True, False), (False, True)]


def test_weave_metrics_returns_a_typed_frame_and_draws(session, capsys):
    shell, mgr, info = session
    for i in range(6):
        call(info.endpoint, f"m-{i}")
    assert wait_for(lambda: "m-5" in mgr.logs("nb"), 5)
    result = shell.run_cell("df = %weave_metrics nb --since 10m", store_history=False)
    assert result.error_in_exec is None
    df = shell.user_ns["df"]
    out = capsys.readouterr().out
    assert "requests      6" in out and "<IPython.core.display.Image object>" in out
    assert list(df["request_id"]) == [f"m-{i}" for i in range(6)]
    assert str(df["time"].dtype) == "datetime64[ns, UTC]"
    assert df["status"].dtype == "int64" and df["duration_ms"].dtype == "float64"
    assert df["input_tokens"].dtype == "int64" and df["output_tokens"].dtype == "int64"
    assert [c for c in df.columns if c.startswith("agent:")] == ["agent:fetcher", "agent:drafter", "agent:summarizer"]
    assert df["agent:fetcher"].dtype == "float64" and df["agent:fetcher"].notna().all()

    api = weave_nb.metrics("nb", since="10m", manager=mgr)
    assert isinstance(api, pd.DataFrame) and list(api["request_id"]) == list(df["request_id"])
    summary = weave_nb.metrics("nb", since="10m", summary=True, manager=mgr)
    assert summary.requests == 6 and summary.errors == 0
    assert summary.p50_ms == sorted(df["duration_ms"])[2]
    assert [e.text for e in weave_nb.read_logs("nb", filter="m-3", manager=mgr)][0].count("m-3") == 1


def test_metrics_figure_has_the_three_plots(session):
    from weave_nb.core.records import read_requests, requests_frame
    from weave_nb.frontends.observe import figure_png, metrics_figure

    shell, mgr, info = session
    for i in range(4):
        call(info.endpoint, f"f-{i}")
    assert wait_for(lambda: len(read_requests(mgr, "nb", since="10m")) == 4, 5)
    frame = requests_frame(read_requests(mgr, "nb", since="10m"))
    fig = metrics_figure(frame, "nb on local")
    over_time, histogram, per_agent = fig.axes
    assert over_time.get_title() == "latency over time" and len(over_time.lines[0].get_xdata()) == 4
    assert histogram.get_title() == "latency histogram" and sum(p.get_height() for p in histogram.patches) == 4
    assert per_agent.get_title().startswith("time per agent")
    assert len(per_agent.patches) == 4 * 3  # one bar per request for each of the three agents
    assert [t.get_text() for t in per_agent.get_legend().get_texts()] == ["fetcher", "drafter", "summarizer"]
    assert figure_png(fig).startswith(b"\x89PNG")


def test_no_requests_yet_is_said_plainly(session, capsys):
    shell, mgr, info = session
    df = shell.run_line_magic("weave_metrics", "nb --since 2099-01-01T00:00:00Z")
    assert len(df) == 0 and list(df.columns)[:3] == ["time", "request_id", "deployment"]
    assert capsys.readouterr().out == "no requests recorded for 'nb' on local since 2099-01-01T00:00:00.000Z\n"
