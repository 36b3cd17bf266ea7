"""The compose and kubernetes exports on the real Docker engine.

* Compose: Debian's ``docker-compose`` (or the ``docker compose`` plugin)
  builds and starts the exported project; the endpoint answers ``/health``
  and a POST on the published 127.0.0.1 port; the container runs as the
  non-root user with a read-only root and the ownership labels and becomes
  healthy by its own check; ``down`` leaves no container, network or volume.
* Kubernetes: no cluster here, so the image is built from the export's
  ``image/`` and run with the pod's settings read from ``deployment.yaml``
  (user, read-only root, /tmp, capabilities, the ConfigMap mounted where
  ``WEAVE_SPEC_PATH`` says, its env, its memory limit); the probe's request
  and a call through the Service's name answer, another Host is refused.

Everything a test starts is stopped in ``finally`` (and the docker fixtures
remove whatever carries the deployment's name label).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from docker_fixtures import *  # noqa: F401,F403 - fixtures
from docker_fixtures import RUN_ID, free_tcp_port
from export_containers_support import FAKE_SECRET, make_source, write_files
from weave_nb.core.manager import DeploymentManager
from weave_nb.core.ownership import marks
from weave_nb.export import compose, kubernetes
from weave_nb.providers.docker.image import build_context

pytestmark = pytest.mark.docker

DEADLINE = 90.0


def compose_command() -> list[str]:
    """``docker compose`` when the plugin is there, else Debian's ``docker-compose``; skip (fail in CI) without either."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    why = "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but {why}", pytrace=False)
    pytest.skip(why)


def _request(url: str, host: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    if data:
        req.add_header("Content-Type", "application/json")
    if host:
        req.add_header("Host", host)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def wait_for(what: str, check, deadline: float = DEADLINE) -> Any:
    """Poll ``check()`` until it returns something truthy (exceptions count as not yet)."""
    end = time.monotonic() + deadline
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
            if last:
                return last
        except (OSError, urllib.error.URLError) as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what}: not within {deadline:.0f}s (last: {last!r})")


def _compose_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # Debian's docker-compose is a Python program
    return env


def test_compose_up_answers_and_down_removes_everything(tmp_path: Path, docker_api: Any, docker_names) -> None:
    cmd = compose_command()
    name = docker_names("cx")
    src = make_source(tmp_path / "home", name=name)
    folder = write_files(compose.render(src), tmp_path / "export")
    (folder / ".env").write_text(f"OPENAI_API_KEY={FAKE_SECRET}\nWEAVE_MODEL_BACKEND=mock\n")  # what the user writes
    project = f"wnb-{RUN_ID}-{secrets.token_hex(3)}"
    port = free_tcp_port()
    env = {**_compose_env(), "WEAVE_PORT": str(port)}
    base = [*cmd, "-p", project, "-f", str(folder / "compose.yaml")]
    mine = {"label": [f"com.docker.compose.project={project}"]}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*base, *args], cwd=folder, env=env, capture_output=True, text=True, timeout=300)

    try:
        up = run("up", "-d", "--build")
        assert up.returncode == 0, up.stdout + up.stderr
        status, health = wait_for("GET /health", lambda: _request(f"http://127.0.0.1:{port}/health"))
        assert status == 200 and health["weaves"] == ["hello"]
        status, answer = _request(f"http://127.0.0.1:{port}/", body={"input": "hi there"})
        assert status == 200 and answer["weave"] == "hello" and answer["agents"][0]["name"] == "greeter"
        # a request a web page could forge through DNS rebinding is refused (WEAVE_ALLOWED_HOSTS, as the provider sets)
        assert _request(f"http://127.0.0.1:{port}/health", host=f"rebind.example:{port}")[0] == 421

        (c,) = docker_api.containers(filters=mine)
        info = docker_api.inspect_container(c["Id"])
        assert info["Config"]["User"] == "10001:10001"
        assert info["HostConfig"]["ReadonlyRootfs"] is True and info["HostConfig"]["Init"] is True
        assert info["HostConfig"]["CapDrop"] == ["ALL"]
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert info["HostConfig"]["PortBindings"]["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(port)}]
        assert marks("docker", name, src.owner).items() <= info["Config"]["Labels"].items()
        assert f"OPENAI_API_KEY={FAKE_SECRET}" in info["Config"]["Env"]  # from the user's .env, at run time
        image = docker_api.inspect_image(info["Image"])
        assert FAKE_SECRET not in json.dumps(image) and FAKE_SECRET not in json.dumps(docker_api.history(info["Image"]))
        wait_for("Docker's health check", lambda: docker_api.inspect_container(c["Id"])["State"]["Health"]["Status"] == "healthy")
        # the ownership labels make it one of this inventory's docker deployments
        listed = {d.name: d for d in DeploymentManager(home=tmp_path / "home").provider("docker").list_deployments()}
        assert listed[name].endpoint == f"http://127.0.0.1:{port}" and listed[name].details["owner"] == src.owner

        down = run("down", "-v", "--remove-orphans")
        assert down.returncode == 0, down.stdout + down.stderr
        assert docker_api.containers(all=True, filters=mine) == []
        assert docker_api.networks(filters=mine) == []
        assert docker_api.volumes(filters=mine).get("Volumes") in (None, [])
    finally:
        run("down", "-v", "--remove-orphans")
        for net in docker_api.networks(filters=mine):
            docker_api.remove_network(net["Id"])


def _memory(quantity: str) -> str:
    assert quantity.endswith("Mi"), quantity
    return f"{quantity[:-2]}m"


def test_kubernetes_pod_settings_run_on_a_real_container(tmp_path: Path, docker_api: Any, docker_names) -> None:
    name = docker_names("kx")
    src = make_source(tmp_path / "home", name=name, memory_mb=128)
    files = kubernetes.render(src)
    deploy = yaml.safe_load(files["deployment.yaml"])
    configmap = yaml.safe_load(files["configmap.yaml"])
    secret = yaml.safe_load(files[kubernetes.SECRET_TEMPLATE])
    pod = deploy["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]

    # docker build image/ (what the README says), through the engine's API
    context = {k[len("image/"):]: v for k, v in files.items() if k.startswith("image/") and k != "image/Dockerfile"}
    tar = build_context(context, files["image/Dockerfile"].decode())
    for chunk in docker_api.build(fileobj=tar, custom_context=True, tag=ctr["image"], rm=True, forcerm=True, decode=True):
        assert "error" not in chunk, chunk

    # the ConfigMap as the kubelet projects it: its item, read-only, mode 0444
    (vol,) = [v for v in pod["volumes"] if "configMap" in v]
    (mount,) = [m for m in ctr["volumeMounts"] if m["name"] == vol["name"]]
    projected = tmp_path / "configmap"
    projected.mkdir(mode=0o755)
    projected.chmod(0o755)
    for item in vol["configMap"]["items"]:
        (projected / item["path"]).write_text(configmap["data"][item["key"]])
        (projected / item["path"]).chmod(vol["configMap"]["defaultMode"])
    env = {e["name"]: e["value"] for e in ctr["env"] if "value" in e}
    env.update({e["name"]: secret["stringData"][e["valueFrom"]["secretKeyRef"]["key"]] for e in ctr["env"] if "valueFrom" in e})
    sc = ctr["securityContext"]
    tmp = next(m for m in ctr["volumeMounts"] if m["name"] != vol["name"])
    port = free_tcp_port()
    host_config = docker_api.create_host_config(
        port_bindings={8080: ("127.0.0.1", port)}, read_only=sc["readOnlyRootFilesystem"],
        tmpfs={tmp["mountPath"]: "size=64m"}, cap_drop=sc["capabilities"]["drop"],
        security_opt=["no-new-privileges:true"] if sc["allowPrivilegeEscalation"] is False else [],
        binds={str(projected): {"bind": mount["mountPath"], "mode": "ro" if mount["readOnly"] else "rw"}},
        mem_limit=_memory(ctr["resources"]["limits"]["memory"]),
    )
    created = docker_api.create_container(
        ctr["image"], name=f"{name}-pod", user=f"{sc['runAsUser']}:{sc['runAsGroup']}", environment=env,
        ports=[8080], labels={"weave-nb.name": name}, host_config=host_config)
    try:
        docker_api.start(created["Id"])
        probe = ctr["readinessProbe"]["httpGet"]
        probe_host = next(h["value"] for h in probe["httpHeaders"] if h["name"] == "Host")
        url = f"http://127.0.0.1:{port}{probe['path']}"
        status, health = wait_for("the readiness probe", lambda: _request(url, host=probe_host))
        # 200 means the runtime read weave.json from the ConfigMap mount that WEAVE_SPEC_PATH names
        assert status == 200 and health["weaves"] == ["hello"], health
        service = f"{name}.{kubernetes.NAMESPACE}.svc"
        status, answer = _request(f"http://127.0.0.1:{port}/", host=service, body={"input": "hi"})
        assert status == 200 and answer["weave"] == "hello", answer
        assert _request(f"http://127.0.0.1:{port}/health", host="rebind.example")[0] == 421
        info = docker_api.inspect_container(created["Id"])
        assert info["Config"]["User"] == "10001:10001" and info["HostConfig"]["ReadonlyRootfs"] is True
        assert info["State"]["Running"] is True
    finally:
        docker_api.remove_container(created["Id"], force=True)
