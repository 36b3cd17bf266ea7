"""The package is ready to publish: ``python -m build`` makes a wheel and an sdist that ``twine check`` accepts,
and the wheel, installed into a fresh virtual environment, runs the README's quick start.

Nothing is downloaded: the build runs without isolation (``build``,
``setuptools`` and ``wheel`` come from the dev extra), and the venv sees this
environment's packages (``--system-site-packages``) for weave-nb's
dependencies while ``--no-index`` installs weave-nb itself from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """``python -m build`` of a copy of the source (the build writes nothing into the repository)."""
    for module in ("build", "twine", "wheel"):
        try:
            __import__(module)
        except ImportError:
            pytest.fail(f"{module} is not installed: pip install -e '.[dev]'", pytrace=False)
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "weave_nb", src / "weave_nb", ignore=shutil.ignore_patterns("__pycache__"))
    out = root / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)], env=env)
    return out


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist):
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, wheels + sdists)])
    assert checked.stdout.count("PASSED") == 2, checked.stdout
    import zipfile

    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "weave_nb/runtime/engine.py" in names and "weave_nb/sandbox/emulators/gcf_fake.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheels[0]).read(entry_points).decode()
    assert "weave = weave_nb.frontends.cli:main" in text and "local = weave_nb.providers.local.provider:LocalProvider" in text


def test_the_wheel_in_a_fresh_venv_runs_the_quick_start(dist, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
    python = venv / "bin" / "python"
    (wheel,) = dist.glob("*.whl")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    env["WEAVE_HOME"] = str(tmp_path / "weave-home")
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-index",
          "--find-links", str(dist), str(wheel)], env=env)
    work = tmp_path / "work"  # not the repository: `python -m` would import the checkout from the current folder
    shutil.copytree(EXAMPLES, work / "examples", ignore=shutil.ignore_patterns("custom_provider"))
    where = _run([str(python), "-c", "import weave_nb; print(weave_nb.__file__)"], env=env, cwd=work)
    assert where.stdout.strip().startswith(str(venv)), where.stdout
    readme = (REPO_ROOT / "README.md").read_text()
    quick = re.search(r"```bash\n(.*?)\n", readme).group(1).split(" && ", 1)[1]  # without `pip install -e .`
    assert quick.startswith("python3 -m weave_nb deploy")
    done = subprocess.run(["bash", "-c", quick], cwd=work, env=env, capture_output=True, text=True, timeout=180)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(r"OK quickstart is active at http://127\.0\.0\.1:\d+", done.stdout), done.stdout
        answer = json.loads(done.stdout[done.stdout.index("{"):])
        assert [a["name"] for a in answer["agents"]] == ["researcher", "writer", "editor"]
    finally:
        gone = subprocess.run([str(venv / "bin" / "weave"), "undeploy", "quickstart", "--force"], cwd=work, env=env,
                              capture_output=True, text=True, timeout=120)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    listed = _run([str(venv / "bin" / "weave"), "deployments"], cwd=work, env=env)
    assert "quickstart" not in listed.stdout
