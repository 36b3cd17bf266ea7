"""Every teaching notebook runs headless with a real kernel: here, and in a venv built only from binder/.

The first run uses the test environment. The second (``-m binder``) builds a
fresh virtual environment once per session with nothing but
``pip install -r binder/requirements.txt`` (which installs this repository),
then runs every notebook in it with no cloud credentials and ``DOCKER_HOST``
pointing at a socket that does not exist, as on Binder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from nbhelpers import NOTEBOOKS, REPO_ROOT, PeakMemory, alive, child_env, children_of

BINDER_MEMORY = 2 * 1024**3  # mybinder.org gives each session 2 GB

ALL = sorted(p.name for p in NOTEBOOKS.glob("0*.ipynb"))
PROVIDER_OF = {"02_aws_lambda.ipynb": "aws", "07_releases.ipynb": "aws", "04_gcp_cloud_functions.ipynb": "gcp", "03_docker.ipynb": "docker"}
NEEDS_MODULE = {
    "02_aws_lambda.ipynb": "weave_nb/providers/aws/provider.py",
    "03_docker.ipynb": "weave_nb/providers/docker/provider.py",
    "04_gcp_cloud_functions.ipynb": "weave_nb/providers/gcp/provider.py",
    "05_widgets.ipynb": "weave_nb/frontends/widgets/__init__.py",
}
# environment variables that could give a notebook real cloud credentials
CLOUD_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
    "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN",
    "WEAVE_SANDBOX", "WEAVE_SANDBOX_PROVIDERS", "WEAVE_GCP_API_ENDPOINT", "WEAVE_GCP_RUN_ENDPOINT",
)


def test_the_teaching_notebooks_exist_with_outputs_stripped():
    assert ALL == [
        "01_quickstart_local.ipynb", "02_aws_lambda.ipynb", "03_docker.ipynb",
        "04_gcp_cloud_functions.ipynb", "05_widgets.ipynb", "06_inventory_pandas.ipynb",
        "07_releases.ipynb", "08_day_two.ipynb",
    ]
    for name in ALL:
        book = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(book)
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: outputs not stripped"
        assert book.cells[0].cell_type == "markdown" and book.cells[0].source.startswith("# "), name
        prose = sum(len(c.source) for c in book.cells if c.cell_type == "markdown")
        assert prose > 600, f"{name}: explain it for a newcomer"


def _require_module(name: str) -> None:
    rel = NEEDS_MODULE.get(name)
    if rel and not (REPO_ROOT / rel).exists():
        pytest.skip(f"{rel} is not in this tree yet (another branch provides it)")


def _kernel_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = child_env(WEAVE_HOME=str(tmp_path / "weave-home"), WEAVE_FORCE_SANDBOX="1", **extra)
    for key in CLOUD_VARS:
        env.pop(key, None)
    env["HOME"] = str(tmp_path / "home")  # no ~/.aws, no gcloud config: exactly the Binder situation
    Path(env["HOME"]).mkdir(exist_ok=True)
    return env


def execute(path: Path, env: dict[str, str], kernel_name: str = "python3", timeout: int = 300) -> nbformat.NotebookNode:
    """Run every cell of ``path`` in a fresh kernel with ``env``; raise on the first failing cell."""
    book = nbformat.read(path, as_version=4)
    client = NotebookClient(
        book, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}},
        allow_errors=False,
    )
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)  # the kernel inherits the environment it is started in
    try:
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return book


def outputs_text(book: nbformat.NotebookNode) -> str:
    """Every text output of the notebook, joined (streams, text/plain and text/html)."""
    parts = []
    for cell in book.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            for key in ("text/plain", "text/html"):
                if key in out.get("data", {}):
                    parts.append(out.data[key])
    return "\n".join(parts)


def _check(name: str, book: nbformat.NotebookNode, home: Path, env: dict[str, str]) -> None:
    text = outputs_text(book)
    if name in ("02_aws_lambda.ipynb", "04_gcp_cloud_functions.ipynb"):
        assert "SANDBOX" in text and "not the real cloud" in text, "sandbox use must be said clearly"
        assert "sandbox: off" in text, "the notebook stops its sandbox"
        assert "ConfigError" in text, "the out-of-range setting is refused before deploying"
    if name == "02_aws_lambda.ipynb":
        assert "AutoPublishAlias: live" in text and "identical on re-export: True" in text, "the export section ran"
    if name == "03_docker.ipynb" and env.get("DOCKER_HOST", "").startswith("unix:///nonexistent"):
        assert "Skipping this notebook's Docker cells" in text
    if name == "03_docker.ipynb" and "Docker engine reachable: the cells below" in text:
        assert "OK hello-docker is active at http://127.0.0.1:" in text and "hello-docker [docker] destroyed" in text
    if name == "06_inventory_pandas.ipynb":
        assert any("image/png" in o.get("data", {}) for c in book.cells for o in c.get("outputs", [])), "no plot"
        assert "failed" in text and "active" in text
        assert "| inv-alpha " in text, "to_markdown printed a table (tabulate is installed)"
    if name == "05_widgets.ipynb":
        assert "hello-form [local] active http://127.0.0.1:" in text, "the form's deploy finished with an endpoint"
    if name == "07_releases.ipynb":
        assert "SANDBOX" in text and "sandbox: off" in text, "sandbox use is said, and the sandbox stopped"
        assert "a month" in text and "gpt-4o-mini" in text, "the estimate priced the model calls"
        assert "rolled back: v1 is live again" in text and "v3 90% / v4 10%" in text and "promoted: v4" in text
    if name == "08_day_two.ipynb":
        pngs = sum("image/png" in o.get("data", {}) for c in book.cells for o in c.get("outputs", []))
        assert pngs >= 2, "the metrics plots and the bench histogram are drawn"
        assert '"type":"weave.request"' in text and "nearest rank" in text and "100 requests" in text
    if name in ("01_quickstart_local.ipynb", "06_inventory_pandas.ipynb"):
        assert "http://127.0.0.1:" in text
    # every notebook cleans up after itself: nothing left recorded or running
    from weave_nb.core.inventory import Inventory

    if (home / "inventory.db").exists():
        left = Inventory(home).list()
        assert left == [], f"{name} left deployments behind: {[d.name for d in left]}"


def _no_new_processes(before: set[int]) -> list[int]:
    return [p for p in children_of(os.getpid()) if p not in before and alive(p)]


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_in_the_test_environment(name, tmp_path):
    _require_module(name)
    env = _kernel_env(tmp_path)
    before = set(children_of(os.getpid()))
    book = execute(NOTEBOOKS / name, env)
    _check(name, book, tmp_path / "weave-home", env)
    from weave_nb.core.procutil import wait_for

    assert wait_for(lambda: not _no_new_processes(before), 20), f"{name} left processes: {_no_new_processes(before)}"


# ---------------------------------------------------------------------------- binder venv
@pytest.fixture(scope="session")
def binder_venv(tmp_path_factory):
    """A virtual environment built only from binder/requirements.txt (and binder/postBuild); its python and kernel name."""
    root = tmp_path_factory.mktemp("binder-venv")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    py = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_USER", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(env_dir)
    env["HOME"] = str(root / "home")
    Path(env["HOME"]).mkdir()
    # a clean copy of the repository, as Binder checks it out (an in-tree build must not touch this tree)
    checkout = root / "repo"
    shutil.copytree(REPO_ROOT, checkout, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", ".pytest_cache", "build", "*.egg-info", ".ipynb_checkpoints"))
    run = lambda *args: subprocess.run(args, cwd=checkout, env=env, check=True, capture_output=True, text=True, timeout=1800)  # noqa: E731
    try:
        run(str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", "binder/requirements.txt")
        # postBuild runs from the repository root on Binder
        run("bash", "binder/postBuild")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"building the Binder environment failed: {' '.join(exc.cmd)}\n{exc.stdout[-3000:]}\n{exc.stderr[-3000:]}")
    kernels = root / "kernels"
    kernel_name = "weave-binder"
    spec_dir = kernels / "kernels" / kernel_name
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "binder venv", "language": "python",
    }))
    found = subprocess.run([str(py), "-c", "import weave_nb, sys; print(weave_nb.__file__)"], env=env, capture_output=True, text=True, cwd=root)
    assert found.returncode == 0 and str(env_dir) in found.stdout, f"weave_nb must come from the venv: {found.stdout}{found.stderr}"
    return {"python": py, "kernels": kernels, "kernel_name": kernel_name, "bin": env_dir / "bin"}


@pytest.mark.binder
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_in_a_fresh_binder_venv(name, tmp_path, binder_venv):
    _require_module(name)
    env = _kernel_env(tmp_path, DOCKER_HOST="unix:///nonexistent/docker.sock")
    env.pop("PYTHONPATH", None)  # only what binder/ installed
    env["PATH"] = f"{binder_venv['bin']}{os.pathsep}{env['PATH']}"
    env["JUPYTER_PATH"] = str(binder_venv["kernels"])
    before = set(children_of(os.getpid()))
    with PeakMemory() as memory:
        book = execute(NOTEBOOKS / name, env, kernel_name=binder_venv["kernel_name"])
    print(f"{name}: peak memory of the kernel and everything it started: {memory.peak / 1024**2:.0f} MB")
    assert 0 < memory.peak < BINDER_MEMORY, f"{name} needs {memory.peak / 1024**2:.0f} MB, over Binder's 2 GB"
    _check(name, book, tmp_path / "weave-home", env)
    from weave_nb.core.procutil import wait_for

    assert wait_for(lambda: not _no_new_processes(before), 20), f"{name} left processes: {_no_new_processes(before)}"
