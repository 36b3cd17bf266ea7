"""Run a compiled weave (``weave.json``): agents in dependency order.

Standard library only. ``weave.json`` is produced by
``weave_nb.spec.model.WeaveSpec.to_runtime_dict``; its weaves carry a precomputed
``order``, so the runtime never sorts dependencies itself.
"""

from __future__ import annotations

import json
import os
import re
import time

from . import models
from .errors import ModelError, RequestError

__all__ = ["load_spec", "spec_hash", "default_spec_path", "pick_weave", "run_weave", "build_prompt", "SpecLoadError"]

SPEC_FORMAT = "weave-runtime/1"
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_cache: dict = {}  # resolved path -> (mtime_ns, size, spec, sha256); a cache, not state


class SpecLoadError(Exception):
    """``weave.json`` is missing, unreadable or not a compiled weave spec."""


def default_spec_path() -> str:
    """Where ``weave.json`` is looked for when no path is given.

    Returns:
        ``$WEAVE_SPEC_PATH`` if set, else ``weave.json`` in the directory
        that holds this package (the artifact root).
    """
    env = os.environ.get("WEAVE_SPEC_PATH")
    if env:
        return env
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weave.json")


def _load(path: str | None) -> tuple[dict, str]:
    path = os.path.abspath(path or default_spec_path())
    try:
        st = os.stat(path)
    except OSError:
        return _load_from_loader(path)
    hit = _cache.get(path)
    if hit and hit[0] == st.st_mtime_ns and hit[1] == st.st_size:
        return hit[2], hit[3]
    with open(path, "rb") as fh:
        raw = fh.read()
    spec = _parse(raw, path)
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    _cache[path] = (st.st_mtime_ns, st.st_size, spec, digest)
    return spec, digest


def _load_from_loader(path: str) -> tuple[dict, str]:
    """Read ``weave.json`` through this package's loader (the artifact zip itself on ``sys.path``)."""
    hit = _cache.get(path)
    if hit:
        return hit[2], hit[3]
    loader = globals().get("__loader__")
    try:
        raw = loader.get_data(path)  # zipimporter reads entries by their path inside the archive
    except (AttributeError, OSError):
        raise SpecLoadError(f"weave.json not found at {path}; set WEAVE_SPEC_PATH or rebuild the artifact.") from None
    spec = _parse(raw, path)
    import hashlib

    digest = hashlib.sha256(raw).hexdigest()
    _cache[path] = (0, len(raw), spec, digest)
    return spec, digest


def _parse(raw: bytes, path: str) -> dict:
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise SpecLoadError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict) or spec.get("format") != SPEC_FORMAT:
        raise SpecLoadError(f"{path} is not a compiled weave spec (expected format {SPEC_FORMAT!r}).")
    return spec


def load_spec(path: str | None = None) -> dict:
    """Load the compiled weave spec, cached while the file is unchanged.

    Args:
        path: path of ``weave.json``; default :func:`default_spec_path`.

    Returns:
        The spec dict (treat it as read-only; it is shared by the cache).

    Raises:
        SpecLoadError: if the file is missing, not JSON or not a compiled spec.
    """
    return _load(path)[0]


def spec_hash(path: str | None = None) -> str:
    """SHA-256 (hex) of the ``weave.json`` bytes.

    Args:
        path: path of ``weave.json``; default :func:`default_spec_path`.

    Returns:
        The hex digest.

    Raises:
        SpecLoadError: as :func:`load_spec`.
    """
    return _load(path)[1]


def pick_weave(spec: dict, weave: str | None) -> str:
    """The weave to run.

    Args:
        spec: compiled spec.
        weave: requested weave name, or ``None``.

    Returns:
        A weave name present in ``spec``.

    Raises:
        RequestError: 404 for an unknown weave; 400 when none was named and
            the spec has more than one.
    """
    weaves = spec.get("weaves", {})
    names = ", ".join(sorted(weaves))
    if weave is None:
        if len(weaves) == 1:
            return next(iter(weaves))
        raise RequestError(400, f"This deployment has several weaves; name one with \"weave\": {names}.")
    if weave not in weaves:
        raise RequestError(404, f"Unknown weave {weave!r}; available: {names}.")
    return weave


def build_prompt(agent: dict, name: str, user_input: str, outputs: dict) -> str:
    """The user message for one agent.

    With a ``prompt`` template, ``{input}`` and ``{<dependency name or
    output key>}`` are filled in; dependency outputs the template does not
    mention are appended. Without one, the input comes first, followed by one
    section per dependency.

    Args:
        agent: the agent's compiled entry.
        name: the agent's name.
        user_input: the request's input text.
        outputs: agent name -> (output key, text) for the agents run so far.

    Returns:
        The prompt text.
    """
    deps = agent.get("inputs", [])
    values = {"input": user_input}
    for dep in deps:
        key, text = outputs[dep]
        values[dep] = text
        values[key] = text
    template = agent.get("prompt")
    if template:
        used = set(_PLACEHOLDER_RE.findall(template))
        body = _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template).strip()
        if not deps and "input" not in used:
            body += f"\n\nInput:\n{user_input}"
    else:
        used = set()
        body = f"Input:\n{user_input}"
    for dep in deps:
        key, text = outputs[dep]
        if dep not in used and key not in used:
            body += f"\n\n## {key} (from {dep})\n{text}"
    return body


def run_weave(spec: dict, weave: str | None, input: str, environ=None, *, sleep=time.sleep, trace=None) -> dict:
    """Run a weave's agents in dependency order.

    Args:
        spec: compiled spec (see :func:`load_spec`).
        weave: weave name, or ``None`` when the spec has exactly one.
        input: the user's input text.
        environ: environment for model selection and keys; ``os.environ``
            by default.
        sleep: passed to the model backends for retry waits.
        trace: a list that receives each agent's entry as soon as the agent
            has run (so a failed request's record still shows the agents before it).

    Returns:
        ``{"weave", "input", "output", "agents": [...], "duration_ms",
        "tokens"}``; ``agents`` lists, in execution order, each agent's
        ``name``, ``model``, ``backend``, ``output_key``, ``output``,
        ``duration_ms`` and ``tokens`` (``prompt``, ``completion``,
        ``total``); ``output`` is the last agent's output.

    Raises:
        RequestError: 400 for a non-string input or an unnamed weave when
            there are several; 404 for an unknown weave.
        ModelError: a model backend failed; the message names the agent.
    """
    environ = os.environ if environ is None else environ
    if not isinstance(input, str):
        raise RequestError(400, "\"input\" must be a string.")
    name = pick_weave(spec, weave)
    agents = spec["agents"]
    started = time.perf_counter()
    outputs: dict = {}
    records = [] if trace is None else trace
    totals = {"prompt": 0, "completion": 0, "total": 0}
    for agent_name in spec["weaves"][name]["order"]:
        agent = agents[agent_name]
        config = agent.get("config") or {}
        prompt = build_prompt(agent, agent_name, input, outputs)
        t0 = time.perf_counter()
        try:
            result = models.complete(agent["model"], prompt, system=config.get("system"), config=config,
                                     agent=agent_name, environ=environ, sleep=sleep)
        except ModelError as exc:
            raise ModelError(f"Agent {agent_name!r} ({agent['model']}) failed: {exc.message}",
                             status=exc.status, retryable=exc.retryable) from None
        outputs[agent_name] = (agent["outputs"], result.text)
        tokens = result.tokens()
        for k in totals:
            totals[k] += tokens[k]
        records.append({
            "name": agent_name,
            "model": agent["model"],
            "backend": result.backend,
            "output_key": agent["outputs"],
            "output": result.text,
            "duration_ms": round((time.perf_counter() - t0) * 1000, 3),
            "tokens": tokens,
        })
    return {
        "weave": name,
        "input": input,
        "output": records[-1]["output"] if records else "",
        "agents": records,
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        "tokens": totals,
    }
