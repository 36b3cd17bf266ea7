"""The ``weave`` command line behaves like the best ones (Chalice, SAM, Zappa): version, help,
"did you mean", one error line set, Ctrl-C, no prompt without a terminal, machine-readable
output, init, package, --profile, the terminal sandbox and the next commands after a deploy.

In-process through ``cli.main`` and as real subprocesses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from weave_nb import __version__
from weave_nb.frontends import cli
from weave_nb.core.procutil import pid_alive, wait_for

from conftest import REPO_ROOT, run_weave, weave_command
from test_cli import endpoint_of, weave


# ----------------------------------------------------------------------------- version, help, did you mean
def test_version_bare_weave_and_help_command(weave_home):
    for flag in ("--version", "-V"):
        assert weave(flag) == (0, f"weave {__version__}\n", "")
    code, out, err = weave()
    assert code == 0 and err == "" and out.startswith("usage: weave") and "deploy" in out and "sandbox" in out
    code, out, err = weave("help", "status")
    assert code == 0 and out.startswith("usage: weave status") and "--output" in out
    assert weave("help")[1] == weave()[1]
    code, out, err = weave("help", "sttaus")
    assert code == 2 and "did you mean 'status'?" in err


def test_bare_weave_as_a_real_command_exits_0(subprocess_env):
    done = run_weave([], subprocess_env)
    assert done.returncode == 0 and done.stdout.startswith("usage: weave") and done.stderr == ""


def test_a_mistyped_flag_gets_did_you_mean_and_the_subcommand_usage(weave_home):
    code, out, err = weave("deploy", "--nmae", "x")
    assert code == 2 and out == ""
    assert err.startswith("usage: weave deploy ")
    assert "unrecognized arguments: --nmae x (did you mean '--name'?)" in err
    assert "hint: `weave deploy --help` lists every option" in err
    code, out, err = weave("deployments", "--outptu=json")
    assert code == 2 and err.startswith("usage: weave deployments") and "did you mean '--output'?" in err


def test_a_mistyped_command_or_choice_gets_did_you_mean(weave_home):
    code, out, err = weave("deplyo")
    assert code == 2 and "invalid choice: 'deplyo'" in err and "(did you mean 'deploy'?)" in err
    assert "hint: `weave --help` lists every command" in err
    code, out, err = weave("deployments", "--status", "actve")
    assert code == 2 and err.startswith("usage: weave deployments") and "did you mean 'active'?" in err


def test_a_setting_passed_as_a_provider_option_names_its_flag(weave_home, mock_weave):
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave), "-o", "memroy_mb=512")
    assert code == 2 and "unknown option 'memroy_mb' (did you mean the setting 'memory_mb'? pass --memory)" in err
    assert "Extra inputs" not in err
    code, out, err = weave("plan", "-n", "demo", "-c", str(mock_weave), "-o", "region=eu-west-1")
    assert code == 2 and "'region' is a deployment setting, not a provider option: pass --region" in err
    code, out, err = weave("plan", "-n", "demo", "-c", str(mock_weave), "-o", "pyhton=/x")
    assert code == 2 and "did you mean 'python'?" in err and "setting" not in err.splitlines()[0]


# ----------------------------------------------------------------------------- errors once, Ctrl-C
def test_a_failed_deploy_prints_its_error_once_on_stderr(weave_home, mock_weave, tmp_path):
    fake_python = tmp_path / "broken-python"
    fake_python.write_text("#!/bin/sh\nexit 3\n")
    fake_python.chmod(0o755)
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave), "-o", f"python={fake_python}")
    assert code == 1
    assert "ERROR" not in out and "did not become healthy" not in out and "hint:" not in out
    assert err.count("error:") == 1 and err.count("hint:") == 1 and "did not become healthy" in err
    assert "next:" not in out


def _wait_for_line(proc: subprocess.Popen, words: str) -> str:
    for line in proc.stdout:
        if words in line:
            return line
    raise AssertionError(f"no line with {words!r}; stderr: {proc.stderr.read()}")


def _interrupt(proc: subprocess.Popen) -> tuple[int, str, float]:
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=10)
    return code, proc.stderr.read(), time.monotonic() - sent


def test_ctrl_c_during_a_deploy_exits_130_within_a_second(subprocess_env, mock_weave, tmp_path, weave_home):
    hanging = tmp_path / "hanging-python"  # a server that starts but never answers
    hanging.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(60)\n")
    hanging.chmod(0o755)
    proc = subprocess.Popen([*weave_command(), "deploy", "-n", "slow", "-c", str(mock_weave), "-o", f"python={hanging}"],
                            env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_line(proc, "==> [3/3]")  # waiting for a server that never answers
    assert _running(str(hanging))
    code, err, seconds = _interrupt(proc)
    assert code == 130 and seconds < 1.0, (code, seconds, err)
    assert err.strip().splitlines() == [
        "interrupted: run the same command again to finish, or undeploy to clean up what was made"]
    # what the run made was undone; undeploy forgets the record
    assert wait_for(lambda: not _running(str(hanging)), 5)
    assert run_weave(["undeploy", "slow", "--force"], subprocess_env).returncode == 0


def test_ctrl_c_during_a_read_only_command_never_says_undeploy(subprocess_env, mock_weave):
    assert run_weave(["deploy", "-n", "frozen", "-c", str(mock_weave)], subprocess_env).returncode == 0
    pid = json.loads(run_weave(["status", "frozen"], subprocess_env).stdout)["details"]["pid"]
    os.kill(pid, signal.SIGSTOP)  # the server accepts the connection but never answers
    try:
        proc = subprocess.Popen([*weave_command(), "invoke", "frozen", "--input", "x"], env=subprocess_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the command is waiting on the server once the connection is open
        assert wait_for(lambda: _connected(proc.pid), 30)
        code, err, seconds = _interrupt(proc)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert code == 130 and seconds < 1.0, (code, seconds, err)
    assert err.strip().splitlines() == ["interrupted: stopped before it finished; nothing was changed"]
    assert "undeploy" not in err
    assert run_weave(["undeploy", "frozen", "--force"], subprocess_env).returncode == 0


def _running(words: str) -> list[int]:
    """Live processes whose command line contains ``words``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if words in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") \
                        and pid_alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _connected(pid: int) -> bool:
    """True when process ``pid`` has an established TCP connection (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "01" and parts[9] in inodes:  # 01: ESTABLISHED
                return True
    return False


# ----------------------------------------------------------------------------- undeploy without a terminal
def test_undeploy_without_a_terminal_refuses_to_prompt(subprocess_env, mock_weave):
    assert run_weave(["deploy", "-n", "kept", "-c", str(mock_weave)], subprocess_env).returncode == 0
    done = run_weave(["undeploy", "kept"], subprocess_env, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "error: refusing to prompt without a terminal: pass --force"
    assert "hint:" in done.stderr and "Remove" not in done.stdout
    assert json.loads(run_weave(["status", "kept"], subprocess_env).stdout)["status"] == "active"
    assert run_weave(["undeploy", "kept", "--force"], subprocess_env).returncode == 0


# ----------------------------------------------------------------------------- output formats, next steps
def test_deployments_and_status_have_machine_readable_output(weave_home, mock_weave):
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave))
    assert code == 0, err
    url = endpoint_of(out)
    code, out, err = weave("deployments", "-p", "local", "--output", "json")
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["name"] == "demo" and row["endpoint"] == url and row["drift"] is None and row["version"] is None
    assert row["created_at"].endswith("+00:00") and "T" in row["created_at"]
    code, out, err = weave("deployments", "-p", "local", "--output", "csv")
    (line,) = list(csv.DictReader(io.StringIO(out)))
    assert line["name"] == "demo" and line["status"] == "active" and line["endpoint"] == url and line["drift"] == ""
    code, out, err = weave("status", "demo", "--output", "table")
    assert code == 0
    fields = dict(re.split(r"\s+", ln, maxsplit=1) for ln in out.strip().splitlines() if not ln.startswith("resource"))
    assert fields["status"] == "active" and fields["endpoint"] == url and fields["drift"] == "-"
    data = json.loads(weave("status", "demo", "--output", "json")[1])
    assert data["drift"] is None and data["created_at"].startswith("20")


def test_a_deploy_ends_with_the_next_commands_once(weave_home, mock_weave):
    code, out, err = weave("deploy", "-n", "demo", "-c", str(mock_weave))
    assert code == 0, err
    assert out.rstrip().splitlines()[-4:] == [
        "next:", '  weave invoke demo --input "hello"', "  weave logs demo", "  weave undeploy demo"]
    assert out.count("weave invoke demo") == 1
    assert "next:" not in weave("plan", "-n", "demo", "-c", str(mock_weave))[1]


# ----------------------------------------------------------------------------- init, package
@pytest.mark.parametrize("example", ["hello", "pipeline"])
def test_init_writes_a_starter_that_deploys_as_is(subprocess_env, tmp_path, example):
    env = {k: v for k, v in subprocess_env.items() if not k.endswith("_API_KEY")}
    folder = tmp_path / "project"
    folder.mkdir()
    done = run_weave(["init", "--example", example], env, cwd=folder)
    assert done.returncode == 0, done.stderr
    assert (folder / ".weave.yaml").is_file() and f"weave deploy --name {example}" in done.stdout
    again = run_weave(["init"], env, cwd=folder)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert (folder / ".weave.yaml").read_text().count(example) >= 1
    deployed = run_weave(["deploy", "--name", example], env, cwd=folder)
    assert deployed.returncode == 0, deployed.stderr
    called = run_weave(["invoke", example, "--input", "tides"], env, cwd=folder)
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["weave"] == example
    assert run_weave(["undeploy", example, "--force"], env, cwd=folder).returncode == 0
    assert run_weave(["init", "--force", "-o", "other.weave.yaml"], env, cwd=folder).returncode == 0
    assert (folder / "other.weave.yaml").is_file()


def test_package_writes_the_artifact_a_deploy_ships(weave_home, mock_weave, tmp_path):
    target = tmp_path / "demo.zip"
    code, out, err = weave("package", "demo", "-c", str(mock_weave), "-o", str(target))
    assert code == 0, err
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    assert f"content hash {digest}" in out
    assert "weave.json" in zipfile.ZipFile(target).namelist()
    assert not (weave_home / "local").exists()  # nothing deployed
    assert weave("package", "demo", "-c", str(mock_weave), "-o", str(target))[0] == 2  # no overwrite without --force
    assert weave("deploy", "-n", "demo", "-c", str(mock_weave))[0] == 0
    assert json.loads(weave("status", "demo")[1])["content_hash"] == digest


def test_package_for_docker_writes_the_build_context_without_an_engine(weave_home, mock_weave, tmp_path):
    code, out, err = weave("package", "demo", "-p", "docker", "-c", str(mock_weave), "-o", str(tmp_path / "ctx") + "/")
    assert code == 0, err
    assert {"Dockerfile", "weave.json", "weave_runtime"} <= {p.name for p in (tmp_path / "ctx").iterdir()}
    assert "FROM " in (tmp_path / "ctx" / "Dockerfile").read_text()
    code, out, err = weave("package", "demo", "-p", "docker", "-c", str(mock_weave), "-o", str(tmp_path / "ctx.tar"))
    assert code == 0 and "Dockerfile" in subprocess.run(["tar", "tf", str(tmp_path / "ctx.tar")], capture_output=True,
                                                        text=True).stdout


def test_package_bad_input_exits_2_and_writes_nothing(weave_home, mock_weave, tmp_path):
    code, out, err = weave("package", "bad name", "-c", str(mock_weave), "-o", str(tmp_path / "x.zip"))
    assert code == 2 and "hint:" in err and not (tmp_path / "x.zip").exists()
    code, out, err = weave("package", "demo", "-p", "nosuchcloud", "-c", str(mock_weave), "-o", str(tmp_path / "x.zip"))
    assert code == 2 and "unknown provider" in err and not (tmp_path / "x.zip").exists()


# ----------------------------------------------------------------------------- --profile
def test_profile_reaches_the_aws_credentials_lookup(weave_home, mock_weave, monkeypatch):
    from weave_nb.core.auth import AuthenticationManager
    from weave_nb.core.manager import DeploymentManager
    from weave_nb.providers.aws.auth import profile_name

    monkeypatch.setenv("AWS_PROFILE", "from-environment")
    args = cli.build_parser().parse_args(["plan", "-n", "demo", "-c", str(mock_weave), "--profile", "team-dev"])
    config, _ = DeploymentManager().configure(cli.config_values(args))
    assert profile_name(AuthenticationManager(), config) == "team-dev"
    # undeploy and status: the profile holds for that one command, then AWS_PROFILE is back
    seen = []
    monkeypatch.setattr(DeploymentManager, "status", lambda self, name, provider=None: seen.append(os.environ["AWS_PROFILE"])
                        or (_ for _ in ()).throw(KeyboardInterrupt))
    assert weave("deploy", "-n", "demo", "-c", str(mock_weave))[0] == 0
    assert weave("status", "demo", "--profile", "team-dev")[0] == 130
    assert seen == ["team-dev"] and os.environ["AWS_PROFILE"] == "from-environment"


# ----------------------------------------------------------------------------- the terminal sandbox
def test_sandbox_start_env_deploy_stop_with_real_processes(subprocess_env, mock_weave, weave_home, monkeypatch):
    from frontend_fakes import make_provider

    from weave_nb.core.inventory import Inventory
    from weave_nb.core.manager import DeploymentManager, sandbox_details

    env = {k: v for k, v in subprocess_env.items() if k not in ("WEAVE_SANDBOX", "WEAVE_SANDBOX_PROVIDERS")}
    started = run_weave(["sandbox", "start"], env)
    try:
        assert started.returncode == 0, started.stderr
        state = json.loads((weave_home / "sandbox.json").read_text())
        pids = [svc["pid"] for svc in state["services"].values()]
        assert set(state["services"]) == {"aws", "gcp"} and all(pid_alive(p) for p in pids)
        # the stand-ins outlive the command that started them
        assert run_weave(["sandbox", "status"], env).returncode == 0
        shown = run_weave(["sandbox", "env"], env)
        assert shown.returncode == 0 and "export WEAVE_SANDBOX=1" in shown.stdout
        script = (f'eval "$({" ".join(weave_command())} sandbox env)"\n'
                  f'python -c "import os, json; print(json.dumps(dict(os.environ)))"\n')
        pointed = json.loads(subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                                            check=True).stdout)
        assert pointed["AWS_ENDPOINT_URL"] == state["services"]["aws"]["url"]
        assert pointed["WEAVE_GCP_API_ENDPOINT"] == state["services"]["gcp"]["url"]
        assert "AWS_PROFILE" not in pointed and pointed["AWS_ACCESS_KEY_ID"] == "sandbox"
        # the AWS stand-in answers at the exported address
        import urllib.request

        with urllib.request.urlopen(pointed["AWS_ENDPOINT_URL"] + "/moto-api/", timeout=10) as answer:
            assert answer.status == 200
        # deployments made meanwhile on the covered providers are marked sandbox
        assert sandbox_details({}, "aws", pointed)["sandbox"] is True
        assert sandbox_details({}, "gcp", pointed)["sandbox"] is True
        # a deploy on aws in that shell is marked sandbox (the provider is a stand-in here: the stand-in
        # AWS records functions but runs no code); a local one is not, as in the notebook's sandbox
        for key, value in pointed.items():
            monkeypatch.setenv(key, value)
        mgr = DeploymentManager(home=weave_home, providers={"aws": make_provider()})
        monkeypatch.setattr(cli, "_manager", lambda: mgr)
        code, out, err = weave("deploy", "-n", "boxed", "-p", "aws", "-c", str(mock_weave))
        assert code == 0, err
        assert "SANDBOX" in out and json.loads(weave("status", "boxed")[1])["details"]["sandbox"] is True
        deployed = run_weave(["deploy", "-n", "meanwhile", "-c", str(mock_weave)], pointed)
        assert deployed.returncode == 0, deployed.stderr
        assert not json.loads(run_weave(["status", "meanwhile"], pointed).stdout)["details"].get("sandbox")
        assert run_weave(["undeploy", "meanwhile", "--force"], pointed).returncode == 0
    finally:
        stopped = run_weave(["sandbox", "stop"], env)
    assert stopped.returncode == 0 and "stopped aws, gcp" in stopped.stdout
    assert wait_for(lambda: not any(pid_alive(p) for p in pids), 10)
    assert not (weave_home / "sandbox.json").exists()
    assert Inventory(weave_home).list("aws") == []  # the sandbox deployment ended with its stand-ins
    off = run_weave(["sandbox", "env"], env)
    assert off.returncode == 1 and "not running" in off.stderr and off.stdout == ""
    assert run_weave(["sandbox", "status"], env).returncode == 1


# ----------------------------------------------------------------------------- the Cloud Functions fake's CLI
def test_gcf_fake_creates_its_workdir(tmp_path):
    workdir = tmp_path / "not" / "yet" / "there"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "weave_nb.sandbox.emulators.gcf_fake", "--workdir", str(workdir)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), proc.stderr.read()
        assert workdir.is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
