"""Weave files: parsing, validation errors, execution order, compiled form."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

from weave_nb.core.errors import WeaveError, WeaveSpecError
from weave_nb.spec.model import AgentSpec, WeaveSpec, load_weave, parse_weave

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

SEED = """\
version: "1.0"
agents:
  researcher: {model: gpt-4, tools: [web_search], outputs: research_summary}
  writer:     {model: claude-3-opus, inputs: researcher, outputs: draft_article, config: {temperature: 0.7}}
weaves:
  content_pipeline: {description: Research then write, agents: [researcher, writer]}
env: {OPENAI_API_KEY: "${OPENAI_API_KEY}", STYLE: concise}
deployment: {provider: aws, type: lambda, region: us-east-1, memory_mb: 1024, timeout_seconds: 300}
"""


def spec_error(text: str) -> WeaveSpecError:
    with pytest.raises(WeaveSpecError) as info:
        parse_weave(textwrap.dedent(text), source="t.weave.yaml")
    return info.value


# ----------------------------------------------------------------- happy path


def test_seed_example_parses_into_typed_spec():
    spec = parse_weave(SEED)
    assert isinstance(spec, WeaveSpec)
    assert spec.version == "1.0"
    assert list(spec.agents) == ["researcher", "writer"]
    writer = spec.agents["writer"]
    assert isinstance(writer, AgentSpec)
    assert writer.inputs == ("researcher",)
    assert writer.outputs == "draft_article"
    assert writer.config == {"temperature": 0.7}
    assert spec.agents["researcher"].tools == ("web_search",)
    assert spec.weaves["content_pipeline"].description == "Research then write"
    assert spec.weaves["content_pipeline"].agents == ("researcher", "writer")
    assert spec.env == {"OPENAI_API_KEY": "${OPENAI_API_KEY}", "STYLE": "concise"}
    assert spec.deployment["memory_mb"] == 1024
    assert spec.source == "<string>"
    assert spec.default_weave == "content_pipeline"


def test_outputs_default_to_agent_name_and_optional_sections_default_empty():
    spec = parse_weave('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: {agents: [a]}}\n')
    assert spec.agents["a"].outputs == "a"
    assert spec.agents["a"].tools == () and spec.agents["a"].inputs == ()
    assert spec.env == {} and spec.deployment == {}
    assert spec.weaves["w"].description == ""


def test_spec_is_frozen():
    spec = parse_weave(SEED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.version = "2.0"  # type: ignore[misc]


def test_default_weave_is_none_with_several_weaves():
    spec = parse_weave(
        'version: "1.0"\nagents: {a: {model: mock}, b: {model: mock}}\n'
        "weaves: {one: {agents: [a]}, two: {agents: [b]}}\n")
    assert spec.default_weave is None


def test_execution_order_puts_dependencies_first_whatever_the_listing_order():
    spec = parse_weave(textwrap.dedent("""\
        version: "1.0"
        agents:
          editor: {model: mock, inputs: [writer, checker]}
          checker: {model: mock, inputs: [researcher, writer]}
          writer: {model: mock, inputs: researcher}
          researcher: {model: mock}
          side: {model: mock}
        weaves:
          w: {agents: [editor, side, checker, writer, researcher]}
        """))
    order = spec.execution_order("w")
    assert order == ["side", "researcher", "writer", "checker", "editor"]
    assert spec.execution_order("w") == order  # stable


def test_execution_order_keeps_listing_order_for_independent_agents():
    spec = parse_weave('version: "1.0"\nagents: {c: {model: mock}, a: {model: mock}, b: {model: mock}}\n'
                       "weaves: {w: {agents: [b, c, a]}}\n")
    assert spec.execution_order("w") == ["b", "c", "a"]


def test_execution_order_of_unknown_weave_is_an_error():
    spec = parse_weave(SEED)
    with pytest.raises(WeaveSpecError, match="content_pipelin"):
        spec.execution_order("content_pipelin")


def test_unquoted_version_number_is_accepted():
    spec = parse_weave("version: 1.0\nagents: {a: {model: mock}}\nweaves: {w: [a]}\n")
    assert spec.version == "1.0"
    assert spec.weaves["w"].agents == ("a",)


@pytest.mark.parametrize("name", ["content_pipeline", "research_pipeline", "support_triage", "hello"])
def test_examples_load(name):
    spec = load_weave(EXAMPLES / f"{name}.weave.yaml")
    assert spec.default_weave == name
    order = spec.execution_order(name)
    assert sorted(order) == sorted(spec.weaves[name].agents)


def test_research_pipeline_example_has_four_agents_in_order():
    spec = load_weave(EXAMPLES / "research_pipeline.weave.yaml")
    assert spec.execution_order("research_pipeline") == ["researcher", "writer", "fact_checker", "editor"]


def test_hello_example_uses_the_mock_model():
    spec = load_weave(EXAMPLES / "hello.weave.yaml")
    assert [a.model for a in spec.agents.values()] == ["mock"]


# ----------------------------------------------------------------- runtime dict


def test_runtime_dict_is_json_deterministic_and_has_orders():
    spec = parse_weave(SEED)
    compiled = spec.to_runtime_dict()
    text = json.dumps(compiled, sort_keys=True)
    assert text == json.dumps(parse_weave(SEED, source="elsewhere.yaml").to_runtime_dict(), sort_keys=True)
    assert compiled["format"] == "weave-runtime/1"
    assert compiled["weaves"]["content_pipeline"]["order"] == ["researcher", "writer"]
    assert compiled["agents"]["writer"]["outputs"] == "draft_article"
    assert compiled["env_keys"] == ["OPENAI_API_KEY", "STYLE"]


def test_runtime_dict_never_contains_env_values():
    text = SEED.replace("STYLE: concise", "STYLE: hunter2-very-secret-value")
    compiled = json.dumps(parse_weave(text).to_runtime_dict())
    assert "hunter2-very-secret-value" not in compiled
    assert "${OPENAI_API_KEY}" not in compiled
    assert "us-east-1" not in compiled  # deployment defaults belong to the builder


# ----------------------------------------------------------------- env


def test_resolve_env_substitutes_variables_and_defaults():
    spec = parse_weave(textwrap.dedent("""\
        version: "1.0"
        agents: {a: {model: mock}}
        weaves: {w: [a]}
        env:
          KEY: "${OPENAI_API_KEY}"
          URL: "${BASE:-http://localhost:11434/v1}"
          EMPTY_DEFAULT: "${UNSET:-}"
          MIX: "prefix-${NAME}-suffix"
          LITERAL: "$${NOT_A_VAR}"
          PLAIN: 42
        """))
    env = spec.resolve_env({"OPENAI_API_KEY": "sk-abc", "NAME": "x", "BASE": ""})
    assert env == {"KEY": "sk-abc", "URL": "http://localhost:11434/v1", "EMPTY_DEFAULT": "",
                   "MIX": "prefix-x-suffix", "LITERAL": "${NOT_A_VAR}", "PLAIN": "42"}


def test_resolve_env_missing_variable_names_it_and_suggests_env_flag():
    spec = parse_weave(SEED)
    with pytest.raises(WeaveSpecError) as info:
        spec.resolve_env({})
    assert "OPENAI_API_KEY" in info.value.message
    assert "--env" in info.value.suggestion


def test_malformed_env_reference_is_rejected_at_parse_time():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [a]}\nenv: {X: "${1BAD}"}\n')
    assert "env.X" in err.message


# ----------------------------------------------------------------- errors


def test_yaml_syntax_error_reports_line_and_column():
    err = spec_error("""\
        version: "1.0"
        agents:
          a: {model: mock
        weaves: {w: [a]}
        """)
    assert "YAML syntax error" in err.message
    assert "line 4" in err.message and "column" in err.message
    assert err.suggestion


def test_bad_indentation_reports_line():
    err = spec_error('version: "1.0"\nagents:\n  a:\n    model: mock\n   tools: [x]\nweaves: {w: [a]}\n')
    assert "line 5" in err.message


def test_missing_file_names_path_and_suggests_examples(tmp_path):
    missing = tmp_path / "nope.weave.yaml"
    with pytest.raises(WeaveSpecError) as info:
        load_weave(missing)
    assert str(missing) in info.value.message
    assert "examples/" in info.value.suggestion


def test_directory_is_rejected(tmp_path):
    with pytest.raises(WeaveSpecError, match="directory"):
        load_weave(tmp_path)


def test_load_weave_sets_source(tmp_path):
    path = tmp_path / "x.weave.yaml"
    path.write_text(SEED)
    assert load_weave(path).source == str(path)
    path.write_text(SEED.replace("content_pipeline: {description: Research then write, agents: [researcher, writer]}",
                                 "content_pipeline: {agents: [researcher, ghost]}"))
    with pytest.raises(WeaveSpecError, match=str(path).replace(".", r"\.")):
        load_weave(path)


def test_unknown_agent_in_weave_suggests_close_name():
    err = spec_error(SEED.replace("agents: [researcher, writer]", "agents: [researcher, writr]"))
    assert "'writr'" in err.message and "content_pipeline" in err.message
    assert "writer" in err.suggestion


def test_unknown_agent_in_inputs():
    err = spec_error(SEED.replace("inputs: researcher", "inputs: [reseacher]"))
    assert "'reseacher'" in err.message and "writer" in err.message
    assert "researcher" in err.suggestion


def test_two_agent_cycle_is_named():
    err = spec_error("""\
        version: "1.0"
        agents:
          a: {model: mock, inputs: b}
          b: {model: mock, inputs: a}
        weaves: {w: [a, b]}
        """)
    assert "cycle" in err.message
    assert "a -> b -> a" in err.message


def test_longer_cycle_and_self_cycle_are_named():
    err = spec_error("""\
        version: "1.0"
        agents:
          start: {model: mock}
          x: {model: mock, inputs: [start, z]}
          y: {model: mock, inputs: x}
          z: {model: mock, inputs: y}
        weaves: {w: [start, x, y, z]}
        """)
    assert "x -> z -> y -> x" in err.message
    err = spec_error('version: "1.0"\nagents: {s: {model: mock, inputs: s}}\nweaves: {w: [s]}\n')
    assert "s -> s" in err.message


def test_empty_weave():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: {description: nothing, agents: []}}\n')
    assert "'w' has no agents" in err.message


def test_no_weaves_and_no_agents():
    assert "no weaves" in spec_error('version: "1.0"\nagents: {a: {model: mock}}\n').message
    assert "no weaves" in spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {}\n').message
    assert "no agents" in spec_error('version: "1.0"\nweaves: {w: [a]}\n').message
    assert "no agents" in spec_error('version: "1.0"\nagents: {}\nweaves: {w: [a]}\n').message


def test_empty_file_and_non_mapping():
    assert "empty" in spec_error("").message
    assert "mapping" in spec_error("- just\n- a list\n").message


@pytest.mark.parametrize("version", ['"2.0"', '"0.9"', "1", "[1]"])
def test_unsupported_version_says_what_is_supported(version):
    err = spec_error(f"version: {version}\nagents: {{a: {{model: mock}}}}\nweaves: {{w: [a]}}\n")
    assert "unsupported version" in err.message
    assert '"1.0"' in err.suggestion


def test_missing_version():
    err = spec_error("agents: {a: {model: mock}}\nweaves: {w: [a]}\n")
    assert "version" in err.message and '"1.0"' in err.suggestion


def test_model_not_a_string_names_field_path_and_line():
    err = spec_error("""\
        version: "1.0"
        agents:
          a: {model: mock}
          b:
            model: 42
        weaves: {w: [a, b]}
        """)
    assert "agents.b.model must be a string" in err.message
    assert "line 5" in err.message


@pytest.mark.parametrize("field, value, path", [
    ("tools", "{x: 1}", "agents.a.tools"),
    ("tools", "[1, 2]", "agents.a.tools[0]"),
    ("config", "[1]", "agents.a.config"),
    ("config", "{temperature: hot}", "agents.a.config.temperature"),
    ("config", "{max_tokens: 1.5}", "agents.a.config.max_tokens"),
    ("config", "{system: [x]}", "agents.a.config.system"),
    ("prompt", "[x]", "agents.a.prompt"),
    ("outputs", "[x]", "agents.a.outputs"),
])
def test_wrong_types_name_the_field(field, value, path):
    err = spec_error(f'version: "1.0"\nagents:\n  a: {{model: mock, {field}: {value}}}\nweaves: {{w: [a]}}\n')
    assert path in err.message


def test_missing_model():
    assert "no 'model'" in spec_error('version: "1.0"\nagents: {a: {tools: [x]}}\nweaves: {w: [a]}\n').message


def test_unknown_field_suggests_the_right_one():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock}, b: {model: mock, input: a}}\nweaves: {w: [a, b]}\n')
    assert "unknown field 'input'" in err.message
    assert "inputs" in err.suggestion


def test_weave_agent_whose_input_is_not_in_the_weave():
    err = spec_error(SEED.replace("agents: [researcher, writer]", "agents: [writer]"))
    assert "'writer'" in err.message and "'researcher'" in err.message and "not in the weave" in err.message


def test_duplicate_agent_key_is_reported_with_line():
    err = spec_error('version: "1.0"\nagents:\n  a: {model: mock}\n  a: {model: gpt-4}\nweaves: {w: [a]}\n')
    assert "Duplicate key 'a'" in err.message and "line 4" in err.message


def test_agent_listed_twice_in_weave():
    assert "twice" in spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [a, a]}\n').message


def test_duplicate_output_keys_in_a_weave():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock, outputs: o}, b: {model: mock, outputs: o}}\n'
                     "weaves: {w: [a, b]}\n")
    assert "both write output 'o'" in err.message


def test_unknown_prompt_placeholder():
    err = spec_error('version: "1.0"\nagents:\n  a: {model: mock}\n'
                     '  b: {model: mock, inputs: a, prompt: "Use {a} and {missing}"}\nweaves: {w: [a, b]}\n')
    assert "{missing}" in err.message


def test_invalid_agent_name():
    assert "invalid agent name" in spec_error(
        'version: "1.0"\nagents: {"bad name": {model: mock}}\nweaves: {w: ["bad name"]}\n').message


def test_errors_are_weave_errors_with_suggestions():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [b]}\n')
    assert isinstance(err, WeaveError)
    assert err.suggestion and "hint:" in str(err)


@pytest.mark.timeout(20)
def test_alias_bomb_is_not_expanded():
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    text = 'version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [a]}\njunk:\n' + "".join(
        f"  {line}\n" for line in lines)
    assert "alias bomb" in spec_error(text).message  # rejected while composing, before any key is checked


def test_deeply_nested_yaml_is_a_spec_error():
    text = 'version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [a]}\njunk: ' + "[" * 5000 + "]" * 5000 + "\n"
    assert spec_error(text).message


def test_type_error_in_env_does_not_echo_the_value():
    err = spec_error('version: "1.0"\nagents: {a: {model: mock}}\nweaves: {w: [a]}\n'
                     'env: {OPENAI_API_KEY: [sk-live-abcdef123456]}\n')
    assert "env.OPENAI_API_KEY" in err.message
    assert "sk-live-abcdef123456" not in str(err)
