"""DeployForm and DeploymentsBoard, headless: models, validation, clicks, worker threads, outputs."""

from __future__ import annotations

import threading

import pytest
from conftest import undeploy_all_local
from frontend_fakes import HELLO, make_provider
from IPython.core.interactiveshell import InteractiveShell

from weave_nb.core.config import DeploymentStatus, Plan
from weave_nb.core.errors import DeploymentFailed
from weave_nb.core.manager import DeploymentManager
from weave_nb.frontends.widgets import (
    DeployForm,
    DeployFormModel,
    DeploymentsBoard,
    parse_env_text,
)


@pytest.fixture(autouse=True)
def shell():
    # a kernel always has its shell; create it here on the main thread, as a kernel would
    return InteractiveShell.instance()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def gate():
    event = threading.Event()
    yield event
    event.set()  # never leave a worker blocked


@pytest.fixture
def mgr(home, gate):
    manager = DeploymentManager(home=home, providers={"slow": make_provider(gate), "fast": make_provider()})
    yield manager
    undeploy_all_local(home)


def outputs_text(output) -> str:
    parts = []
    for item in output.outputs:
        parts.append(item.get("text", ""))
        parts.extend(str(v) for v in item.get("data", {}).values())
    return "\n".join(parts)


# -- the model ------------------------------------------------------------------------
def test_model_validation_says_why(tmp_path):
    weave = tmp_path / "w.weave.yaml"
    weave.write_text(HELLO)
    model = DeployFormModel(providers=["local", "slow"], environ={"OPENAI_API_KEY": "sk-from-kernel"})
    assert not model.valid and model.reason == "give the deployment a name"
    model.name = "demo"
    assert model.reason == "choose a weave file or paste the weave"
    model.weave_file = str(tmp_path / "nope.weave.yaml")
    assert model.reason.startswith("no such weave file")
    model.weave_file = str(weave)
    assert model.valid and model.can_deploy and model.problems == []
    for trait, bad, words in [
        ("name", "1abc", "name must start with a letter"),
        ("provider", "azure", "unknown provider 'azure'"),
        ("memory_mb", "lots", "memory must be a whole number"),
        ("timeout_seconds", "0", "timeout must be between"),
        ("env_text", "sk-secret-value", "name must be letters, digits"),
        ("env_text", "MISSING_VAR", "a bare NAME must be set"),
        ("weave_text", HELLO, "not both"),
    ]:
        good = getattr(model, trait)
        setattr(model, trait, bad)
        assert not model.valid and not model.can_deploy and words in model.reason, (trait, model.reason)
        assert "sk-secret-value" not in " ".join(model.problems)
        setattr(model, trait, good)
        assert model.valid, (trait, model.problems)
    model.busy = True
    assert model.valid and not model.can_deploy


def test_model_values_for_the_manager(tmp_path):
    model = DeployFormModel(
        providers=["local"], provider="", environ={"OPENAI_API_KEY": "sk-from-kernel"}, name=" demo ", weave_text=HELLO,
        region="eu-1", memory_mb="512", timeout_seconds="", env_text="# comment\nA=1\n\nOPENAI_API_KEY\n", public=True,
    )
    values = model.values()
    assert values == {
        "name": "demo", "provider": None, "region": "eu-1", "memory_mb": 512, "timeout_seconds": None,
        "public": True, "env": {"A": "1", "OPENAI_API_KEY": "sk-from-kernel"}, "weave_text": HELLO,
    }
    model.name = ""
    with pytest.raises(ValueError, match="name"):
        model.values()


def test_parse_env_text():
    env, problems = parse_env_text("A=1\nB = two=2\n#x\nHOME_X\n", environ={"HOME_X": "h"})
    assert env == {"A": "1", "B": " two=2", "HOME_X": "h"} and problems == []


# -- the form -------------------------------------------------------------------------------
def test_form_constructor_does_not_display(mgr, capsys):
    form = DeployForm(manager=mgr, name="x", weave_text=HELLO)
    assert capsys.readouterr().out == ""
    assert form.future is None and [v for _, v in form.provider.options] == ["", *mgr.provider_names()]


def test_invalid_input_keeps_deploy_disabled(mgr):
    form = DeployForm(manager=mgr, provider="slow", weave_text=HELLO)
    assert form.deploy_button.disabled and form.plan_button.disabled
    assert "name" in form.reason.value
    form.name.value = "ok-name"
    assert not form.deploy_button.disabled and form.reason.value.count("name") == 0
    form.memory.value = "-5"
    assert form.deploy_button.disabled and "memory must be between" in form.reason.value
    form.deploy_button.click()
    assert form.future is None and mgr.inventory.list() == []


def test_click_deploy_returns_at_once_and_finishes_on_its_thread(mgr, gate):
    form = DeployForm(manager=mgr, weave_text=HELLO)
    form.name.value = "clicked"
    form.provider.value = "slow"
    form.region.value = "eu-9"
    form.env.value = "OPENAI_API_KEY=sk-test-widget-secret"
    form.deploy_button.click()
    future = form.future
    assert future is not None and not future.done(), "the click handler must not wait for the deploy"
    assert form.model.busy and form.deploy_button.disabled and form.model.state == "deploying"
    provider = mgr.provider("slow")
    assert provider.started.wait(10)
    # progress shows while the deploy is held at the gate
    assert "build the image" in form.progress.steps_html.value
    assert form.progress.state.steps[0].state == "running"
    assert not future.done() and form.thread.is_alive() and form.thread is not threading.current_thread()
    gate.set()
    info = future.result(timeout=30)
    assert info.status == DeploymentStatus.ACTIVE and info.region == "eu-9"
    assert form.model.state == "done" and form.model.result == info and not form.model.busy
    assert not form.deploy_button.disabled
    assert form.progress.bar.value == 1.0 and form.progress.bar.bar_style == "success"
    assert "Step 2/2 : COPY . /app" in form.progress.log_html.value
    shown = outputs_text(form.output)
    assert "clicked" in shown and "weave-deployment" in shown
    assert "sk-test-widget-secret" not in shown + form.progress.state.render_text() + form.reason.value


def test_form_provider_defaults_to_the_weave_file(mgr):
    form = DeployForm(manager=mgr, name="fromfile", weave_text=HELLO + "deployment: {provider: fast}\n")
    assert form.provider.value == "" and form.model.valid
    form.deploy_button.click()
    assert form.wait(30).provider == "fast"
    first = form.progress
    assert first.widget.comm is not None
    form.deploy_button.click()
    assert form.wait(30).provider == "fast" and form.progress is not first
    assert first.widget.comm is None and first.bar.comm is None, "the previous run's widgets are closed"


def test_form_shows_a_failure(home):
    failing = DeploymentManager(home=home, providers={"bad": make_provider(fail_with="quota exceeded")})
    form = DeployForm(manager=failing, name="fails", provider="bad", weave_text=HELLO)
    form.deploy_button.click()
    with pytest.raises(DeploymentFailed):
        form.wait(30)
    assert form.model.state == "failed" and form.model.message == "quota exceeded"
    assert form.model.result is None and not form.model.busy
    text = outputs_text(form.output)
    assert "error: quota exceeded" in text and "hint: try turning it off and on again" in text
    assert "Traceback" not in text
    assert form.progress.bar.bar_style == "danger"


def test_form_plan_shows_the_plan_and_creates_nothing(mgr):
    gate_free = DeployForm(manager=mgr, name="planned", provider="fast", weave_text=HELLO)
    gate_free.plan_button.click()
    plan = gate_free.wait(30)
    assert isinstance(plan, Plan) and [s.action for s in plan.steps] == ["create", "create"]
    assert "weave-plan" in outputs_text(gate_free.output)
    assert mgr.inventory.list() == [] and gate_free.model.state == "idle"


def test_form_deploys_with_the_local_provider(mgr, tmp_path):
    from weave_nb.core.procutil import pid_alive

    weave = tmp_path / "hello.weave.yaml"
    weave.write_text(HELLO)
    form = DeployForm(manager=mgr, name="formlocal", weave_file=str(weave))
    form.deploy_button.click()
    info = form.wait(60)
    assert info.endpoint.startswith("http://127.0.0.1:")
    assert pid_alive(mgr.inventory.get("local", "formlocal").details["pid"])


# -- the board ----------------------------------------------------------------------------
@pytest.fixture
def deployed(mgr):
    for name in ("alpha", "beta"):
        mgr.deploy({"name": name, "provider": "fast", "weave_text": HELLO})
    return mgr


def test_board_loads_selects_and_invokes(deployed, capsys):
    board = DeploymentsBoard(manager=deployed, provider="fast")
    assert capsys.readouterr().out == ""
    board.wait(30)
    assert [r["name"] for r in board.model.rows] == ["beta", "alpha"]
    assert "alpha" in board.table.value and len(board.select.options) == 2
    assert board.invoke_button.disabled and board.undeploy_button.disabled
    board.select_row("alpha")
    assert board.model.selected == "fast/alpha" and not board.invoke_button.disabled
    board.input.value = "ping"
    board.invoke_button.click()
    result = board.wait(30)
    assert result["output"] == "echo: ping" and board.model.last_result == result
    assert '"output": "echo: ping"' in outputs_text(board.output)


def test_board_undeploy_needs_confirmation(deployed):
    board = DeploymentsBoard(manager=deployed, provider="fast")
    board.wait(30)
    board.select_row("beta")
    board.undeploy_button.click()
    assert board.model.confirming == "fast/beta" and board.confirm_box.layout.display == "flex"
    board.no_button.click()
    assert board.future.done() and board.model.confirming == "" and "cancelled" in board.model.message
    assert deployed.inventory.get("fast", "beta") is not None
    board.undeploy_button.click()
    board.yes_button.click()
    info = board.wait(30)
    assert info.status == DeploymentStatus.DESTROYED
    assert deployed.inventory.get("fast", "beta") is None
    assert [r["name"] for r in board.model.rows] == ["alpha"] and board.model.selected == ""
    assert board.confirm_box.layout.display == "none"


def test_board_refresh_sees_new_deployments(deployed):
    board = DeploymentsBoard(manager=deployed, autoload=False)
    assert board.future is None and board.model.rows == []
    deployed.deploy({"name": "gamma", "provider": "fast", "weave_text": HELLO})
    board.refresh_button.click()
    listing = board.wait(30)
    assert {"alpha", "beta", "gamma"} <= {r["name"] for r in board.model.rows}
    assert board.model.notes == listing.notes
    board.provider.value = "slow"  # choosing a provider reloads the table
    board.wait(30)
    assert board.model.rows == [] and "no deployments" in board.table.value


# -- the board follows this kernel's deploys ------------------------------------------------
def test_board_shows_a_forms_deploy_and_an_api_undeploy_without_refresh(deployed):
    from weave_nb.core.procutil import wait_for

    board = DeploymentsBoard(manager=deployed, provider="fast")
    board.wait(30)
    form = DeployForm(manager=deployed, name="gamma", provider="fast", weave_text=HELLO)
    form.deploy_button.click()
    form.wait(30)
    assert wait_for(lambda: "fast/gamma" in {k for _, k in board.select.options}, 10), board.select.options
    assert "gamma" in board.table.value
    deployed.destroy("alpha", "fast")  # the Python API / a magic, in the same kernel
    assert wait_for(lambda: "fast/alpha" not in {k for _, k in board.select.options}, 10)
    assert "alpha" not in board.table.value
    board.close()
    deployed.deploy({"name": "delta", "provider": "fast", "weave_text": HELLO})
    assert board.future.done() and "fast/delta" not in {k for _, k in board.select.options}, "a closed board stops listening"


def test_board_lists_each_row_once_and_shows_undeploy_progress(deployed):
    board = DeploymentsBoard(manager=deployed, provider="fast")
    board.wait(30)
    import ipywidgets as w

    assert isinstance(board.select, w.Dropdown), "a compact picker, not a second copy of the table"
    assert [label for label, _ in board.select.options] == ["beta [fast]", "alpha [fast]"]
    messages: list[str] = []
    board.model.observe(lambda c: messages.append(c["new"]), names=["message"])
    board.select_row("beta")
    board.undeploy_button.click()
    board.yes_button.click()
    assert board.status.value.startswith("removing beta from fast"), "feedback at once, before the removal ends"
    board.wait(30)
    assert messages[0] == "removing beta from fast…" and any("remove the service" in m for m in messages)
    assert messages[-1] == "removed beta from fast" and board.status.value == "removed beta from fast"


def test_board_drops_a_stale_answer_when_another_row_is_picked(deployed):
    board = DeploymentsBoard(manager=deployed, provider="fast")
    board.wait(30)
    board.select_row("alpha")
    board.input.value = "first"
    board.invoke_button.click()
    board.wait(30)
    assert "echo: first" in outputs_text(board.output)
    board.select_row("beta")
    assert outputs_text(board.output) == "", "the answer was alpha's"
    board.input.value = "second"
    board.invoke_button.click()
    board.wait(30)
    board.input.value = "third"
    board.invoke_button.click()
    board.wait(30)
    text = outputs_text(board.output)
    assert "echo: third" in text and "echo: second" not in text
