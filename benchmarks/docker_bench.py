"""Measure the docker provider against a real engine and print the figures.

    DOCKER_HOST=unix:///path/to/docker.sock python benchmarks/docker_bench.py [--rounds 5]

Targets: image size over the base image <= 100 KB; rebuild after a weave
change <= 2 s; deploy to healthy <= 5 s with a warm base image; unchanged
redeploy <= 0.3 s. Uses a throw-away WEAVE_HOME and removes everything it
deployed (by label) before it exits. Prints one line per figure and exits 1
when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weave_nb.core.events import StepFinished
from weave_nb.core.manager import DeploymentManager

TARGETS = {"size_kb": 100, "rebuild_s": 2.0, "deploy_s": 5.0, "unchanged_s": 0.3}


def weave(greeting: str) -> str:
    """A one-agent mock weave; ``greeting`` changes weave.json."""
    return textwrap.dedent(f"""\
        version: "1.0"
        agents:
          greeter: {{model: mock, outputs: greeting, config: {{system: "{greeting}"}}}}
        weaves:
          hello: {{description: Say hello, agents: [greeter]}}
        """)


def timed(fn):
    """Run ``fn`` and return ``(result, seconds, events)``."""
    events: list = []
    start = time.perf_counter()
    result = fn(events.append)
    return result, time.perf_counter() - start, events


def step_seconds(events: list, step: str) -> float:
    """Seconds the named step took, from its StepFinished event."""
    return sum(e.seconds for e in events if isinstance(e, StepFinished) and e.step == step)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures; return 1 if a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="repeats for the rebuild and unchanged figures")
    args = parser.parse_args(argv)
    if not os.environ.get("DOCKER_HOST"):
        print("DOCKER_HOST is not set: start an engine (bash scripts/docker-env.sh start) and export it", file=sys.stderr)
        return 2
    home = tempfile.mkdtemp(prefix="weave-docker-bench-")
    os.environ["WEAVE_HOME"] = home
    mgr = DeploymentManager(home=home)
    provider = mgr.provider("docker")
    api = provider.engine().api
    name = f"bench-{secrets.token_hex(3)}"
    tag = secrets.token_hex(4)

    def deploy(text: str):
        return lambda sink: mgr.deploy({"name": name, "provider": "docker", "weave_text": text}, sink=sink)

    figures: dict[str, float] = {}
    try:
        base = api.inspect_image("python:3.12-slim")
        info, figures["deploy_s"], events = timed(deploy(weave(f"Hello {tag} 0")))
        figures["deploy_build_s"] = step_seconds(events, "image")
        figures["deploy_health_s"] = step_seconds(events, "health")
        image = api.inspect_image(info.details["image"])
        figures["size_kb"] = (image["Size"] - base["Size"]) / 1024
        rebuilds, redeploys, unchanged = [], [], []
        for i in range(1, args.rounds + 1):
            _, seconds, events = timed(deploy(weave(f"Hello {tag} {i}")))
            rebuilds.append(step_seconds(events, "image"))
            redeploys.append(seconds)
        for _ in range(args.rounds):
            result, seconds, _ = timed(deploy(weave(f"Hello {tag} {args.rounds}")))
            assert result.message == "no changes", result.message
            unchanged.append(seconds)
        figures["rebuild_s"] = statistics.median(rebuilds)
        figures["redeploy_changed_s"] = statistics.median(redeploys)
        figures["unchanged_s"] = statistics.median(unchanged)
        _, figures["undeploy_s"], _ = timed(lambda sink: mgr.destroy(name, "docker", sink=sink))
    finally:
        for c in api.containers(all=True, filters={"label": [f"weave-nb.name={name}"]}):
            api.remove_container(c["Id"], force=True)
        for img in api.images(filters={"label": [f"weave-nb.name={name}"]}):
            api.remove_image(img["Id"], force=True)
    missed = 0
    rows = [
        ("image size over the base image", "size_kb", "KB"),
        ("deploy to healthy (warm base image)", "deploy_s", "s"),
        ("  of which: build", "deploy_build_s", "s"),
        ("  of which: wait for healthy", "deploy_health_s", "s"),
        (f"rebuild after a weave change (median of {args.rounds})", "rebuild_s", "s"),
        ("  whole redeploy with the container replaced", "redeploy_changed_s", "s"),
        (f"unchanged redeploy (median of {args.rounds})", "unchanged_s", "s"),
        ("undeploy (container and image)", "undeploy_s", "s"),
    ]
    for label, key, unit in rows:
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            ok = figures[key] <= target
            missed += not ok
            verdict = f"   target <= {target:g} {unit}: {'ok' if ok else 'MISSED'}"
        print(f"{label:<52} {figures[key]:8.2f} {unit}{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
