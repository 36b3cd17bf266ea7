"""Shared fixtures: a private WEAVE_HOME per test, a manager, weave files, and clean-up.

Every test gets its own ``$WEAVE_HOME`` (a temporary folder), so nothing
touches the user's ``~/.weave``. After each test, every local deployment
still recorded there is undeployed and its server process stopped, even when
the test failed half-way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import weave_nb

REPO_ROOT = Path(weave_nb.__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "examples"

# Three agents on the offline mock model; listed out of order on purpose so the
# runtime has to sort them: a -> b -> c, and c also reads a.
MOCK_WEAVE = """\
version: "1.0"
agents:
  summarizer: {model: mock, inputs: [drafter, fetcher], outputs: summary}
  drafter: {model: mock, inputs: fetcher, outputs: draft}
  fetcher: {model: mock, outputs: facts}
weaves:
  chain: {description: fetch then draft then summarise, agents: [summarizer, drafter, fetcher]}
deployment: {provider: local}
"""


@pytest.fixture
def weave_home(tmp_path, monkeypatch):
    """A fresh, private ``$WEAVE_HOME`` for this test; afterwards every local deployment left in it is undeployed."""
    home = tmp_path / "weave-home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    yield home
    undeploy_all_local(home)


def undeploy_all_local(home: Path) -> None:
    """Undeploy every local deployment recorded under ``home``; stop its process by hand if that fails."""
    if not Path(home, "inventory.db").exists():
        return
    from weave_nb.core.inventory import Inventory
    from weave_nb.core.manager import DeploymentManager
    from weave_nb.core.procutil import stop_process

    mgr = DeploymentManager(home=home, lock_wait=30)
    for info in Inventory(home).list("local"):
        try:
            mgr.destroy(info.name, "local")
        except Exception:  # noqa: BLE001 - clean-up must go on
            pid = info.details.get("pid")
            if pid:
                stop_process(int(pid), str(Path(home) / "local" / info.name))


@pytest.fixture
def manager(weave_home):
    """A DeploymentManager on the private home."""
    from weave_nb.core.manager import DeploymentManager

    return DeploymentManager(home=weave_home)


@pytest.fixture
def mock_weave(tmp_path):
    """Path of a three-agent weave that runs offline on the mock model."""
    path = tmp_path / "chain.weave.yaml"
    path.write_text(MOCK_WEAVE)
    return path


@pytest.fixture
def subprocess_env(weave_home):
    """Environment for child processes: this source tree first on the path, the private home."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["WEAVE_HOME"] = str(weave_home)
    env.pop("PYTHONSTARTUP", None)
    return env


def weave_command() -> list[str]:
    """The ``weave`` console script if installed, else ``python -m weave_nb.frontends.cli``."""
    found = shutil.which("weave")
    return [found] if found else [sys.executable, "-m", "weave_nb.frontends.cli"]


def run_weave(args: list[str], env: dict[str, str], timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run the real ``weave`` command and capture its output."""
    return subprocess.run(
        [*weave_command(), *args], env=env, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def server_pids(home: Path) -> list[int]:
    """Pids of every live weave server process whose command line points into ``home``."""
    marker = str(Path(home) / "local")
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if marker in cmdline and "weave_runtime" in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return sorted(found)


# A deploy run in a child process. It prints "PAUSED" and waits for a line on
# stdin when the step named in argv[1] finishes ("-" never pauses), then prints
# "RESULT {json}". argv: pause-after, weave file, name, lock wait seconds.
DEPLOY_SCRIPT = """
import json, sys, time
from weave_nb.core.errors import WeaveError
from weave_nb.core.events import StepFinished
from weave_nb.core.manager import DeploymentManager

pause_after, weave_file, name, lock_wait = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

def sink(event):
    if isinstance(event, StepFinished) and event.step == pause_after:
        print("PAUSED", flush=True)
        sys.stdin.readline()

mgr = DeploymentManager(lock_wait=lock_wait)
print("STARTING", time.time(), flush=True)
try:
    info = mgr.deploy({"name": name, "weave_file": weave_file}, sink=sink)
    out = {"ok": True, "pid": info.details.get("pid"), "message": info.message, "hash": info.content_hash}
except WeaveError as exc:
    out = {"ok": False, "type": type(exc).__name__, "message": exc.message}
print("RESULT", json.dumps(out), time.time(), flush=True)
"""


def start_deploy(env: dict[str, str], weave_file: Path, name: str, pause_after: str = "-", lock_wait: float = 0) -> subprocess.Popen:
    """Start :data:`DEPLOY_SCRIPT` in a child process (stdin/stdout are pipes)."""
    return subprocess.Popen(
        [sys.executable, "-c", DEPLOY_SCRIPT, pause_after, str(weave_file), name, str(lock_wait)],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def read_line(proc: subprocess.Popen, prefix: str) -> str:
    """Read the child's stdout until a line starting with ``prefix`` (blocking; the test timeout bounds it)."""
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"child ended without {prefix!r}: {proc.stderr.read()}")


def result_of(proc: subprocess.Popen) -> dict:
    """The child's RESULT as a dict, after it exits."""
    import json

    line = read_line(proc, "RESULT")
    proc.wait(timeout=60)
    return json.loads(line.split(" ", 1)[1].rsplit(" ", 1)[0])
