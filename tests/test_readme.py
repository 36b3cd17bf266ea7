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


# ----------------------------------------------------------------------------- the README's weave file
def readme_weave_file() -> str:
    """The README's ``A weave file`` yaml block, as written."""
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## A weave file\n\n```yaml\n(.*?)```", text, re.S)
    assert block, "the README shows a weave file"
    return block.group(1)


def test_readme_weave_file_deploys_with_no_api_key_and_answers_with_the_mock_model(subprocess_env, weave_home, tmp_path):
    path = tmp_path / "readme.weave.yaml"
    path.write_text(readme_weave_file())
    env = {k: v for k, v in subprocess_env.items() if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    done = run_weave(["deploy", "--name", "readme", "--provider", "local", "--config", str(path)], env)
    assert done.returncode == 0, done.stderr
    answer = run_weave(["invoke", "readme", "--input", "tidal energy"], env)
    assert answer.returncode == 0, answer.stderr
    outputs = json.loads(answer.stdout[answer.stdout.index("{"):])
    assert "[mock gpt-4] researcher" in json.dumps(outputs)


def test_env_flag_satisfies_a_required_reference(subprocess_env, weave_home, tmp_path):
    path = tmp_path / "required.weave.yaml"
    path.write_text(readme_weave_file().replace("${OPENAI_API_KEY:-}", "${OPENAI_API_KEY}"))
    env = {k: v for k, v in subprocess_env.items() if k != "OPENAI_API_KEY"}
    refused = run_weave(["plan", "--name", "req", "--provider", "local", "--config", str(path)], env)
    assert refused.returncode == 2 and "OPENAI_API_KEY" in refused.stderr, refused.stderr
    planned = run_weave(["plan", "--name", "req", "--provider", "local", "--config", str(path),
                         "--env", "OPENAI_API_KEY=sk-test-value-1234"], env)
    assert planned.returncode == 0, planned.stderr
    assert "sk-test-value-1234" not in planned.stdout + planned.stderr


def test_api_env_satisfies_a_required_reference(weave_home, tmp_path, monkeypatch):
    import weave_nb

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = tmp_path / "required.weave.yaml"
    path.write_text(readme_weave_file().replace("${OPENAI_API_KEY:-}", "${OPENAI_API_KEY}"))
    plan = weave_nb.plan("req", provider="local", weave_file=str(path), env={"OPENAI_API_KEY": "sk-test-value-1234"})
    assert plan.steps
