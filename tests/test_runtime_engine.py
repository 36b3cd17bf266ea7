"""The engine: compiled spec in, agents run in dependency order, result JSON out."""

from __future__ import annotations

import json
import textwrap

import pytest

from weave_nb.runtime import engine
from weave_nb.runtime.engine import SpecLoadError, build_prompt, load_spec, run_weave, spec_hash
from weave_nb.runtime.errors import ModelError, RequestError
from weave_nb.spec.model import load_weave, parse_weave

try:
    from tests.llm_servers import EXAMPLES, FakeSleep, llm_server  # noqa: F401
except ImportError:
    from llm_servers import EXAMPLES, FakeSleep, llm_server  # noqa: F401

OFFLINE = {"WEAVE_MODEL_BACKEND": "mock"}

DIAMOND = textwrap.dedent("""\
    version: "1.0"
    agents:
      editor: {model: gpt-4, inputs: [writer, checker], outputs: final}
      checker: {model: mock, inputs: [researcher, writer], outputs: report,
                prompt: "Check {draft} against {notes}"}
      writer: {model: claude-3-opus, inputs: researcher, outputs: draft, config: {system: Write well}}
      researcher: {model: gpt-4, outputs: notes}
      loner: {model: mock}
    weaves:
      diamond: {agents: [editor, checker, writer, researcher]}
      solo: {agents: [loner]}
    """)


def compiled(text: str = DIAMOND) -> dict:
    # Round-trip through JSON, as the artifact does.
    return json.loads(json.dumps(parse_weave(text).to_runtime_dict()))


def test_agents_run_in_dependency_order_and_all_are_reported():
    result = run_weave(compiled(), "diamond", "solar power", OFFLINE)
    names = [a["name"] for a in result["agents"]]
    assert names == ["researcher", "writer", "checker", "editor"]
    assert result["weave"] == "diamond" and result["input"] == "solar power"
    assert result["output"] == result["agents"][-1]["output"]
    for agent in result["agents"]:
        assert set(agent) == {"name", "model", "backend", "output_key", "output", "duration_ms", "tokens"}
        assert agent["backend"] == "mock"
        assert agent["tokens"]["total"] == agent["tokens"]["prompt"] + agent["tokens"]["completion"] > 0
    assert [a["output_key"] for a in result["agents"]] == ["notes", "draft", "report", "final"]
    assert result["tokens"]["total"] == sum(a["tokens"]["total"] for a in result["agents"])
    assert result["duration_ms"] >= 0
    json.dumps(result)


def test_results_are_deterministic_offline():
    a = run_weave(compiled(), "diamond", "solar power", OFFLINE)
    b = run_weave(compiled(), "diamond", "solar power", OFFLINE)
    c = run_weave(compiled(), "diamond", "wind power", OFFLINE)
    assert [x["output"] for x in a["agents"]] == [x["output"] for x in b["agents"]]
    assert a["output"] != c["output"]


def test_each_agent_sees_the_outputs_it_depends_on():
    spec = compiled()
    result = run_weave(spec, "diamond", "solar power", OFFLINE)
    out = {a["name"]: a["output"] for a in result["agents"]}
    outputs = {"researcher": ("notes", out["researcher"]), "writer": ("draft", out["writer"])}
    checker_prompt = build_prompt(spec["agents"]["checker"], "checker", "solar power", outputs)
    assert checker_prompt == f"Check {out['writer']} against {out['researcher']}"
    writer_prompt = build_prompt(spec["agents"]["writer"], "writer", "solar power", outputs)
    assert "solar power" in writer_prompt and out["researcher"] in writer_prompt
    assert "## notes (from researcher)" in writer_prompt


def test_template_without_input_placeholder_still_gets_the_input_for_root_agents():
    agent = {"prompt": "Be helpful.", "inputs": []}
    assert build_prompt(agent, "a", "the question", {}) == "Be helpful.\n\nInput:\nthe question"


def test_mixed_backends_against_a_live_server(llm_server):
    result = run_weave(compiled(), "diamond", "solar power", llm_server.environ(), sleep=FakeSleep())
    backends = {a["name"]: a["backend"] for a in result["agents"]}
    assert backends == {"researcher": "openai", "writer": "anthropic", "checker": "mock", "editor": "openai"}
    writer_req = next(r for r in llm_server.requests if r["path"] == "/v1/messages")
    assert writer_req["json"]["system"] == "Write well"
    assert "OpenAI-compatible answer from gpt-4." in writer_req["json"]["messages"][0]["content"]
    assert result["agents"][1]["tokens"]["completion"] == 9


def test_model_failure_names_the_agent(llm_server):
    llm_server.fail_next(401)
    with pytest.raises(ModelError) as info:
        run_weave(compiled(), "diamond", "x", llm_server.environ(), sleep=FakeSleep())
    assert "'researcher'" in str(info.value) and "OPENAI_API_KEY" in str(info.value)


def test_weave_can_be_omitted_when_there_is_only_one():
    spec = compiled(DIAMOND.replace("  solo: {agents: [loner]}\n", ""))
    assert run_weave(spec, None, "hi", OFFLINE)["weave"] == "diamond"


def test_omitted_weave_with_several_is_400_listing_names():
    with pytest.raises(RequestError) as info:
        run_weave(compiled(), None, "hi", OFFLINE)
    assert info.value.status == 400
    assert "diamond" in info.value.message and "solo" in info.value.message


def test_unknown_weave_is_404():
    with pytest.raises(RequestError) as info:
        run_weave(compiled(), "nope", "hi", OFFLINE)
    assert info.value.status == 404 and "diamond" in info.value.message


def test_non_string_input_is_400():
    with pytest.raises(RequestError) as info:
        run_weave(compiled(), "solo", ["not", "text"], OFFLINE)  # type: ignore[arg-type]
    assert info.value.status == 400


def test_examples_run_offline():
    spec = json.loads(json.dumps(load_weave(EXAMPLES / "research_pipeline.weave.yaml").to_runtime_dict()))
    result = run_weave(spec, None, "quantum computing", OFFLINE)
    assert [a["name"] for a in result["agents"]] == ["researcher", "writer", "fact_checker", "editor"]


def test_load_spec_reads_caches_and_reloads(tmp_path, monkeypatch):
    path = tmp_path / "weave.json"
    path.write_text(json.dumps(compiled()))
    monkeypatch.setenv("WEAVE_SPEC_PATH", str(path))
    first = load_spec()
    assert load_spec() is first and load_spec(str(path)) is first
    import hashlib

    assert spec_hash() == hashlib.sha256(path.read_bytes()).hexdigest()
    path.write_text(json.dumps(compiled(DIAMOND.replace("solo:", "single:"))) + "\n")
    assert "single" in load_spec()["weaves"]


def test_default_spec_path_is_next_to_the_package(monkeypatch):
    monkeypatch.delenv("WEAVE_SPEC_PATH", raising=False)
    path = engine.default_spec_path()
    assert path.endswith("weave.json")
    import os

    assert os.path.dirname(path) == os.path.dirname(os.path.dirname(engine.__file__))


@pytest.mark.parametrize("content, match", [(None, "not found"), ("{oops", "not valid JSON"),
                                            ('{"weaves": {}}', "not a compiled")])
def test_load_spec_errors(tmp_path, content, match):
    path = tmp_path / "weave.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SpecLoadError, match=match):
        load_spec(str(path))
