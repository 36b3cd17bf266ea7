"""Live progress: events folded into state, rendered as they arrive (widgets, HTML display, text lines)."""

from __future__ import annotations

import io
import threading

import pytest
from frontend_fakes import HELLO, make_provider
from IPython.core.interactiveshell import InteractiveShell

from weave_nb.core.config import Plan, PlannedStep
from weave_nb.core.events import (
    Done,
    LogLine,
    PlanReady,
    ProgressUpdate,
    StepFinished,
    StepStarted,
    WarningEvent,
)
from weave_nb.frontends.magics import WeaveMagics
from weave_nb.core.manager import DeploymentManager
from weave_nb.core.procutil import wait_for
from weave_nb.frontends.progress import (
    HtmlProgress,
    ProgressState,
    TextProgress,
    WidgetProgress,
    make_view,
)


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    return wait_for(condition, timeout, 0.005)


PLAN = Plan(
    provider="slow", name="demo",
    steps=[PlannedStep(key="build", resource="build the image", action="create"),
           PlannedStep(key="run", resource="run the service", action="create")],
)
EVENTS = [
    PlanReady(PLAN),
    StepStarted("build", "build the image", 1, 2),
    LogLine("Step 1/2 : FROM python:3.12-slim"),
    LogLine("<b>not html</b>"),
    StepFinished("build", "ok", seconds=1.5),
    ProgressUpdate(0.5),
    WarningEvent("the region is far away"),
    StepStarted("run", "run the service", 2, 2),
    StepFinished("run", "failed", detail="port taken"),
    Done(ok=False, message="deploy failed", suggestion="free the port"),
]


class FakeHandle:
    def __init__(self, log):
        self.log = log

    def update(self, obj):
        self.log.append(("update", obj))


def fake_display(log):
    def display(obj, display_id=False):
        log.append(("display", obj))
        assert display_id is True
        return FakeHandle(log)

    return display


def test_state_folds_events():
    state = ProgressState("deploy demo", log_lines=1)
    state.apply(EVENTS[0])
    assert [(s.key, s.state) for s in state.steps] == [("build", "pending"), ("run", "pending")]
    state.apply(EVENTS[1])
    assert state.steps[0].state == "running" and state.status == "running"
    for event in EVENTS[2:6]:
        state.apply(event)
    assert list(state.logs) == ["<b>not html</b>"], "only the latest log_lines are kept"
    assert state.steps[0].state == "ok" and state.fraction == 0.5
    for event in EVENTS[6:]:
        state.apply(event)
    assert state.steps[1].state == "failed" and state.status == "failed"
    text = state.render_text()
    assert "✗ run the service" in text and "port taken" in text and "hint: free the port" in text
    page = state.render_html()
    assert "&lt;b&gt;not html&lt;/b&gt;" in page and "<b>not html</b>" not in page
    assert "<progress value='0.500'" in page and "warning: the region is far away" in page


def test_text_view_prints_each_event_as_it_arrives():
    stream = io.StringIO()
    view = TextProgress(stream=stream)
    sizes = []
    for event in EVENTS[:3]:
        view(event)
        sizes.append(len(stream.getvalue()))
    assert sizes[0] < sizes[1] < sizes[2]
    assert "build the image" in stream.getvalue() and "Step 1/2" in stream.getvalue()


def test_html_view_displays_once_then_updates_in_place():
    log = []
    view = HtmlProgress("deploy demo", display=fake_display(log))
    assert log == [], "nothing shows before the first event"
    for event in EVENTS:
        view(event)
    assert log[0][0] == "display" and all(kind == "update" for kind, _ in log[1:])
    final = log[-1][1]
    assert "deploy failed" in final._repr_html_()
    assert repr(final).splitlines()[:2] == ["Plan for demo on slow:", "  + create    build the image"]
    assert "==> [2/2] run the service" in repr(final) and "ERROR deploy failed" in repr(final)


def test_widget_view_updates_widgets_then_leaves_a_static_copy():
    log = []
    view = WidgetProgress("deploy demo", interval=0).show(display=fake_display(log))
    view(EVENTS[0])
    assert log[0] == ("display", view.widget)
    view(EVENTS[1])
    assert "build the image" in view.steps_html.value
    for event in EVENTS[2:]:
        view(event)
    assert view.bar.bar_style == "danger" and "deploy failed" in view.done_html.value
    kind, snapshot = log[-1]
    assert kind == "update" and "run the service" in snapshot._repr_html_()


def test_throttled_log_lines_are_flushed_late():
    view = WidgetProgress("burst", interval=0.05)
    view(StepStarted("build", "build", 1, 1))
    for i in range(200):
        view(LogLine(f"line {i}"))
    assert wait_until(lambda: "line 199" in view.log_html.value, 5)
    view.close()


def test_close_without_events_shows_nothing_and_interrupt_marks_failure():
    log = []
    view = HtmlProgress(display=fake_display(log))
    view.close("bad flag")
    assert log == []
    view(EVENTS[1])
    view.close("interrupted")
    assert view.state.status == "failed" and "interrupted" in repr(log[-1][1])


def test_make_view_auto_is_text_outside_a_kernel():
    assert isinstance(make_view("auto", InteractiveShell.instance()), TextProgress)
    assert isinstance(make_view("text"), TextProgress)


# -- progress arrives while a deploy runs ---------------------------------------------------------
@pytest.fixture
def held(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    gate = threading.Event()
    provider = make_provider(gate)
    mgr = DeploymentManager(home=tmp_path / "home", providers={"slow": provider})
    yield gate, provider, mgr
    gate.set()


def run_in_background(fn):
    box = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


@pytest.mark.parametrize("mode", ["widgets", "html"])
def test_magic_renders_the_first_event_before_the_deploy_ends(held, mode, capsys):
    gate, provider, mgr = held
    shell = InteractiveShell.instance()
    magics = WeaveMagics(shell, manager=mgr)
    magics.progress = mode
    thread, box = run_in_background(lambda: magics.weave_deploy("--name live --provider slow", HELLO))
    assert provider.started.wait(10)
    if mode == "widgets":
        # what the widgets show, not just the state behind them
        assert wait_until(lambda: magics.last_view is not None and "Step 1/2" in magics.last_view.log_html.value)
        assert "▶ build the image" in magics.last_view.steps_html.value
    else:
        # a plain shell prints each display/update's text form
        shown = []
        assert wait_until(lambda: shown.append(capsys.readouterr().out) or "| Step 1/2" in "".join(shown))
        assert "▶ build the image" in "".join(shown)
    view = magics.last_view
    assert thread.is_alive() and "result" not in box, "the deploy must still be running"
    gate.set()
    thread.join(30)
    assert not thread.is_alive() and box["result"].status.value == "active"
    assert view.state.status == "done" and view.state.fraction == 1.0


def test_text_magic_prints_the_first_event_before_the_deploy_ends(held, capsys):
    gate, _, mgr = held
    magics = WeaveMagics(InteractiveShell.instance(), manager=mgr)
    magics.progress = "text"
    thread, box = run_in_background(lambda: magics.weave_deploy("--name lines --provider slow", HELLO))
    seen = []
    assert wait_until(lambda: seen.append(capsys.readouterr().out) or "Step 1/2" in "".join(seen))
    assert "==> [2/2] run the service" not in "".join(seen)
    assert thread.is_alive()
    gate.set()
    thread.join(30)
    seen.append(capsys.readouterr().out)
    assert "Step 2/2" in "".join(seen) and box["result"].name == "lines"


def test_bar_shows_percent_and_elapsed_and_a_failed_copy_is_not_blue():
    now = [100.0]
    state = ProgressState("deploy demo", clock=lambda: now[0])
    state.apply(EVENTS[0])
    now[0] = 102.5
    state.apply(ProgressUpdate(0.4))
    assert state.bar_label() == "40% · 2.5s" and "40% · 2.5s" in state.render_text()
    running = state.render_html()
    assert "accent-color:var(--jp-brand-color1" in running and "40% · 2.5s" in running
    for event in EVENTS[1:]:
        state.apply(event)
    now[0] = 200.0  # the end is fixed: the elapsed time stops with the Done event
    failed = state.render_html()
    assert "accent-color:var(--jp-error-color1" in failed and "brand-color" not in failed.split("</progress>")[0]
    assert state.bar_label().endswith("· 2.5s")


def test_widget_bar_row_matches_its_static_copy_and_the_elapsed_time_ticks():
    from weave_nb.frontends.progress import BAR_ROW, BAR_WIDTH

    log = []
    view = WidgetProgress("deploy demo", interval=0).show(display=fake_display(log))
    view(EVENTS[0])
    view(ProgressUpdate(0.25))
    assert view.bar_label.value.startswith("25% · ")
    first = view.bar_label.value
    assert wait_until(lambda: view.bar_label.value != first, 5), "the elapsed time moves while a step sends nothing"
    # the live row and the static copy's row have the same width and height, so the swap does not jump
    assert (view.bar.layout.width, view.bar_row.layout.height) == (BAR_WIDTH, BAR_ROW)
    for event in EVENTS[1:]:
        view(event)
    _, snapshot = log[-1]
    page = snapshot._repr_html_()
    assert f"height:{BAR_ROW}" in page and f"width:{BAR_WIDTH}" in page and "accent-color:var(--jp-error-color1" in page
    assert view._ticker is None, "the ticker stops with the operation"
