"""The README's two commands: the quick start really deploys, answers and can be removed; CI runs the test command.

The quick start's ``pip install -e .`` is left out (it would re-point this
environment's installation); the rest runs as written, in a shell, from the
repository root, with a private ``WEAVE_HOME``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT, run_weave, server_pids
from test_local_provider import assert_dependency_order

INSTALL = "python3 -m pip install -e . && "


def readme_commands() -> list[str]:
    """The lines of the README's first code block."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "the README starts with a bash code block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_two_commands_and_ci_runs_the_second():
    quick, tests = readme_commands()
    assert quick.startswith(INSTALL)
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert f"exec {tests}" in ci


def test_readme_quick_start_deploys_and_answers(subprocess_env, weave_home):
    quick = readme_commands()[0].removeprefix(INSTALL)
    env = dict(subprocess_env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])  # python3 = this interpreter
    done = subprocess.run(["bash", "-c", quick], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    deployed = re.search(r"OK (\S+) is active at (http://127\.0\.0\.1:\d+)", done.stdout)
    assert deployed, done.stdout
    answer = json.loads(done.stdout[done.stdout.index("{", deployed.end()):])
    example = (REPO_ROOT / "examples" / "content_pipeline.weave.yaml").read_text()
    assert "examples/content_pipeline.weave.yaml" in quick
    import yaml

    (weave,) = yaml.safe_load(example)["weaves"]
    assert_dependency_order(answer, example, weave)
    assert server_pids(weave_home)
    gone = run_weave(["undeploy", deployed.group(1), "--force"], subprocess_env)
    assert gone.returncode == 0, gone.stderr
    assert server_pids(weave_home) == []
