"""The artifact: deterministic bytes, standard library only, and a Lambda handler that runs from the zip."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from io import BytesIO

import pytest

from weave_nb.core.artifact import LAMBDA_HANDLER, SPEC_FILE, build_artifact, runtime_files, zip_bytes
from weave_nb.spec.model import load_weave, parse_weave

from conftest import EXAMPLES, MOCK_WEAVE, REPO_ROOT
from test_local_provider import assert_dependency_order

RESEARCH = EXAMPLES / "research_pipeline.weave.yaml"


def test_same_inputs_give_identical_bytes_and_hash():
    first = build_artifact(load_weave(RESEARCH))
    second = build_artifact(load_weave(RESEARCH))
    assert first.data == second.data and first.content_hash == second.content_hash
    assert len(first.content_hash) == 64


def test_hash_is_the_same_in_another_process_and_hash_seed(subprocess_env):
    here = build_artifact(load_weave(RESEARCH)).content_hash
    code = f"from weave_nb.spec.model import load_weave; from weave_nb.core.artifact import build_artifact; print(build_artifact(load_weave({str(RESEARCH)!r})).content_hash)"
    for seed in ("1", "4242"):
        env = {**subprocess_env, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd="/")
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == here


def test_a_changed_weave_changes_the_hash():
    base = build_artifact(parse_weave(MOCK_WEAVE))
    changed = build_artifact(parse_weave(MOCK_WEAVE.replace("fetch then draft", "fetch and draft")))
    assert base.content_hash != changed.content_hash


def test_zip_entries_are_sorted_with_fixed_time_and_mode():
    art = build_artifact(load_weave(RESEARCH))
    with zipfile.ZipFile(BytesIO(art.data)) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names)
        assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in infos} == {0o644}
        assert {n: zf.read(n) for n in names} == dict(art.files)
    assert names == [SPEC_FILE, *sorted(runtime_files())]
    assert all(n.startswith("weave_runtime/") and n.endswith(".py") for n in names[1:])
    assert json.loads(art.files[SPEC_FILE]) == art.spec
    assert zip_bytes({"b": b"2", "a": b"1"}) == zip_bytes({"a": b"1", "b": b"2"})


def test_extra_files_cannot_replace_the_runtime():
    spec = parse_weave(MOCK_WEAVE)
    with pytest.raises(ValueError):
        build_artifact(spec, extra_files={SPEC_FILE: b"{}"})
    with pytest.raises(ValueError):
        build_artifact(spec, extra_files={"weave_runtime/app.py": b""})
    art = build_artifact(spec, extra_files={"main.py": b"print(1)\n"})
    assert art.files["main.py"] == b"print(1)\n"


def test_runtime_imports_only_the_standard_library():
    for name, source in runtime_files().items():
        for node in ast.walk(ast.parse(source, name)):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                tops = [] if node.level else [(node.module or "").split(".")[0]]
            else:
                continue
            for top in tops:
                assert top in sys.stdlib_module_names, f"{name} imports {top}"


def test_no_secret_values_in_the_compiled_weave(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-be-in-the-artifact")
    art = build_artifact(load_weave(RESEARCH))
    assert b"sk-should-not-be-in-the-artifact" not in b"".join(art.files.values())
    assert art.spec["env_keys"] == ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]


# Run the Lambda handler in `python -I -S` (no site-packages, no PYTHON* variables)
# with only the artifact on sys.path, then report what it imported from where.
HANDLER_SCRIPT = """
import json, sys, sysconfig
where = sys.argv[1]
stdlib = {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]}
sys.path.insert(0, where)
module, _, func = sys.argv[2].rpartition(".")
handler = getattr(__import__(module, fromlist=[func]), func)
event = {"requestContext": {"http": {"method": "POST"}}, "rawPath": "/",
         "body": json.dumps({"weave": "research_pipeline", "input": "tides"})}
answer = handler(event, None)
foreign = sorted(name for name, mod in sys.modules.items()
                 if getattr(mod, "__file__", None)
                 and not mod.__file__.startswith(where)
                 and not any(mod.__file__.startswith(p) for p in stdlib))
print(json.dumps({"answer": answer, "foreign": foreign, "file": sys.modules[module].__file__,
                  "site": "site" in sys.modules, "path": sys.path}))
"""


def run_handler(where, env_extra=None):
    env = {"PATH": os.environ.get("PATH", ""), "WEAVE_MODEL_BACKEND": "mock", **(env_extra or {})}
    out = subprocess.run([sys.executable, "-I", "-S", "-c", HANDLER_SCRIPT, str(where), LAMBDA_HANDLER],
                         env=env, capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["foreign"] == [] and report["site"] is False
    assert not any("site-packages" in p or str(REPO_ROOT) in p for p in report["path"])
    return report


def check_answer(report):
    answer = report["answer"]
    assert answer["statusCode"] == 200, answer
    assert_dependency_order(json.loads(answer["body"]), RESEARCH.read_text(), "research_pipeline")


def test_handler_runs_from_the_extracted_artifact(tmp_path):
    """Lambda's own layout: the zip extracted into the task folder."""
    folder = build_artifact(load_weave(RESEARCH)).extract(tmp_path / "task")
    report = run_handler(folder)
    assert report["file"].startswith(str(folder))
    check_answer(report)


def test_handler_code_imports_from_the_zip_alone(tmp_path):
    art = build_artifact(load_weave(RESEARCH))
    zipped = art.write(tmp_path / "artifact.zip")
    spec = tmp_path / "weave.json"
    spec.write_bytes(art.files[SPEC_FILE])
    report = run_handler(zipped, {"WEAVE_SPEC_PATH": str(spec)})
    assert report["file"] == f"{zipped}/weave_runtime/lambda_adapter.py"
    check_answer(report)


def test_handler_reads_its_weave_from_the_zip(tmp_path):
    zipped = build_artifact(load_weave(RESEARCH)).write(tmp_path / "artifact.zip")
    check_answer(run_handler(zipped))


def test_four_agent_example_zips_to_at_most_32_kb():
    """The issue's size target, checked on every run (the benchmark prints the figure)."""
    spec = load_weave(RESEARCH)
    assert len(spec.agents) == 4
    art = build_artifact(spec)
    assert art.size <= 32 * 1024, art.size
    assert set(art.files) == {SPEC_FILE, *runtime_files()}, "nothing but the runtime and the weave"
