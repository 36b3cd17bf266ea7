"""The ``weave`` command line: in-process through ``cli.main`` and as a real subprocess.

Exit codes: 0 ok, 1 the operation failed, 2 usage error (nothing created).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal

import pytest

from weave_nb.frontends import cli
from weave_nb.core.procutil import pid_alive, port_in_use, wait_for

from conftest import run_weave
from test_local_provider import assert_dependency_order, get_json


class Terminal(io.StringIO):
    """Typed answers on a terminal (``weave undeploy`` prompts only there)."""

    def isatty(self) -> bool:
        return True


def weave(*argv: str, stdin: str = "", tty: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), out=out, err=err, stdin=(Terminal if tty else io.StringIO)(stdin))
    return code, out.getvalue(), err.getvalue()


def ok_line(out: str) -> str:
    """The deploy's result line: the last one before the next commands."""
    lines = out.rstrip().splitlines()
    return lines[lines.index("next:") - 1]


def endpoint_of(text: str) -> str:
    found = re.search(r"OK \S+ is active at (http://127\.0\.0\.1:\d+)", text)
    assert found, text
    return found.group(1)


def test_deploy_invoke_deployments_undeploy(weave_home, mock_weave):
    code, out, err = weave("deploy", "--name", "demo", "--config", str(mock_weave))
    assert code == 0, err
    assert "==> [1/3]" in out and "Plan for demo on local" in out
    url = endpoint_of(out)
    assert ok_line(out) == f"OK demo is active at {url}"

    code, out, err = weave("invoke", "demo", "--input", "tides")
    assert code == 0, err
    assert_dependency_order(json.loads(out))

    code, out, err = weave("status", "demo")
    status = json.loads(out)
    assert code == 0 and status["status"] == "active" and status["health"] == "healthy"
    pid = status["details"]["pid"]

    code, out, err = weave("deployments", "--provider", "local")
    assert code == 0 and err == ""
    header, row = out.strip().splitlines()
    assert header.split()[:3] == ["NAME", "PROVIDER", "STATUS"]
    assert row.split()[:3] == ["demo", "local", "active"] and url in row

    code, out, err = weave("logs", "demo")
    assert code == 0 and "POST /" in out

    code, out, _ = weave("undeploy", "demo", stdin="n\n", tty=True)
    assert code == 1 and "cancelled" in out and pid_alive(pid)
    code, out, err = weave("undeploy", "demo", stdin="y\n", tty=True)
    assert code == 0, err
    assert "OK demo removed from local" in out
    assert wait_for(lambda: not pid_alive(pid), 10)
    assert not port_in_use(int(url.rsplit(":", 1)[1]))
    assert not (weave_home / "local" / "demo").exists()
    assert weave("deployments", "--provider", "local")[1].strip() == "(no deployments)"


def test_unchanged_redeploy_says_no_changes_in_the_last_line(weave_home, mock_weave):
    assert weave("deploy", "-n", "demo", "-c", str(mock_weave))[0] == 0
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave))
    assert code == 0, err
    last = ok_line(out)
    assert last.startswith("OK demo is active at http://127.0.0.1:") and last.endswith("(no changes)")
    assert "skipped" in out


def test_dry_run_and_plan_change_nothing(weave_home, mock_weave):
    for argv in (["deploy", "--dry-run"], ["plan"]):
        code, out, err = weave(*argv, "-n", "demo", "-c", str(mock_weave))
        assert code == 0, err
        assert "+ create" in out and "server process" in out
    assert weave("deployments", "-p", "local")[1].strip() == "(no deployments)"
    assert not (weave_home / "local").exists()


@pytest.mark.parametrize(
    "argv, words",
    [
        (["deploy", "--port", "notanumber", "-n", "x"], "invalid int value"),
        (["deploy", "--bogus-flag"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
        (["deploy", "-c", "{weave}"], "--name is required"),
        (["deploy", "-n", "1bad name", "-c", "{weave}"], "name:"),
        (["deploy", "-n", "demo", "-c", "{weave}", "--env", "NOEQUALSSIGN"], "an --env entry is not NAME=VALUE"),
        (["deploy", "-n", "demo", "-c", "{weave}", "--env", "1BAD=x"], "with a valid NAME (entry #1)"),
        (["deploy", "-n", "demo", "-c", "{weave}", "--memory", "-5"], "memory_mb"),
        (["deploy", "-n", "demo", "-c", "{weave}", "-p", "nosuchcloud"], "unknown provider 'nosuchcloud'"),
        (["deploy", "-n", "demo", "-c", "{missing}"], "missing.weave.yaml"),
        (["deploy", "-n", "demo", "-c", "{broken}"], "broken.weave.yaml"),
        (["deploy", "-n", "demo", "-c", "{weave}", "-o", "nonsense=1"], "nonsense"),
        (["deploy", "-n", "demo", "-c", "{weave}", "--type", "lambda"], "not 'lambda'"),
        (["deployments", "-p", "nosuchcloud"], "unknown provider"),
        (["deployments", "--status", "actve"], "invalid choice: 'actve'"),
    ],
)
def test_usage_errors_exit_2_and_create_nothing(weave_home, mock_weave, tmp_path, argv, words):
    broken = tmp_path / "broken.weave.yaml"
    broken.write_text("version: '1.0'\nagents: [not, a, mapping]\n")
    paths = {"weave": str(mock_weave), "missing": str(tmp_path / "missing.weave.yaml"), "broken": str(broken)}
    argv = [a.format(**paths) for a in argv]
    code, out, err = weave(*argv)
    assert code == 2, (out, err)
    assert words in err
    assert "Traceback" not in err
    assert not (weave_home / "local").exists()
    if (weave_home / "inventory.db").exists():
        assert weave("deployments", "--no-refresh")[1].strip() == "(no deployments)"


def test_failed_deploy_exits_1_with_a_hint(weave_home, mock_weave, tmp_path):
    fake_python = tmp_path / "broken-python"
    fake_python.write_text("#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave), "-o", f"python={fake_python}")
    assert code == 1
    assert "did not become healthy" in err and "hint:" in err
    assert "FAILED" in out
    code, out, _ = weave("deployments", "-p", "local")
    assert "failed" in out.splitlines()[1]


def test_unknown_deployment_exits_1(weave_home):
    for argv in (["undeploy", "ghost", "-f"], ["status", "ghost"], ["invoke", "ghost"], ["logs", "ghost"]):
        code, out, err = weave(*argv)
        assert code == 1, argv
        assert "ghost" in err and "hint:" in err


def test_help_goes_to_the_given_stream(weave_home):
    code, out, err = weave("deploy", "--help")
    assert code == 0 and "--provider" in out and err == ""


def test_deployments_covers_every_provider_and_notes_the_unavailable(weave_home, mock_weave):
    assert weave("deploy", "-n", "demo", "-c", str(mock_weave))[0] == 0
    code, out, err = weave("deployments")
    assert code == 0
    assert "demo" in out
    from weave_nb.core.manager import DeploymentManager

    names = DeploymentManager().provider_names()
    for note in err.strip().splitlines():
        assert note.startswith("note: skipped ") and "\n" not in note
    skipped = {line.split()[2].rstrip(":") for line in err.strip().splitlines()}
    assert "local" not in skipped and skipped <= set(names)


def test_killed_server_shows_as_missing(weave_home, mock_weave):
    code, out, _ = weave("deploy", "-n", "demo", "-c", str(mock_weave))
    pid = json.loads(weave("status", "demo")[1])["details"]["pid"]
    os.kill(pid, signal.SIGKILL)
    assert wait_for(lambda: not pid_alive(pid), 10)
    code, out, _ = weave("deployments", "-p", "local")
    assert code == 0
    row = out.strip().splitlines()[1].split()
    assert row[0] == "demo" and row[-1] == "missing"
    code, out, _ = weave("status", "demo")
    assert code == 1 and json.loads(out)["drift"] == "missing"
    assert weave("undeploy", "demo", "--force")[0] == 0


def test_real_weave_command_end_to_end(subprocess_env, mock_weave, weave_home):
    done = run_weave(["deploy", "--name", "sub", "--config", str(mock_weave)], subprocess_env)
    assert done.returncode == 0, done.stderr
    url = endpoint_of(done.stdout)
    # the deploying process has exited; the server answers and is listed
    assert get_json(url + "/health")["weaves"] == ["chain"]
    listed = run_weave(["deployments", "--provider", "local"], subprocess_env)
    assert listed.returncode == 0 and "sub" in listed.stdout and url in listed.stdout
    called = run_weave(["invoke", "sub", "--input", "x"], subprocess_env)
    assert called.returncode == 0, called.stderr
    assert_dependency_order(json.loads(called.stdout))
    bad = run_weave(["deploy", "--name", "bad name", "--config", str(mock_weave)], subprocess_env)
    assert bad.returncode == 2 and "error:" in bad.stderr
    pid = json.loads(run_weave(["status", "sub"], subprocess_env).stdout)["details"]["pid"]
    gone = run_weave(["undeploy", "sub", "--force"], subprocess_env)
    assert gone.returncode == 0, gone.stderr
    assert wait_for(lambda: not pid_alive(pid), 10)
    assert not port_in_use(int(url.rsplit(":", 1)[1]))
    assert not (weave_home / "local" / "sub").exists()


def test_ctrl_c_exits_130_with_how_to_recover(weave_home, mock_weave, monkeypatch):
    from weave_nb.core.manager import DeploymentManager

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(DeploymentManager, "deploy", interrupted)
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave))
    assert code == 130 and "interrupted: run the same command again to finish, or undeploy" in err


class Recording:
    """A manager for the in-process CLI whose ``slow`` provider records the config it was given."""

    @staticmethod
    def install(monkeypatch, weave_home, provider):
        from weave_nb.core.manager import DeploymentManager

        mgr = DeploymentManager(home=weave_home, providers={"slow": provider})
        monkeypatch.setattr(cli, "_manager", lambda: mgr)
        return mgr


def test_seed_flags_reach_the_provider(weave_home, mock_weave, monkeypatch):
    from frontend_fakes import make_provider

    slow = make_provider()
    Recording.install(monkeypatch, weave_home, slow)
    code, out, err = weave("deploy", "--name", "seed", "--provider", "slow", "--type", "container", "--region", "eu-2",
                           "--memory", "512", "--timeout", "45", "--env", "A=1", "--config", str(mock_weave))
    assert code == 0, err
    seen = slow.seen[-1]
    assert (seen.name, seen.provider, seen.type, seen.region, seen.memory_mb, seen.timeout_seconds) == (
        "seed", "slow", "container", "eu-2", 512, 45)
    assert seen.env_plain() == {"A": "1"}


def test_verbose_adds_progress_lines(weave_home, mock_weave, monkeypatch):
    from frontend_fakes import make_provider

    Recording.install(monkeypatch, weave_home, make_provider())
    code, quiet, err = weave("deploy", "-n", "q", "-p", "slow", "-c", str(mock_weave))
    assert code == 0, err
    code, loud, err = weave("deploy", "-n", "v", "-p", "slow", "-c", str(mock_weave), "--verbose")
    assert code == 0, err
    assert "% done" not in quiet
    assert "    50% done" in loud and "    100% done" in loud
    strip = [line for line in loud.splitlines() if not line.endswith("% done")]
    assert [line.split("(")[0] for line in strip if "==>" in line] == [
        line.split("(")[0] for line in quiet.splitlines() if "==>" in line]


def test_unexpected_errors_are_one_line_unless_verbose(weave_home, mock_weave, monkeypatch):
    from frontend_fakes import make_provider

    from weave_nb.core.manager import UNEXPECTED

    broken = make_provider()
    broken.plan = lambda self, config, artifact, ctx: {}["no-such-key"]
    broken.status = lambda self, ctx: None.endpoint
    Recording.install(monkeypatch, weave_home, broken)
    code, out, err = weave("plan", "-n", "bug", "-p", "slow", "-c", str(mock_weave))
    assert code == 1 and "Traceback" not in err
    assert err.splitlines() == ["error: KeyError: 'no-such-key'", f"  hint: {UNEXPECTED}"]
    code, out, err = weave("plan", "-n", "bug", "-p", "slow", "-c", str(mock_weave), "-v")
    assert code == 1 and err.startswith("Traceback") and 'File "' in err and "error: KeyError" in err
    code, out, err = weave("status", "bug", "-p", "slow")
    assert code == 1 and "Traceback" not in err and "error: AttributeError" in err
    # a bug in the command line itself: one line too, the traceback with --verbose where the command has it
    Recording.install(monkeypatch, weave_home, make_provider())
    monkeypatch.setattr(cli, "_notes", lambda info, out: {}["cli-bug"])
    code, out, err = weave("deploy", "-n", "ok", "-p", "slow", "-c", str(mock_weave))
    assert code == 1 and err.splitlines()[-2:] == [
        "error: unexpected KeyError: 'cli-bug'", "  hint: run again with --verbose for the traceback"]
    code, out, err = weave("deploy", "-n", "ok", "-p", "slow", "-c", str(mock_weave), "-v")
    assert code == 1 and "Traceback" in err and err.splitlines()[-1] == "  hint: this is a bug; please report it"
