"""Every example weave file plans on every provider that names it: its own ``deployment.provider``
and every provider the docs pair it with (``--provider P ... --config examples/X``).

Plans run the real ``weave plan`` command: the local provider needs nothing,
aws plans against moto_server, gcp against the Cloud Functions fake, docker
against the private engine at ``DOCKER_HOST`` (skipped without one, failed
under CI, as in the Docker tests).
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

from conftest import EXAMPLES, REPO_ROOT, run_weave
from weave_nb.core.registry import BUILTINS

try:
    from tests.aws_servers import aws, moto_server  # noqa: F401
except ImportError:
    from aws_servers import aws, moto_server  # noqa: F401
try:
    from docker_fixtures import docker_api  # noqa: F401
except pytest.skip.Exception:  # the docker package is not installed: the docker pairs skip
    pass

DOC_PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
PAIRED = re.compile(r"--provider\s+(\w+)[^\n]*?--config\s+examples/([\w.-]+\.weave\.yaml)"
                    r"|--config\s+examples/([\w.-]+\.weave\.yaml)[^\n]*?--provider\s+(\w+)"
                    r"|deploy\(\"[\w-]+\", \"(\w+)\", weave_file=\"examples/([\w.-]+\.weave\.yaml)\"")


def named_pairs() -> list[tuple[str, str]]:
    """``(example file name, provider)`` for every example and every provider that names it."""
    pairs: set[tuple[str, str]] = set()
    for path in sorted(EXAMPLES.glob("*.weave.yaml")):
        section = (yaml.safe_load(path.read_text()) or {}).get("deployment") or {}
        pairs.add((path.name, section.get("provider") or "local"))
    for page in DOC_PAGES:
        for match in PAIRED.finditer(page.read_text()):
            g = match.groups()
            provider, name = (g[0], g[1]) if g[0] else (g[3], g[2]) if g[3] else (g[4], g[5])
            if (EXAMPLES / name).exists() and provider in BUILTINS:  # a plug-in (extending.md's folder) is tested by test_docs
                pairs.add((name, provider))
    return sorted(pairs)


def test_every_example_is_named_by_at_least_one_provider():
    names = {name for name, _ in named_pairs()}
    assert names == {p.name for p in EXAMPLES.glob("*.weave.yaml")}
    assert ("support_triage.weave.yaml", "gcp") in named_pairs()  # the deployment guide's GCP quick start


def _environment(request, provider: str, tmp_path, monkeypatch) -> dict[str, str]:
    if provider == "aws":
        request.getfixturevalue("aws")
    elif provider == "gcp":
        from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions

        fake = FakeCloudFunctions().start()
        request.addfinalizer(fake.stop)
        for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.fake-token-for-tests")
        monkeypatch.setenv("GCP_PROJECT_ID", "demo-proj")
        monkeypatch.setenv("WEAVE_GCP_API_ENDPOINT", fake.url)
    elif provider == "docker":
        request.getfixturevalue("docker_api")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    return env


@pytest.mark.parametrize(("example", "provider"), named_pairs(), ids=[f"{e.split('.')[0]}-{p}" for e, p in named_pairs()])
def test_example_plans_on_every_provider_that_names_it(example, provider, request, weave_home, tmp_path, monkeypatch):
    env = _environment(request, provider, tmp_path, monkeypatch)
    env["WEAVE_HOME"] = str(weave_home)
    name = "ex-" + example.split(".")[0].replace("_", "-")
    done = run_weave(["plan", "--name", name, "--provider", provider, "--config", f"examples/{example}"], env, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert "create" in done.stdout, done.stdout
    assert not (weave_home / "inventory.db").exists() or "ex-" not in run_weave(["deployments"], env).stdout
