"""The sandbox: real moto_server and Cloud Functions fake processes, environment in and out, nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request

import pytest

from nbhelpers import REPO_ROOT, alive, child_env, children_of, python
from weave_nb.core.errors import WeaveError
from weave_nb.core.procutil import wait_for
from weave_nb.sandbox.session import BANNER, Sandbox, SandboxError, sandbox_active

pytestmark = [pytest.mark.aws, pytest.mark.gcp]

HELLO = REPO_ROOT / "examples" / "hello.weave.yaml"


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_start_points_the_environment_at_live_servers_and_stop_restores_it():
    environ = {"AWS_PROFILE": "my-real-profile", "AWS_ACCESS_KEY_ID": "AKIAREALKEY", "KEEP": "me"}
    before = dict(environ)
    box = Sandbox(environ=environ)
    status = box.start()
    try:
        assert status.running and BANNER in status.render()
        assert sandbox_active(environ)
        assert "AWS_PROFILE" not in environ, "a real profile must not leak into the sandbox"
        assert environ["AWS_ACCESS_KEY_ID"] == "sandbox"
        assert environ["AWS_DEFAULT_REGION"] == "us-east-1"
        assert environ["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert environ["WEAVE_GCP_API_ENDPOINT"].startswith("http://127.0.0.1:")
        assert environ["WEAVE_GCP_RUN_ENDPOINT"] == environ["WEAVE_GCP_API_ENDPOINT"]
        assert environ["GCP_PROJECT_ID"] == "weave-sandbox"
        assert environ["GOOGLE_OAUTH_ACCESS_TOKEN"]

        import boto3

        iam = boto3.client(
            "iam", endpoint_url=environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
        )
        # MOTO_IAM_LOAD_MANAGED_POLICIES=true: AWS managed policies exist
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
        found = _get_json(f"{environ['WEAVE_GCP_API_ENDPOINT']}/v2/projects/weave-sandbox/locations/us-central1/functions")
        assert found.get("functions", []) == []
        pids = box.pids()
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        box.stop()
    assert environ == before
    assert not box.is_running
    assert all(wait_for(lambda p=p: not alive(p), 10) for p in pids)


def test_deployments_made_while_it_runs_are_marked_sandbox(tmp_path, monkeypatch):
    from weave_nb.core.manager import DeploymentManager
    from weave_nb.frontends.render import format_event
    from weave_nb.core.events import Done

    monkeypatch.setenv("WEAVE_SANDBOX", "1")
    monkeypatch.delenv("WEAVE_SANDBOX_PROVIDERS", raising=False)
    mgr = DeploymentManager(home=tmp_path / "home")
    info = mgr.deploy({"name": "boxed", "weave_file": str(HELLO), "provider": "local"})
    try:
        assert info.details.get("sandbox") is True
        assert "sandbox" in format_event(Done(ok=True, info=info)).lower()
        assert "sandbox" in info._repr_html_()
        assert "sandbox" in info.summary()
        assert mgr.status("boxed", "local").details.get("sandbox") is True
        assert any("not the real cloud" in note for note in mgr.list(provider="local").notes)
        # a sandbox that covers only the clouds leaves local deployments unmarked
        monkeypatch.setenv("WEAVE_SANDBOX_PROVIDERS", "aws,gcp")
        again = mgr.deploy({"name": "boxed", "weave_file": str(HELLO), "provider": "local"})
        assert "sandbox" not in again.details
        assert "sandbox" not in mgr.status("boxed", "local").details
        assert not any("sandbox" in note for note in mgr.list(provider="local").notes)
    finally:
        mgr.destroy("boxed", "local")


def test_unknown_service_and_missing_emulator_are_clear_errors_and_leave_nothing(tmp_path):
    with pytest.raises(SandboxError, match="unknown sandbox service 'azure'"):
        Sandbox(services=("azure",))
    environ: dict[str, str] = {"AWS_PROFILE": "mine"}
    workdir = tmp_path / "box"
    box = Sandbox(services=("gcp", "aws"), environ=environ, moto_server=str(tmp_path / "no-such-moto"), workdir=workdir)
    with pytest.raises(SandboxError, match="not found") as caught:
        box.start()
    assert isinstance(caught.value, WeaveError) and caught.value.suggestion
    assert environ == {"AWS_PROFILE": "mine"}, "a failed start must not change the environment"
    assert not box.is_running
    # the Cloud Functions fake started first and was stopped again
    assert (workdir / "gcp.log").exists(), "the Cloud Functions fake was started first"
    assert [p for p in _pids() if _cwd(p) == str(workdir) and alive(p)] == []


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def test_stop_forgets_sandbox_records_of_the_clouds_it_stood_in_for(tmp_path):
    from weave_nb.core.inventory import Inventory

    home = tmp_path / "home"
    inventory = Inventory(home)
    inventory.save("aws", "boxed", status="active", details={"sandbox": True})
    inventory.save("aws", "real", status="active", details={})
    inventory.save("local", "kept", status="active", details={"sandbox": True})
    environ = {"WEAVE_HOME": str(home)}
    box = Sandbox(services=("aws",), environ=environ)
    box.start()
    box.stop()
    assert sorted((d.provider, d.name) for d in Inventory(home).list()) == [("aws", "real"), ("local", "kept")]


def test_interpreter_exit_stops_the_servers():
    code = (
        "from weave_nb.sandbox.session import Sandbox\n"
        "box = Sandbox(); box.start()\n"
        "print(' '.join(str(p) for p in box.pids()), flush=True)\n"
    )
    out = subprocess.run([python(), "-c", code], env=child_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    assert all(wait_for(lambda p=p: not alive(p), 15) for p in pids), "atexit did not stop the sandbox"


def _kernel_with_sandbox(home):
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=child_env(WEAVE_HOME=str(home)), extra_arguments=[])
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def _run(kc, code: str) -> str:
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])

    kc.execute_interactive(code, timeout=120, output_hook=hook)
    return "".join(out)


@pytest.mark.parametrize("how", ["stop", "shutdown", "kill"])
def test_magic_in_a_real_kernel_leaves_no_process_behind(how, tmp_path):
    km, kc = _kernel_with_sandbox(tmp_path / "home")
    try:
        text = _run(
            kc,
            "%load_ext weave_nb.frontends.sandbox_magics\n"
            "s = %weave_sandbox start\n"
            "import os\n"
            "print('PIDS', *[svc.pid for svc in s.services])\n"
            "print('ENV', os.environ['WEAVE_SANDBOX'], os.environ['AWS_ENDPOINT_URL'])\n"
            "print(s.render())\n"
            "import weave_nb\n"
            f"info = weave_nb.deploy('kfun', 'gcp', weave_file={str(HELLO)!r}, public=True)\n"
            "print('SUMMARY', info.summary())\n",
        )
        assert "ERROR" not in text, text
        assert "SANDBOX" in text and "(sandbox, not the real cloud)" in text
        pids = [int(p) for p in text.split("PIDS", 1)[1].splitlines()[0].split()]
        assert len(pids) == 2
        tree = pids + [c for p in pids for c in children_of(p)]
        assert all(alive(p) for p in pids)
        assert len(tree) > 2, "the Cloud Functions fake serves the deployed function from its own process"
        if how == "stop":
            text = _run(kc, "off = %weave_sandbox stop\nprint(off)\nimport os\nprint('LEFT', os.environ.get('WEAVE_SANDBOX'), os.environ.get('AWS_ENDPOINT_URL'))")
            assert "sandbox: off" in text and "LEFT None None" in text, text
            gone = _run(kc, "now = %weave_sandbox status\nprint(now)")
            assert "sandbox: off" in gone
            from weave_nb.core.inventory import Inventory

            assert Inventory(tmp_path / "home").list("gcp") == [], "the sandbox's records went with it"
        elif how == "shutdown":
            kc.stop_channels()
            km.shutdown_kernel(now=False)
        else:
            os.kill(km.provisioner.process.pid, signal.SIGKILL)
        assert all(wait_for(lambda p=p: not alive(p), 20) for p in tree), f"left behind: {[p for p in tree if alive(p)]}"
    finally:
        if km.is_alive():
            kc.stop_channels()
            km.shutdown_kernel(now=True)


def test_magic_rejects_a_bad_action():
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.frontends.sandbox_magics import register

    ip = InteractiveShell.instance()  # the shell other tests made, or a new one
    register(ip)
    with pytest.raises(UsageError):
        ip.run_line_magic("weave_sandbox", "launch")
    status = ip.run_line_magic("weave_sandbox", "status")
    assert not status.running and "off" in str(status)


def test_has_cloud_credentials_looks_at_env_and_files_only(tmp_path):
    from weave_nb.sandbox.session import has_cloud_credentials

    home = tmp_path / "home"
    home.mkdir()
    assert not has_cloud_credentials("aws", {}, home=home)
    assert not has_cloud_credentials("gcp", {}, home=home)
    assert has_cloud_credentials("aws", {"AWS_ACCESS_KEY_ID": "AKIA"}, home=home)
    assert has_cloud_credentials("aws", {"AWS_PROFILE": "dev"}, home=home)
    assert has_cloud_credentials("gcp", {"GOOGLE_APPLICATION_CREDENTIALS": "/k.json"}, home=home)
    # a running sandbox's fake keys do not count as real credentials
    assert not has_cloud_credentials("aws", {"AWS_ACCESS_KEY_ID": "sandbox", "WEAVE_SANDBOX": "1"}, home=home)
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_access_key_id = AKIA\n")
    assert has_cloud_credentials("aws", {}, home=home)
    adc = home / ".config" / "gcloud"
    adc.mkdir(parents=True)
    (adc / "application_default_credentials.json").write_text("{}")
    assert has_cloud_credentials("gcp", {}, home=home)
    assert not has_cloud_credentials("docker", {"DOCKER_HOST": "x"}, home=home)


def test_failed_and_stopped_sandbox_deploys_go_with_the_sandbox(tmp_path, monkeypatch):
    """A deploy that fails (or is stopped) in the sandbox is marked from its first row, so stop() removes it too."""
    from frontend_fakes import make_provider
    from weave_nb.core.errors import DeploymentFailed
    from weave_nb.core.inventory import Inventory
    from weave_nb.core.manager import DeploymentManager

    home = tmp_path / "home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    for var in ("WEAVE_SANDBOX", "WEAVE_SANDBOX_PROVIDERS"):
        monkeypatch.delenv(var, raising=False)
    failing = make_provider(fail_with="the function is locked (409)")
    mgr = DeploymentManager(home=home, providers={"gcp": failing})
    with pytest.raises(DeploymentFailed):
        mgr.deploy({"name": "real-cloud", "weave_text": HELLO.read_text(), "provider": "gcp"})
    environ = dict(os.environ)
    box = Sandbox(services=("gcp",), environ=environ)
    box.start()
    try:
        monkeypatch.setenv("WEAVE_SANDBOX", environ["WEAVE_SANDBOX"])
        monkeypatch.setenv("WEAVE_SANDBOX_PROVIDERS", environ["WEAVE_SANDBOX_PROVIDERS"])
        with pytest.raises(DeploymentFailed):
            mgr.deploy({"name": "boxed", "weave_text": HELLO.read_text(), "provider": "gcp"})
        row = Inventory(home).get("gcp", "boxed")
        assert row.status.value == "failed" and row.details.get("sandbox") is True
    finally:
        box.stop()
    names = [d.name for d in Inventory(home).list("gcp")]
    assert names == ["real-cloud"], "the sandbox's failed row went with it; the real one stays"


def test_magic_start_only_aws_beside_a_running_gcp_sandbox_starts_aws(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from weave_nb.frontends.sandbox_magics import SandboxMagics

    for var in ("AWS_ENDPOINT_URL", "WEAVE_SANDBOX", "WEAVE_SANDBOX_PROVIDERS", "WEAVE_GCP_API_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "my-real-profile")  # restored by stop, removed while the sandbox runs
    shell = InteractiveShell.instance()
    magics = SandboxMagics(shell=shell)
    shell.register_magics(magics)
    try:
        first = shell.run_line_magic("weave_sandbox", "start --only gcp")
        assert [s.name for s in first.services] == ["gcp"] and "AWS_ENDPOINT_URL" not in os.environ
        both = shell.run_line_magic("weave_sandbox", "start --only aws   # now AWS too")
        assert sorted(s.name for s in both.services) == ["aws", "gcp"]
        assert os.environ["AWS_ENDPOINT_URL"] == next(s.url for s in both.services if s.name == "aws")
        assert os.environ["WEAVE_SANDBOX_PROVIDERS"] == "gcp,aws" and "AWS_PROFILE" not in os.environ
        assert os.environ["WEAVE_GCP_API_ENDPOINT"] == next(s.url for s in first.services if s.name == "gcp")
        pids = magics.sandbox.pids()
        assert len(pids) == 2 and all(alive(p) for p in pids)
    finally:
        shell.run_line_magic("weave_sandbox", "stop")
    assert "AWS_ENDPOINT_URL" not in os.environ and "WEAVE_SANDBOX" not in os.environ
    assert os.environ["AWS_PROFILE"] == "my-real-profile"
    assert all(wait_for(lambda p=p: not alive(p), 10) for p in pids)
