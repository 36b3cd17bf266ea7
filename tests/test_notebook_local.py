"""A notebook that deploys, lists, invokes and undeploys with the local provider, run by nbclient on a real kernel.

The kernel gets a fake secret in its environment, the weave file an ``auth``
with another; the saved notebook, the inventory and every file under
WEAVE_HOME must hold no trace of either.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sqlite3
import time
from pathlib import Path

import nbformat
import pytest
from conftest import undeploy_all_local
from frontend_fakes import HELLO, gated_kernel_setup
from nbclient import NotebookClient

from weave_nb.core.manager import DeploymentManager
from weave_nb.core.procutil import pid_alive

ROOT = Path(__file__).resolve().parents[1]
ENV_SECRET = "sk-test-ENVSECRET-4f1e9c2a"
FLAG_SECRET = "sk-test-FLAGSECRET-7b3d0e55"
AUTH_SECRET = "sk-test-AUTHSECRET-9a8c6d21"
SECRETS = (ENV_SECRET, FLAG_SECRET, AUTH_SECRET)

WEAVE = f"""\
version: "1.0"
agents:
  greeter: {{model: mock, outputs: greeting}}
weaves:
  hello: {{description: say hello, agents: [greeter]}}
env:
  OPENAI_API_KEY: ${{OPENAI_API_KEY}}
deployment:
  provider: local
  auth: {{method: api_key, api_key: {AUTH_SECRET}}}
"""

CELL_WEAVE = """\
version: "1.0"
agents:
  echo: {model: mock, outputs: reply}
weaves:
  echoer: {description: echo, agents: [echo]}
env:
  OPENAI_API_KEY: ${OPENAI_API_KEY}
"""

CELLS = [
    "%load_ext weave_nb",
    "import os\ntoken = os.environ['NB_FLAG_TOKEN']",
    "info = %weave_deploy --name nbdemo --config app.weave.yaml --env EXTRA_TOKEN=$token\ninfo",
    "%%weave_deploy --name nbcell\n" + CELL_WEAVE,
    "df = %weave_deployments --provider local\ndf",
    "print(sorted(df.columns)); print(str(df['created_at'].dtype)); print(list(df['name']))",
    "answer = %weave_invoke nbdemo --input 'hello notebook'\nanswer",
    (
        "pid = info.details['pid']\n"
        "environ = open(f'/proc/{pid}/environ', 'rb').read()\n"
        "print('secret reached the process:', os.environ['OPENAI_API_KEY'].encode() in environ and token.encode() in environ)"
    ),
    "%weave_status nbdemo",
    "%weave_logs nbdemo",
    "import shutil\nshutil.copytree(os.environ['WEAVE_HOME'], os.environ['WEAVE_SNAPSHOT'])",
    "%weave_undeploy nbdemo",
    "%weave_undeploy nbdemo --force",
    "%config WeaveMagics.confirm_undeploy = False\n%weave_undeploy nbcell",
    "%weave_deployments --provider local",
    "%weave_deploy --name broken --config app.weave.yaml --option python=/bin/false --option startup_timeout=5",
    "%weave_undeploy broken",
]


def scan(folder: Path) -> list[str]:
    """Every file under ``folder`` holding a secret (as text or bytes)."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found.extend(f"{path.name}: {s[:12]}" for s in SECRETS if s.encode() in data)
    return found


@pytest.fixture
def workdir(tmp_path):
    home = tmp_path / "home"
    yield tmp_path
    undeploy_all_local(home)


@pytest.mark.timeout(300)
def test_notebook_deploys_lists_invokes_undeploys_without_leaking(workdir):
    home, snapshot = workdir / "home", workdir / "snapshot"
    (workdir / "app.weave.yaml").write_text(WEAVE)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.cells[11].metadata["tags"] = ["raises-exception"]  # nobody can answer the prompt here
    nb.cells[15].metadata["tags"] = ["raises-exception"]  # a deploy that fails
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    env = {
        **os.environ,
        "WEAVE_HOME": str(home),
        "WEAVE_SNAPSHOT": str(snapshot),
        "OPENAI_API_KEY": ENV_SECRET,
        "NB_FLAG_TOKEN": FLAG_SECRET,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)
    saved = workdir / "saved.ipynb"
    nbformat.write(nb, saved)

    outs = [c.outputs for c in nb.cells]

    def text(i: int) -> str:
        parts = []
        for o in outs[i]:
            parts.append(o.get("text", ""))
            parts.extend(v if isinstance(v, str) else json.dumps(v) for v in o.get("data", {}).values())
        return "\n".join(parts)

    # deploy: the live widget was replaced by a static copy of the final progress, then the result
    deploy = outs[2]
    assert all("application/vnd.jupyter.widget-view+json" not in o.get("data", {}) for o in deploy)
    assert any("weave-progress" in o.get("data", {}).get("text/html", "") for o in deploy)
    # text-only renderers get the events as lines
    plain = next(o["data"]["text/plain"] for o in deploy if "weave-progress" in o.get("data", {}).get("text/html", ""))
    assert "==> [2/3] server process on 127.0.0.1" in plain and "Plan for nbdemo on local:" in plain
    assert "server process on 127.0.0.1" in text(2) and "nbdemo [local] active http://127.0.0.1:" in text(2)
    assert "weave-deployment" in text(2)
    assert "nbcell [local] active" in text(3)
    # the DataFrame
    assert "['created_at', 'drift', 'endpoint', 'health', 'message', 'name', 'provider', 'region', 'status', 'traffic', 'updated_at', 'version']" in text(5)
    assert "UTC" in text(5) and "['nbcell', 'nbdemo']" in text(5)
    assert "<table" in text(4)
    assert '"input": "hello notebook"' in text(6) and '"weave": "hello"' in text(6)
    assert "secret reached the process: True" in text(7)
    assert "nbdemo [local] active" in text(8)
    assert "POST / HTTP/1.1" in text(9)
    assert "UsageError: cannot ask for confirmation here; to remove 'nbdemo', add --force" in text(11)
    assert "nbdemo [local] destroyed" in text(12) and "nbcell [local] destroyed" in text(13)

    # a failed deploy: message and hint, no traceback; then it can be undeployed
    failure = next(o for o in outs[15] if o["output_type"] == "error")
    shown = "\n".join(failure["traceback"])
    assert failure["ename"] == "WeaveFailure" and "did not become healthy" in shown and "hint:" in shown
    assert "Traceback" not in shown and 'File "' not in shown
    assert "broken [local] destroyed" in text(16)

    # nothing secret anywhere
    raw = saved.read_text()
    assert not [s for s in SECRETS if s in raw]
    assert scan(snapshot) == [] and scan(home) == []
    assert (snapshot / "inventory.db").is_file() and list(snapshot.rglob("server.log"))

    # everything the notebook started has stopped
    db = sqlite3.connect(snapshot / "inventory.db")
    pids = [json.loads(d)["pid"] for (d,) in db.execute("SELECT details FROM deployments WHERE provider='local'")]
    db.close()
    assert len(pids) == 2 and not any(pid_alive(p) for p in pids)
    assert DeploymentManager(home=home).inventory.list() == []


@pytest.mark.timeout(300)
def test_deploy_form_in_a_real_kernel_writes_to_its_output(workdir):
    """The form's worker thread writes into the form's Output widget while the kernel runs other cells."""
    home = workdir / "home"
    (workdir / "app.weave.yaml").write_text(WEAVE.replace(f"  auth: {{method: api_key, api_key: {AUTH_SECRET}}}\n", ""))
    cells = [
        (
            "from weave_nb.frontends.widgets import DeployForm\n"
            "form = DeployForm(name='formnb', weave_file='app.weave.yaml', env_text='OPENAI_API_KEY')\n"
            "form.deploy_button.click()\nform"
        ),
        "print('kernel free while deploying:', form.future is not None)",
        (
            "info = form.wait(60)\nprint(form.model.state, info.summary())\n"
            "print('output holds:', [o['data']['text/plain'] for o in form.output.outputs])\n"
            "print('progress shows:', form.progress.state.render_text().splitlines()[0])"
        ),
        "import weave_nb\nprint(weave_nb.undeploy('formnb').status.value)",
    ]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    env = {**os.environ, "WEAVE_HOME": str(home), "OPENAI_API_KEY": ENV_SECRET,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    client = NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(workdir)}})
    client.execute(env=env)
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in nb.cells]
    # nothing from the worker thread leaked into later cells' own output
    assert texts[1] == "kernel free while deploying: True\n"
    lines = texts[2].splitlines()
    assert lines[0].startswith("done formnb [local] active http://127.0.0.1:") and len(lines) == 3
    assert lines[1].startswith("output holds: ['formnb [local] active http://127.0.0.1:")
    assert re.fullmatch(r"progress shows: deploy formnb: done \(100% · \d+\.\ds\)", lines[2]), lines[2]  # percent and elapsed time
    assert "destroyed" in texts[3]
    raw = json.dumps(nbformat.writes(nb))
    assert ENV_SECRET not in raw


@pytest.mark.timeout(300)
def test_progress_streams_from_a_real_kernel_while_the_deploy_runs(workdir):
    """Widget updates reach the frontend, parented to the deploying cell, before the deploy ends."""
    from jupyter_client.manager import start_new_kernel

    gate = workdir / "open-the-gate"
    env = {**os.environ, "WEAVE_HOME": str(workdir / "home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(workdir))
    try:
        setup = gated_kernel_setup(str(gate))
        reply = kc.execute_interactive(setup, timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
        cell = "%%weave_deploy --name live --provider gated\n" + HELLO
        msg_id = kc.execute(cell)
        seen: list[dict] = []

        def until(predicate, timeout=30.0):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    msg = kc.get_iopub_msg(timeout=1)
                except queue.Empty:
                    continue
                if msg["parent_header"].get("msg_id") == msg_id:
                    seen.append(msg)
                    if predicate(msg):
                        return msg
            raise AssertionError(f"not seen; got {[m['msg_type'] for m in seen]}")

        def mentions(text):
            return lambda msg: text in json.dumps(msg["content"])

        until(lambda m: m["msg_type"] == "display_data" and "application/vnd.jupyter.widget-view+json" in m["content"]["data"])
        until(mentions("Step 1/2 : FROM python:3.12-slim"))
        assert not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in seen)
        assert not gate.exists()
        gate.write_text("go")
        final = until(lambda m: m["msg_type"] == "update_display_data")
        assert "weave-progress" in final["content"]["data"]["text/html"] and "==> [2/2] run the service" in final["content"]["data"]["text/plain"]
        until(lambda m: m["msg_type"] == "execute_result")
        until(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "idle")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
