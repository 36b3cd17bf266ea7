"""Model backends: deterministic ``mock``, OpenAI-compatible, Anthropic.

Standard library only. HTTP modules (``urllib.request``, ``ssl``) are
imported inside the call, so importing this module stays cheap.

Backend selection for a model id:

* prefix ``mock:``, ``openai:`` or ``anthropic:`` picks that backend
  (the prefix is removed before the id is sent);
* otherwise ids starting with ``claude`` go to Anthropic, all others to the
  OpenAI-compatible API (OpenAI, OpenRouter, vLLM, Ollama via
  ``OPENAI_BASE_URL``);
* the model ``mock``, env ``WEAVE_MODEL_BACKEND=mock``, or a missing API key
  for the chosen backend gives the offline ``mock`` backend.
"""

from __future__ import annotations

import json
import os
import time

from .errors import ModelError, scrub

__all__ = ["Completion", "select_backend", "complete", "mock_complete", "RETRY_STATUSES"]

RETRY_STATUSES = (429, 500, 502, 503, 504, 529)  # 529: Anthropic overloaded
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRIES = 3
MAX_BACKOFF = 30.0
OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
_KEY_VARS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


class Completion:
    """One model answer.

    Attributes:
        text: the generated text.
        backend: ``"mock"``, ``"openai"`` or ``"anthropic"``.
        model: the model id actually used (prefix removed).
        prompt_tokens, completion_tokens: usage as reported (or word counts).
    """

    __slots__ = ("text", "backend", "model", "prompt_tokens", "completion_tokens")

    def __init__(self, text: str, backend: str, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        self.text = text
        self.backend = backend
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens

    def tokens(self) -> dict:
        """Token usage as ``{"prompt", "completion", "total"}``."""
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens}


def select_backend(model: str, environ) -> tuple[str, str]:
    """Choose the backend for a model id.

    Args:
        model: the agent's model id, e.g. ``gpt-4``, ``anthropic:claude-3-opus``.
        environ: environment mapping (API keys, ``WEAVE_MODEL_BACKEND``).

    Returns:
        ``(backend, model id without prefix)``; backend is ``"mock"`` when
        forced or when the backend's API key is not set.
    """
    backend = None
    name = model
    for prefix in ("mock", "openai", "anthropic"):
        if model.startswith(prefix + ":"):
            backend, name = prefix, model[len(prefix) + 1:]
            break
    if backend is None:
        if model == "mock":
            backend = "mock"
        elif model.lower().startswith("claude"):
            backend = "anthropic"
        else:
            backend = "openai"
    if environ.get("WEAVE_MODEL_BACKEND", "").strip().lower() == "mock":
        backend = "mock"
    if backend != "mock" and not environ.get(_KEY_VARS[backend]):
        backend = "mock"
    return backend, name


def complete(model: str, prompt: str, *, system: str | None = None, config: dict | None = None,
             agent: str = "agent", environ=None, sleep=time.sleep) -> Completion:
    """Run one prompt through the backend chosen for ``model``.

    Args:
        model: the agent's model id (see :func:`select_backend`).
        prompt: the user message.
        system: optional system prompt.
        config: model settings (``temperature``, ``max_tokens``, ``top_p``, ``stop``).
        agent: the agent name (feeds the mock output).
        environ: environment mapping; defaults to ``os.environ``.
        sleep: called with the seconds to wait between retries.

    Returns:
        The :class:`Completion`.

    Raises:
        ModelError: the key was rejected (401/403), the API kept failing
            after retries, or it answered something unreadable. The message
            never contains the API key.
    """
    environ = os.environ if environ is None else environ
    config = config or {}
    backend, name = select_backend(model, environ)
    if backend == "mock":
        return mock_complete(agent, name, prompt, system)
    key_var = _KEY_VARS[backend]
    key = environ[key_var]
    timeout = _float_env(environ, "WEAVE_MODEL_TIMEOUT", DEFAULT_TIMEOUT)
    retries = int(_float_env(environ, "WEAVE_MODEL_RETRIES", DEFAULT_RETRIES))
    if backend == "openai":
        base = (environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        payload = {"model": name, "messages": messages}
        for k in ("temperature", "max_tokens", "top_p", "stop"):
            if k in config:
                payload[k] = config[k]
        headers = {"Authorization": f"Bearer {key}"}
        url = base + "/chat/completions"
    else:
        base = (environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL).rstrip("/")
        payload = {"model": name, "max_tokens": int(config.get("max_tokens", 1024)),
                   "messages": [{"role": "user", "content": prompt}]}
        if system:
            payload["system"] = system
        for k in ("temperature", "top_p"):
            if k in config:
                payload[k] = config[k]
        if "stop" in config:
            stop = config["stop"]
            payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        url = base + "/v1/messages"
    data = _post_json(url, headers, payload, timeout=timeout, retries=retries, sleep=sleep,
                      backend=backend, key_var=key_var, secrets=[key])
    try:
        if backend == "openai":
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            p_tok, c_tok = usage.get("prompt_tokens"), usage.get("completion_tokens")
        else:
            text = "".join(part.get("text", "") for part in data["content"] if part.get("type") == "text")
            usage = data.get("usage") or {}
            p_tok, c_tok = usage.get("input_tokens"), usage.get("output_tokens")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ModelError(f"The {backend} API at {base} answered JSON without the expected fields "
                         f"for model {name!r}.") from None
    if not isinstance(p_tok, int):
        p_tok = _words(system or "") + _words(prompt)
    if not isinstance(c_tok, int):
        c_tok = _words(text)
    return Completion(text, backend, name, p_tok, c_tok)


def mock_complete(agent: str, model: str, prompt: str, system: str | None = None) -> Completion:
    """The offline model: deterministic text from agent, model and prompt.

    Args:
        agent: agent name.
        model: model id (as written, minus any ``mock:`` prefix).
        prompt: the user message.
        system: the system prompt, if any.

    Returns:
        A :class:`Completion` whose token counts are word counts.
    """
    import hashlib

    full = (system + "\n\n" if system else "") + prompt
    digest = hashlib.sha256(full.encode("utf-8")).hexdigest()[:12]
    first = " ".join(prompt.split()[:12])
    text = (f"[mock {model}] {agent} response {digest}: considered {_words(full)} words "
            f"of instructions, beginning \"{first}\".")
    return Completion(text, "mock", model, _words(full), _words(text))


def _words(text: str) -> int:
    return len(text.split())


def _float_env(environ, name: str, default: float) -> float:
    try:
        value = float(environ.get(name, default))
    except ValueError:
        return default
    return value if value >= 0 else default


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _error_detail(body: bytes, secrets) -> str:
    """A short, scrubbed message out of an API error body."""
    text = body.decode("utf-8", "replace")
    try:
        data = json.loads(text)
        err = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(err, dict):
            text = str(err.get("message") or err)
        else:
            text = str(err)
    except ValueError:
        pass
    text = " ".join(scrub(text, secrets).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _post_json(url: str, headers: dict, payload: dict, *, timeout: float, retries: int, sleep,
               backend: str, key_var: str, secrets) -> dict:
    """POST JSON with bounded retries; returns the decoded JSON answer."""
    import urllib.error
    import urllib.request

    body = json.dumps(payload).encode("utf-8")
    all_headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "User-Agent": "weave-runtime/1", **headers}
    attempt = 0
    while True:
        request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
        wait = None
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
            try:
                return json.loads(raw)
            except ValueError:
                raise ModelError(f"The {backend} API at {url} answered something that is not JSON.") from None
        except urllib.error.HTTPError as exc:
            status = exc.code
            detail = _error_detail(exc.read() or b"", secrets)
            exc.close()
            if status in (401, 403):
                raise ModelError(f"The {backend} API rejected the API key (HTTP {status}). "
                                 f"Check that {key_var} is set to a valid key.", status=status) from None
            if status not in RETRY_STATUSES:
                raise ModelError(f"The {backend} API answered HTTP {status}: {detail}", status=status) from None
            if attempt >= retries:
                raise ModelError(f"The {backend} API kept failing: HTTP {status} after {attempt + 1} "
                                 f"attempts: {detail}", status=status, retryable=True) from None
            wait = _retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            if attempt >= retries:
                raise ModelError(f"Cannot reach the {backend} API at {url} after {attempt + 1} attempts: "
                                 f"{scrub(str(reason), secrets)}", retryable=True) from None
        if wait is None:
            wait = 0.5 * (2 ** attempt)
        sleep(min(wait, MAX_BACKOFF))
        attempt += 1
