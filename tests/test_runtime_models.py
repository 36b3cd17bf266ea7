"""Model backends against a real local HTTP server speaking the LLM wire formats."""

from __future__ import annotations

import socket

import pytest

from weave_nb.runtime.errors import ModelError
from weave_nb.runtime.models import complete, mock_complete, select_backend

try:
    from tests.llm_servers import ANTHROPIC_KEY, OPENAI_KEY, FakeSleep, llm_server  # noqa: F401
except ImportError:  # tests/ on sys.path instead of the project root
    from llm_servers import ANTHROPIC_KEY, OPENAI_KEY, FakeSleep, llm_server  # noqa: F401


# ----------------------------------------------------------------- selection


@pytest.mark.parametrize("model, env, expected", [
    ("gpt-4", {"OPENAI_API_KEY": "k"}, ("openai", "gpt-4")),
    ("claude-3-opus", {"ANTHROPIC_API_KEY": "k"}, ("anthropic", "claude-3-opus")),
    ("llama3:8b", {"OPENAI_API_KEY": "k"}, ("openai", "llama3:8b")),
    ("anthropic/claude-3-opus", {"OPENAI_API_KEY": "k"}, ("openai", "anthropic/claude-3-opus")),
    ("anthropic:my-model", {"ANTHROPIC_API_KEY": "k"}, ("anthropic", "my-model")),
    ("openai:claude-proxy", {"OPENAI_API_KEY": "k"}, ("openai", "claude-proxy")),
    ("mock:gpt-4", {"OPENAI_API_KEY": "k"}, ("mock", "gpt-4")),
    ("mock", {"OPENAI_API_KEY": "k"}, ("mock", "mock")),
    ("gpt-4", {}, ("mock", "gpt-4")),
    ("claude-3-opus", {"OPENAI_API_KEY": "k"}, ("mock", "claude-3-opus")),
    ("gpt-4", {"OPENAI_API_KEY": "k", "WEAVE_MODEL_BACKEND": "mock"}, ("mock", "gpt-4")),
])
def test_select_backend(model, env, expected):
    assert select_backend(model, env) == expected


def test_mock_is_deterministic_and_depends_on_agent_model_and_prompt():
    a = mock_complete("writer", "gpt-4", "hello world")
    assert a.text == mock_complete("writer", "gpt-4", "hello world").text
    assert a.text != mock_complete("editor", "gpt-4", "hello world").text
    assert a.text != mock_complete("writer", "gpt-3.5", "hello world").text
    assert a.text != mock_complete("writer", "gpt-4", "hello there").text
    assert a.backend == "mock"
    assert a.prompt_tokens == 2
    assert a.completion_tokens == len(a.text.split())
    assert a.tokens()["total"] == a.prompt_tokens + a.completion_tokens


def test_mock_is_used_without_keys_and_makes_no_network_call():
    result = complete("gpt-4", "ping", agent="a", environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert result.backend == "mock"


# ----------------------------------------------------------------- wire formats


def test_openai_chat_completion(llm_server):
    result = complete("gpt-4", "Summarise the news", system="Be brief",
                      config={"temperature": 0.2, "max_tokens": 50, "system": "Be brief"},
                      environ=llm_server.environ(), sleep=FakeSleep())
    assert result.backend == "openai"
    assert result.text == "OpenAI-compatible answer from gpt-4."
    assert result.prompt_tokens == 11 + 5 and result.completion_tokens == 7
    [req] = llm_server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {OPENAI_KEY}"
    assert req["json"]["messages"] == [{"role": "system", "content": "Be brief"},
                                       {"role": "user", "content": "Summarise the news"}]
    assert req["json"]["temperature"] == 0.2 and req["json"]["max_tokens"] == 50
    assert "system" not in req["json"]


def test_anthropic_messages(llm_server):
    result = complete("claude-3-opus", "Write a haiku", system="You are a poet",
                      config={"temperature": 0.7}, environ=llm_server.environ(), sleep=FakeSleep())
    assert result.backend == "anthropic"
    assert result.text == "Anthropic answer from claude-3-opus."
    assert result.prompt_tokens == 13 + 3 + 4 and result.completion_tokens == 9
    [req] = llm_server.requests
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    assert req["json"]["system"] == "You are a poet"
    assert req["json"]["max_tokens"] == 1024
    assert req["json"]["messages"] == [{"role": "user", "content": "Write a haiku"}]


def test_prefix_is_stripped_before_sending(llm_server):
    complete("openai:my-vllm-model", "x", environ=llm_server.environ(), sleep=FakeSleep())
    assert llm_server.requests[0]["json"]["model"] == "my-vllm-model"


# ----------------------------------------------------------------- retries


def test_429_is_retried_honouring_retry_after(llm_server):
    llm_server.fail_next(429, times=2, retry_after="3")
    sleep = FakeSleep()
    result = complete("gpt-4", "x", environ=llm_server.environ(), sleep=sleep)
    assert result.text.startswith("OpenAI-compatible answer")
    assert sleep.calls == [3.0, 3.0]
    assert len(llm_server.requests) == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(llm_server, status):
    llm_server.fail_next(status, times=2)
    sleep = FakeSleep()
    result = complete("claude-3-haiku", "x", environ=llm_server.environ(), sleep=sleep)
    assert result.backend == "anthropic"
    assert sleep.calls == [0.5, 1.0]


def test_retries_are_bounded(llm_server):
    llm_server.fail_next(429, times=10)
    sleep = FakeSleep()
    with pytest.raises(ModelError) as info:
        complete("gpt-4", "x", environ=llm_server.environ(WEAVE_MODEL_RETRIES="2"), sleep=sleep)
    assert info.value.status == 429 and info.value.retryable
    assert "3 attempts" in str(info.value)
    assert len(llm_server.requests) == 3 and len(sleep.calls) == 2


def test_bad_request_is_not_retried(llm_server):
    sleep = FakeSleep()
    env = llm_server.environ()
    env["ANTHROPIC_BASE_URL"] = llm_server.anthropic_base_url + "/nowhere"
    with pytest.raises(ModelError, match="HTTP 404"):
        complete("claude-3-opus", "x", environ=env, sleep=sleep)
    assert sleep.calls == []


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleep = FakeSleep()
    env = {"OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    with pytest.raises(ModelError) as info:
        complete("gpt-4", "x", environ=env, sleep=sleep)
    assert "Cannot reach" in str(info.value)
    assert sleep.calls == [0.5, 1.0, 2.0]
    assert OPENAI_KEY not in str(info.value)


# ----------------------------------------------------------------- auth


@pytest.mark.parametrize("model, var, key", [("gpt-4", "OPENAI_API_KEY", OPENAI_KEY),
                                             ("claude-3-opus", "ANTHROPIC_API_KEY", ANTHROPIC_KEY)])
def test_rejected_key_never_appears_in_the_error(llm_server, model, var, key):
    llm_server.fail_next(401)
    sleep = FakeSleep()
    with pytest.raises(ModelError) as info:
        complete(model, "x", environ=llm_server.environ(), sleep=sleep)
    assert key not in str(info.value) and key not in repr(info.value.args)
    assert "rejected" in str(info.value) and var in str(info.value)
    assert info.value.status == 401 and sleep.calls == []


def test_wrong_key_is_rejected_by_the_server(llm_server):
    env = llm_server.environ(OPENAI_API_KEY="sk-wrong-key-123456")
    with pytest.raises(ModelError) as info:
        complete("gpt-4", "x", environ=env, sleep=FakeSleep())
    assert "sk-wrong-key-123456" not in str(info.value)


def test_key_echoed_in_a_server_error_body_is_scrubbed(llm_server):
    llm_server.fail_next(500, times=2, echo_key=True)
    with pytest.raises(ModelError) as info:
        complete("gpt-4", "x", environ=llm_server.environ(WEAVE_MODEL_RETRIES="1"), sleep=FakeSleep())
    message = str(info.value)
    assert "The server had an error" in message  # the body's message is passed on...
    assert OPENAI_KEY not in message and "***" in message  # ...without the key


def test_timeout_comes_from_environment(llm_server, monkeypatch):
    seen = {}
    import urllib.request

    real = urllib.request.urlopen

    def spy(request, timeout=None):
        seen["timeout"] = timeout
        return real(request, timeout=timeout)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    complete("gpt-4", "x", environ=llm_server.environ(WEAVE_MODEL_TIMEOUT="7.5"), sleep=FakeSleep())
    assert seen["timeout"] == 7.5
    complete("gpt-4", "x", environ=llm_server.environ(), sleep=FakeSleep())
    assert seen["timeout"] == 60.0
