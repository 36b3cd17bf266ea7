"""The %weave_* magics in a real InteractiveShell: flags, cell form, settings, errors, DataFrame, confirmation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from conftest import undeploy_all_local
from frontend_fakes import HELLO, make_provider, weave_text
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from weave_nb.core.config import DeploymentInfo, DeploymentStatus, Plan
from weave_nb.frontends.frame import COLUMNS
from weave_nb.frontends.magics import InvokeResult, WeaveFailure, WeaveMagics
from weave_nb.core.manager import DeploymentManager

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def shell():
    sh = InteractiveShell.instance()
    yield sh
    sh.run_line_magic("unload_ext", "weave_nb") if "weave_nb" in sh.extension_manager.loaded else None


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WEAVE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


@pytest.fixture
def env(shell, home):
    """A shell with WeaveMagics bound to a manager that knows the fake providers; answers feed the prompt."""
    slow, slow2 = make_provider(), make_provider()
    mgr = DeploymentManager(home=home, providers={"slow": slow, "slow2": slow2})
    prompts: list[str] = []
    answers: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return answers.pop(0)

    magics = WeaveMagics(shell, manager=mgr, ask=ask)
    magics.progress = "text"
    shell.register_magics(magics)
    shell.configurables.append(magics)
    yield type("Env", (), {"shell": shell, "mgr": mgr, "slow": slow, "slow2": slow2, "magics": magics, "prompts": prompts, "answers": answers})
    undeploy_all_local(home)
    shell.configurables.remove(magics)
    shell.config.pop("WeaveMagics", None)
    from weave_nb.frontends.magics import unload_ipython_extension

    unload_ipython_extension(shell)


def write_weave(folder: Path, text: str = HELLO, name: str = "hello.weave.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# -- the extension ------------------------------------------------------------
def test_load_ext_registers_and_unload_removes(shell, home):
    shell.run_line_magic("load_ext", "weave_nb")
    names = {"weave_deploy", "weave_plan", "weave_deployments", "weave_undeploy", "weave_status", "weave_invoke", "weave_logs", "weave_sandbox"}
    assert names <= set(shell.magics_manager.magics["line"])
    assert {"weave_deploy", "weave_plan"} <= set(shell.magics_manager.magics["cell"])
    assert any(isinstance(c, WeaveMagics) for c in shell.configurables)
    shell.run_line_magic("unload_ext", "weave_nb")
    assert not names & set(shell.magics_manager.magics["line"])
    assert not any(isinstance(c, WeaveMagics) for c in shell.configurables)


def test_loading_imports_no_new_cloud_modules(home):
    code = textwrap.dedent(
        """
        import json, sys
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        before = set(sys.modules)
        shell.run_line_magic("load_ext", "weave_nb")
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    new = json.loads(out.stdout.strip().splitlines()[-1])
    assert "weave_nb.frontends.magics" in new
    heavy = {"boto3", "botocore", "google", "googleapiclient", "grpc", "docker", "pandas", "ipywidgets"}
    assert sorted(m for m in new if m.split(".")[0] in heavy) == []


def test_help_shows_the_cli_options(env):
    doc = WeaveMagics.weave_deploy.__doc__
    from weave_nb.frontends.arguments import CLI_ONLY_FLAGS
    from weave_nb.frontends.cli import build_parser

    cli_help = build_parser()._subparsers._group_actions[0].choices["deploy"].format_help()
    for flag in ("--name", "--provider", "--region", "--config", "--memory", "--timeout", "--env", "--public", "--dry-run", "--option"):
        assert flag in doc and flag in cli_help
    # every option of every CLI command shows in its magic's help
    parser = build_parser()._subparsers._group_actions[0].choices
    for command in ("deploy", "plan", "deployments", "undeploy", "status", "invoke", "logs"):
        cli_flags = {o for a in parser[command]._actions for o in a.option_strings} - {"-h", "--help"} - CLI_ONLY_FLAGS[command]
        magic_doc = getattr(WeaveMagics, f"weave_{command}").__doc__
        magic_flags = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", magic_doc))
        assert cli_flags <= magic_flags, (command, cli_flags - magic_flags)


# -- deploy -------------------------------------------------------------------------
def test_line_deploy_passes_every_flag(env, tmp_path):
    path = write_weave(tmp_path)
    info = env.shell.run_line_magic(
        "weave_deploy",
        f"--name flags --provider slow --region eu-1 --memory 256 --timeout 30 --env K=v --public -o level=3 --config {path}",
    )
    assert isinstance(info, DeploymentInfo) and info.status == DeploymentStatus.ACTIVE
    seen = env.slow.seen[-1]
    assert (seen.name, seen.provider, seen.region, seen.memory_mb, seen.timeout_seconds) == ("flags", "slow", "eu-1", 256, 30)
    assert seen.public is True and seen.env_plain() == {"K": "v"} and seen.options == {"level": "3"}
    assert env.slow(None).options(seen).level == 3, "the provider's options model converts the text"
    assert env.mgr.inventory.get("slow", "flags").status == DeploymentStatus.ACTIVE


def test_cell_deploy_uses_the_body_as_the_weave(env):
    body = weave_text(provider="slow", region="cell-1")
    info = env.shell.run_cell_magic("weave_deploy", "--name incell", body)
    assert info.provider == "slow" and info.region == "cell-1"
    assert env.slow.seen[-1].weave_text == body


def test_text_progress_prints_steps_and_returns_info(env, capsys):
    write_weave(Path.cwd())
    result = env.shell.run_cell("info = %weave_deploy --name shown --provider slow\n", store_history=False)
    assert result.error_in_exec is None, result.error_in_exec
    out = capsys.readouterr().out
    assert "build the image" in out and "Step 1/2 : FROM python:3.12-slim" in out and "run the service" in out
    assert env.shell.user_ns["info"].name == "shown"


def test_dry_run_and_plan_change_nothing(env):
    write_weave(Path.cwd())
    plan = env.shell.run_line_magic("weave_deploy", "--name planned --provider slow --dry-run")
    assert isinstance(plan, Plan) and [s.action for s in plan.steps] == ["create", "create"]
    plan2 = env.shell.run_cell_magic("weave_plan", "--name planned --provider slow", HELLO)
    assert isinstance(plan2, Plan) and plan2.name == "planned"
    assert env.mgr.inventory.list() == [] and env.slow.seen == []


def test_stream_off_shows_no_progress(env, capsys):
    env.shell.run_line_magic("config", "WeaveMagics.stream = False")
    info = env.shell.run_cell_magic("weave_deploy", "--name quiet --provider slow", HELLO)
    assert info.status == DeploymentStatus.ACTIVE
    assert "build the image" not in capsys.readouterr().out


def test_precedence_flags_over_settings_over_weave_file(env):
    body = weave_text(provider="slow", region="file-1")
    info = env.shell.run_cell_magic("weave_deploy", "--name p1", body)
    assert (info.provider, info.region) == ("slow", "file-1"), "the weave file wins when nothing is set"
    env.shell.run_line_magic("config", 'WeaveMagics.default_provider = "slow2"')
    env.shell.run_line_magic("config", 'WeaveMagics.default_region = "magic-1"')
    assert env.magics.default_provider == "slow2"
    info = env.shell.run_cell_magic("weave_deploy", "--name p2", body)
    assert (info.provider, info.region) == ("slow2", "magic-1"), "settings beat the weave file"
    info = env.shell.run_cell_magic("weave_deploy", "--name p3 --provider slow --region flag-1", body)
    assert (info.provider, info.region) == ("slow", "flag-1"), "flags beat settings"


def test_weave_home_setting_moves_the_state(shell, home, tmp_path):
    magics = WeaveMagics(shell)
    magics.weave_home = str(tmp_path / "elsewhere")
    df = magics.weave_deployments("--provider local")
    assert len(df) == 0 and (tmp_path / "elsewhere" / "inventory.db").is_file()
    assert not (home / "inventory.db").exists()


def test_provider_falls_back_to_local(env):
    plan = env.shell.run_cell_magic("weave_plan", "--name fallback", HELLO)
    assert plan.provider == "local"


# -- errors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "line, cell, words",
    [
        ("--name x --bogus", None, "unrecognized arguments: --bogus"),
        ("--name x --provider nope", HELLO, "unknown provider 'nope'"),
        ("--provider slow", HELLO, "--name is required"),
        ("--name x --provider slow --env NOEQUALS", HELLO, "NAME=VALUE"),
        ("--name 9bad --provider slow", HELLO, "name"),
        ("--name x --provider slow --config other.yaml", HELLO, "not both"),
        ("--name x --provider slow --config missing.weave.yaml", None, "missing.weave.yaml"),
    ],
)
def test_user_mistakes_are_short_usage_errors(env, capsys, line, cell, words):
    with pytest.raises(UsageError) as info:
        if cell is None:
            env.shell.run_line_magic("weave_deploy", line)
        else:
            env.shell.run_cell_magic("weave_deploy", line, cell)
    assert words in str(info.value)
    source = f"%weave_deploy {line}" if cell is None else f"%%weave_deploy {line}\n{cell}"
    result = env.shell.run_cell(source, store_history=False)
    assert isinstance(result.error_in_exec, UsageError)
    out = capsys.readouterr()
    assert "UsageError" in out.out + out.err and "Traceback" not in out.out + out.err
    assert env.slow.seen == [] and env.mgr.inventory.list() == []


def test_deploy_failure_shows_message_and_hint_without_traceback(env, capsys):
    failing = make_provider(fail_with="the service refused to start")
    env.mgr._overrides["broken"] = failing
    result = env.shell.run_cell("%%weave_deploy --name boom --provider broken\n" + HELLO, store_history=False)
    assert isinstance(result.error_in_exec, WeaveFailure)
    out = capsys.readouterr()
    text = out.out + out.err
    assert "the service refused to start" in text and "hint: try turning it off and on again" in text
    assert "Traceback" not in text and 'File "' not in text
    assert env.mgr.inventory.get("broken", "boom").status == DeploymentStatus.FAILED


def test_interrupted_deploy_says_how_to_finish(env, capsys):
    env.mgr._overrides["stopped"] = make_provider(fail_with="interrupt")
    result = env.shell.run_cell("%%weave_deploy --name halted --provider stopped\n" + HELLO, store_history=False)
    assert isinstance(result.error_in_exec, WeaveFailure)
    text = "".join(capsys.readouterr())
    assert "interrupted" in text and "%weave_undeploy" in text and "Traceback" not in text
    assert env.mgr.inventory.get("stopped", "halted").status == DeploymentStatus.FAILED


@pytest.mark.parametrize("mode", ["text", "html", "widgets"])
def test_a_provider_echoing_a_secret_does_not_reach_the_cell(env, capsys, mode):
    env.mgr._overrides["leaky"] = make_provider(fail_with="leak")
    env.magics.progress = mode
    env.shell.user_ns["token"] = "sk-test-LEAKED-0042"
    result = env.shell.run_cell("%%weave_deploy --name leaky --provider leaky --env TOKEN=$token\n" + HELLO, store_history=False)
    assert result.error_in_exec is None
    view_text = "" if mode == "text" else env.magics.last_view.state.render_html()
    text = "".join(capsys.readouterr()) + view_text
    assert "careless build line" in text and "sk-test-LEAKED-0042" not in text


# -- listing --------------------------------------------------------------------------
def test_deployments_dataframe_columns_dtypes_order(env, capsys):
    for name in ("first", "second", "third"):
        env.shell.run_cell_magic("weave_deploy", f"--name {name} --provider slow", HELLO)
    result = env.shell.run_cell("df = %weave_deployments --provider slow", store_history=False)
    assert result.error_in_exec is None
    df = env.shell.user_ns["df"]
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == COLUMNS
    for col in ("created_at", "updated_at"):
        assert isinstance(df[col].dtype, pd.DatetimeTZDtype) and str(df[col].dt.tz) == "UTC"
    assert list(df["name"]) == ["third", "second", "first"]
    assert df["created_at"].is_monotonic_decreasing
    assert set(df["status"]) == {"active"} and set(df["health"]) == {"healthy"}
    live = env.shell.run_line_magic("weave_deployments", "--provider slow --refresh")
    stored = env.shell.run_line_magic("weave_deployments", "--provider slow --no-refresh")
    assert set(live["health"]) == {"healthy"} and stored["health"].isna().all()
    only = env.shell.run_line_magic("weave_deployments", "--provider slow --status failed")
    assert len(only) == 0 and list(only.columns) == COLUMNS


def test_deployments_notes_print_one_line_each(env, capsys):
    env.shell.run_cell_magic("weave_deploy", "--name noted --provider slow", HELLO)
    capsys.readouterr()
    df = env.shell.run_line_magic("weave_deployments", "")
    notes = df.attrs["notes"]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note: ")]
    assert lines == [f"note: {n}" for n in notes]
    assert "noted" in set(df["name"])


# -- undeploy ---------------------------------------------------------------------------
def test_undeploy_refused_keeps_the_deployment(env, capsys):
    env.shell.run_cell_magic("weave_deploy", "--name keepme --provider slow", HELLO)
    env.answers.append("n")
    assert env.shell.run_line_magic("weave_undeploy", "keepme --provider slow") is None
    assert "keepme" in env.prompts[-1] and "slow" in env.prompts[-1]
    assert "cancelled" in capsys.readouterr().out
    assert env.mgr.inventory.get("slow", "keepme") is not None


def test_undeploy_accepted_removes_it(env):
    env.shell.run_cell_magic("weave_deploy", "--name dropme --provider slow", HELLO)
    env.answers.append("yes")
    info = env.shell.run_line_magic("weave_undeploy", "dropme --provider slow")
    assert info.status == DeploymentStatus.DESTROYED and len(env.prompts) == 1
    assert env.mgr.inventory.get("slow", "dropme") is None


def test_undeploy_where_nobody_can_answer_asks_for_force(env):
    env.shell.run_cell_magic("weave_deploy", "--name headless --provider slow", HELLO)
    env.magics.ask = lambda prompt: (_ for _ in ()).throw(EOFError())
    with pytest.raises(UsageError, match="add --force"):
        env.shell.run_line_magic("weave_undeploy", "headless --provider slow")
    assert env.mgr.inventory.get("slow", "headless") is not None


def test_undeploy_force_and_setting_skip_the_prompt(env):
    for name in ("f1", "f2"):
        env.shell.run_cell_magic("weave_deploy", f"--name {name} --provider slow", HELLO)
    env.shell.run_line_magic("weave_undeploy", "f1 --provider slow --force")
    env.shell.run_line_magic("config", "WeaveMagics.confirm_undeploy = False")
    env.shell.run_line_magic("weave_undeploy", "f2 -p slow")
    assert env.prompts == [] and env.mgr.inventory.list("slow") == []


def test_undeploy_unknown_is_a_usage_error(env):
    """The one NotFound of the manager, whether the provider is given or looked up (never a silent local)."""
    for line in ("ghost --provider slow --force", "ghost --force"):
        with pytest.raises(UsageError, match=r"no deployment named 'ghost' in the inventory \(providers searched: "):
            env.shell.run_line_magic("weave_undeploy", line)
    for magic in ("weave_status", "weave_invoke", "weave_logs"):
        with pytest.raises(UsageError, match="hint: list them with `%weave_deployments`"):
            env.shell.run_line_magic(magic, "ghost")
    with pytest.raises(UsageError):
        env.shell.run_line_magic("weave_undeploy", "--provider slow --force")


# -- status, invoke, logs --------------------------------------------------------------------
def test_status_invoke_logs(env, capsys):
    env.shell.run_cell_magic("weave_deploy", "--name svc --provider slow", HELLO)
    info = env.shell.run_line_magic("weave_status", "svc --provider slow")
    assert info.health == "healthy" and info.status == DeploymentStatus.ACTIVE
    result = env.shell.run_cell('answer = %weave_invoke svc --provider slow --input "hi there"', store_history=False)
    assert result.error_in_exec is None
    answer = env.shell.user_ns["answer"]
    assert isinstance(answer, dict) and answer["output"] == "echo: hi there"
    env.shell.run_cell("answer", store_history=False)
    out = capsys.readouterr().out
    assert '"output": "echo: hi there"' in out
    env.shell.run_line_magic("weave_logs", "svc --provider slow")
    assert "log of svc" in capsys.readouterr().out
    with pytest.raises(UsageError):
        env.shell.run_line_magic("weave_status", "nobody --provider slow")


def test_provider_is_found_from_the_inventory(env):
    env.shell.run_cell_magic("weave_deploy", "--name solo --provider slow", HELLO)
    assert env.shell.run_line_magic("weave_status", "solo").provider == "slow"
    assert env.shell.run_line_magic("weave_invoke", "solo --input x")["output"] == "echo: x"
    env.shell.run_cell_magic("weave_deploy", "--name solo --provider slow2", HELLO)
    with pytest.raises(UsageError, match=r"several deployments are named 'solo' \(slow, slow2\)"):
        env.shell.run_line_magic("weave_status", "solo")
    assert env.shell.run_line_magic("weave_status", "solo -p slow2").provider == "slow2"
    env.shell.run_line_magic("config", 'WeaveMagics.default_provider = "slow2"')
    env.shell.run_cell_magic("weave_deploy", "--name other --provider slow", HELLO)
    assert env.shell.run_line_magic("weave_status", "other").provider == "slow", "the record beats the setting"
    with pytest.raises(UsageError, match="no deployment named 'ghost' in the inventory"):
        env.shell.run_line_magic("weave_status", "ghost")  # never guessed to be on the default provider


def test_invoke_result_is_a_plain_dict_with_json_display():
    from IPython.lib.pretty import pretty

    res = InvokeResult({"output": "x", "tokens": {"total": 3}})
    assert res == {"output": "x", "tokens": {"total": 3}}
    assert json.loads(pretty(res)) == res


# -- the local provider, end to end --------------------------------------------------------
def test_local_deploy_invoke_undeploy(env, capsys):
    from weave_nb.core.procutil import pid_alive

    info = env.shell.run_cell_magic("weave_deploy", "--name loc", HELLO)
    assert info.provider == "local" and info.endpoint.startswith("http://127.0.0.1:")
    pid = env.mgr.inventory.get("local", "loc").details["pid"]
    assert pid_alive(pid)
    answer = env.shell.run_line_magic("weave_invoke", "loc --input 'hello'")
    assert answer["weave"] == "hello" and answer["input"] == "hello"
    env.answers.append("y")
    env.shell.run_line_magic("weave_undeploy", "loc")
    assert not pid_alive(pid) and env.mgr.inventory.get("local", "loc") is None


def test_undeploy_asks_through_input_as_it_is_when_the_cell_runs(env, monkeypatch):
    """A kernel swaps ``input`` for one that asks the front end while a cell runs; the prompt must use that one."""
    import builtins

    env.shell.run_cell_magic("weave_deploy", "--name asked --provider slow", HELLO)
    magics = WeaveMagics(env.shell, manager=env.mgr)  # made before the swap, as at %load_ext time
    asked = []
    monkeypatch.setattr(builtins, "input", lambda prompt: asked.append(prompt) or "y")
    info = magics.weave_undeploy("asked --provider slow")
    assert asked and "asked" in asked[0]
    assert info.status == DeploymentStatus.DESTROYED and env.mgr.inventory.get("slow", "asked") is None


def test_a_provider_bug_shows_as_message_and_hint_without_traceback(env, capsys):
    broken = make_provider()
    broken.status = lambda self, ctx: {}["no-such-key"]
    env.mgr._overrides["buggy"] = broken
    env.shell.run_cell_magic("weave_deploy", "--name bug --provider buggy", HELLO)
    capsys.readouterr()
    result = env.shell.run_cell("%weave_status bug --provider buggy", store_history=False)
    assert isinstance(result.error_in_exec, WeaveFailure)
    text = "".join(capsys.readouterr())
    assert "KeyError: 'no-such-key'" in text and "hint:" in text and "Traceback" not in text


def test_line_magics_ignore_a_trailing_comment_but_not_a_hash_in_quotes(env, capsys):
    env.shell.run_cell_magic("weave_deploy", "--name svc --provider slow", HELLO)
    result = env.shell.run_cell("df = %weave_deployments --provider slow          # every deployment", store_history=False)
    assert result.error_in_exec is None, result.error_in_exec
    assert list(env.shell.user_ns["df"]["name"]) == ["svc"]
    result = env.shell.run_cell("answer = %weave_invoke svc --provider slow --input 'issue #4 # not a comment'  # a comment",
                                store_history=False)
    assert result.error_in_exec is None, result.error_in_exec
    assert env.shell.user_ns["answer"]["output"] == "echo: issue #4 # not a comment"
    result = env.shell.run_cell("info = %weave_status svc --provider slow # where is it?", store_history=False)
    assert result.error_in_exec is None and env.shell.user_ns["info"].name == "svc"


def test_sandbox_aws_invoke_runs_the_zip_locally_and_says_so(shell, home, monkeypatch, capsys):
    """In the sandbox the Lambda stand-in serves no function URL: invoke runs the deployed zip (local=True) and notes it."""
    from frontend_fakes import make_provider

    calls: list[bool] = []
    base = make_provider()

    class SandboxAws(base):  # type: ignore[valid-type, misc]
        def invoke(self, ctx, payload, local=False, timeout=60):
            calls.append(local)
            return super().invoke(ctx, payload, local=local, timeout=timeout)

    mgr = DeploymentManager(home=home, providers={"aws": SandboxAws, "slow": base})
    magics = WeaveMagics(shell, manager=mgr)
    magics.progress = "text"
    shell.register_magics(magics)
    try:
        monkeypatch.setenv("WEAVE_SANDBOX", "1")
        monkeypatch.setenv("WEAVE_SANDBOX_PROVIDERS", "aws,gcp")
        shell.run_cell_magic("weave_deploy", "--name demo --provider aws", HELLO)
        shell.run_cell_magic("weave_deploy", "--name other --provider slow", HELLO)
        capsys.readouterr()
        answer = shell.run_line_magic("weave_invoke", 'demo --provider aws --input "hi"')
        assert answer["output"] == "echo: hi" and calls == [True]
        assert "note: sandbox: ran the deployed zip on this machine (as --local does)" in capsys.readouterr().out
        shell.run_line_magic("weave_invoke", 'other --provider slow --input "hi"')  # another provider: unchanged
        assert "note:" not in capsys.readouterr().out
        monkeypatch.delenv("WEAVE_SANDBOX")
        shell.run_cell_magic("weave_deploy", "--name real --provider aws", HELLO)
        shell.run_line_magic("weave_invoke", 'real --provider aws --input "hi"')
        assert calls == [True, False] and "note:" not in capsys.readouterr().out  # not a sandbox deployment
    finally:
        from weave_nb.frontends.magics import unload_ipython_extension

        unload_ipython_extension(shell)


def test_undeploy_result_shows_what_was_removed(env):
    made = env.shell.run_cell_magic("weave_deploy", "--name gone --provider slow --region eu-west-1", HELLO)
    info = env.shell.run_line_magic("weave_undeploy", "gone --provider slow --force")
    assert info.status == DeploymentStatus.DESTROYED
    assert (info.region, info.endpoint, info.created_at) == ("eu-west-1", made.endpoint, made.created_at)
    assert info.updated_at >= made.updated_at
    assert info.summary() == f"gone [slow] destroyed (was {made.endpoint})"
    page = info._repr_html_()
    assert "eu-west-1" in page and f'href="{made.endpoint}"' not in page and "(removed)" in page


@pytest.mark.parametrize("magic", ["weave_deploy", "weave_plan", "weave_deployments", "weave_undeploy", "weave_status",
                                   "weave_invoke", "weave_logs", "weave_sandbox"])
def test_help_flag_prints_what_the_question_mark_shows(shell, home, capsys, magic):
    shell.run_line_magic("load_ext", "weave_nb")
    for flag in ("--help", "-h", "--help   # what does it take?"):
        result = shell.run_cell(f"%{magic} {flag}", store_history=False)
        assert result.error_in_exec is None and result.error_before_exec is None, (flag, result.error_in_exec)
        out = capsys.readouterr().out
        assert f"%{magic} [" in out and "options:" in out, out[:300]
    with pytest.raises(UsageError):  # an --input text that contains --help is not a help request
        shell.run_line_magic("weave_invoke", "nobody --provider local --input '--help me'")


def test_sandbox_status_reads_well_in_terminal_ipython():
    from IPython.lib.pretty import pretty

    from weave_nb.sandbox.session import BANNER, SandboxStatus, Service

    on = SandboxStatus(running=True, services=(Service(name="aws", url="http://127.0.0.1:5", pid=7, log="aws.log"),))
    assert pretty(on) == on.render() and pretty(on).startswith(BANNER) and "SandboxStatus(" not in pretty(on)
    assert pretty(SandboxStatus(running=False)).startswith("sandbox: off")


from weave_nb.core.errors import DeploymentFailed  # noqa: E402

LONG_URL = ("https://cloudfunctions.googleapis.com/v2/projects/demo-proj/locations/us-central1/functions/hello"
            "?updateMask=buildConfig.runtime,serviceConfig.environmentVariables,serviceConfig.availableMemory")


@pytest.mark.parametrize("mode", ["text", "html", "widgets"])
def test_failure_in_a_cell_shows_the_message_once_the_hint_once_short_urls_and_magic_syntax(env, capsys, mode):
    reason = f"409 Conflict from PATCH {LONG_URL}: the function is busy"
    failing = make_provider(fail_with=reason)
    failing.apply_run = lambda self, run, step: (_ for _ in ()).throw(
        DeploymentFailed(reason, f"see `weave status busy --provider broken`, or `weave undeploy busy` ({LONG_URL})"))
    env.mgr._overrides["broken"] = failing
    env.magics.progress = mode
    result = env.shell.run_cell("%%weave_deploy --name busy --provider broken\n" + HELLO, store_history=False)
    assert isinstance(result.error_in_exec, WeaveFailure)
    shown = "".join(capsys.readouterr())
    if mode != "text":
        shown += env.magics.last_view.state.render_html() + "\n".join(env.magics.last_view.state.transcript)
    assert shown.count("the function is busy") == 1, shown
    assert shown.count("hint:") == 1, shown
    assert "updateMask" not in shown and "https://cloudfunctions.googleapis.com/…/functions/hello?…" in shown
    assert "`%weave_status busy --provider broken`" in shown and "`%weave_undeploy busy`" in shown
    assert "`weave status" not in shown


def test_usage_errors_in_magics_hint_in_magic_syntax(env):
    with pytest.raises(UsageError) as caught:
        env.shell.run_line_magic("weave_status", "nobody")
    assert "`%weave_deployments`" in str(caught.value) and "`weave deployments`" not in str(caught.value)


def test_shorten_urls_keeps_short_ones_and_the_resource_name():
    from weave_nb.core.present import magic_syntax, shorten_urls

    assert shorten_urls("see http://127.0.0.1:8080/health.") == "see http://127.0.0.1:8080/health."
    assert shorten_urls(f"at {LONG_URL}:") == "at https://cloudfunctions.googleapis.com/…/functions/hello?…:"
    assert magic_syntax("run `weave deploy --name x` then weave logs x") == "run `%weave_deploy --name x` then %weave_logs x"
    assert magic_syntax("%weave_status and the weave file") == "%weave_status and the weave file"
