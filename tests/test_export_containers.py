"""The compose and kubernetes export formats, checked without an engine.

Compose: the service's settings (address, user, read-only root, health
check, labels, env by reference) and the image context against the docker
provider's own. Kubernetes: every manifest through ``kubernetes-validate``
(strict, the newest Kubernetes it ships), the security and sizing settings,
the kustomization. Both: no secret value in any file, the same bytes twice.
The engine tests (``docker compose up``, the pod's settings on a real
container) are in ``test_export_containers_docker.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from export_containers_support import FAKE_SECRET, make_source, secret_forms, write_files
from weave_nb.core.errors import ConfigError
from weave_nb.core.ownership import marks
from weave_nb.export import compose, kubernetes
from weave_nb.providers.docker.image import build_context
from weave_nb.providers.docker.state import server_env

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (the dev extra)")

FORMATS = (compose, kubernetes)


def _yaml(files: dict[str, bytes], path: str) -> dict:
    return yaml.safe_load(files[path])


# both formats ------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS, ids=lambda m: m.FORMAT)
def test_format_module_contract(fmt) -> None:
    assert fmt.FORMAT in ("compose", "kubernetes")
    assert fmt.PROVIDERS and fmt.PROVIDERS[0] == "docker"
    assert callable(fmt.render)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda m: m.FORMAT)
def test_no_env_value_in_any_exported_file(fmt, tmp_path: Path) -> None:
    src = make_source(tmp_path / "home")
    assert "OPENAI_API_KEY" in src.env_names
    out = write_files(fmt.render(src), tmp_path / "out")
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > 5
    for path in written:
        data = path.read_bytes()
        for form in secret_forms(FAKE_SECRET):
            assert form not in data, f"{path.relative_to(out)} holds the secret value"
    names = b"".join(p.read_bytes() for p in written)
    assert b"OPENAI_API_KEY" in names  # referenced by name


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda m: m.FORMAT)
def test_export_twice_gives_identical_bytes(fmt, tmp_path: Path) -> None:
    first = write_files(fmt.render(make_source(tmp_path / "home")), tmp_path / "one")
    second = write_files(fmt.render(make_source(tmp_path / "home")), tmp_path / "two")
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda m: m.FORMAT)
def test_image_context_is_the_one_the_docker_provider_builds(fmt, tmp_path: Path) -> None:
    src = make_source(tmp_path / "home", options={"base_image": "python:3.11-slim", "user": "20002:20002"})
    files = fmt.render(src)
    context = {k[len("image/"):]: v for k, v in files.items() if k.startswith("image/") and k != "image/Dockerfile"}
    recipe = src.provider_impl.recipe(src.config, src.artifact, src.provider_impl.options(src.config), src.owner)
    assert files["image/Dockerfile"].decode() == recipe.dockerfile
    assert build_context(context, files["image/Dockerfile"].decode()) == recipe.context
    assert "FROM python:3.11-slim" in recipe.dockerfile and "USER 20002:20002" in recipe.dockerfile


# compose -----------------------------------------------------------------------

def test_compose_service_settings(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home", memory_mb=300)
    files = compose.render(src)
    svc = _yaml(files, "compose.yaml")["services"]["demo"]
    recipe = src.provider_impl.recipe(src.config, src.artifact, src.provider_impl.options(src.config), src.owner)
    assert svc["build"] == {"context": "image"} and svc["image"] == recipe.ref
    assert svc["ports"] == ["127.0.0.1:${WEAVE_PORT:-8080}:8080"]
    assert svc["user"] == "10001:10001" and svc["read_only"] is True and svc["tmpfs"] == ["/tmp"]
    assert svc["init"] is True and svc["restart"] == "unless-stopped"
    assert svc["cap_drop"] == ["ALL"] and svc["security_opt"] == ["no-new-privileges:true"]
    assert svc["mem_limit"] == "300m"
    assert svc["environment"] == server_env(src.config) == {"WEAVE_ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]"}
    assert "/health" in " ".join(svc["healthcheck"]["test"])
    assert svc["labels"] == {**marks("docker", "demo", src.owner), "weave-nb.hash": src.artifact.content_hash}
    assert svc["env_file"] == [".env"]
    assert ".env" not in files  # the user makes it
    example = files[".env.example"].decode().splitlines()
    assert [ln for ln in example if not ln.startswith("#")] == ["OPENAI_API_KEY=", "WEAVE_MODEL_BACKEND="]
    assert "cp .env.example .env" in files["README.md"].decode()


def test_compose_follows_port_public_and_volumes(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home", public=True, port=9123, env={}, options={"volumes": ["./data:/app/data:ro"]})
    svc = _yaml(compose.render(src), "compose.yaml")["services"]["demo"]
    assert svc["ports"] == ["0.0.0.0:${WEAVE_PORT:-9123}:8080"]
    assert "environment" not in svc  # published beyond loopback: any Host, as the docker provider does
    assert "env_file" not in svc  # nothing to read
    assert svc["volumes"] == ["./data:/app/data:ro"]


def test_compose_refuses_what_docker_refuses(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid name for a Docker image"):
        compose.render(make_source(tmp_path / "home", name="Demo"))


# kubernetes --------------------------------------------------------------------

def _manifests(files: dict[str, bytes]) -> dict[str, dict]:
    kust = _yaml(files, "kustomization.yaml")
    listed = {path: _yaml(files, path) for path in kust["resources"]}
    listed[kubernetes.SECRET_TEMPLATE] = _yaml(files, kubernetes.SECRET_TEMPLATE)
    return listed


def test_every_manifest_passes_kubernetes_validate_strict(tmp_path: Path) -> None:
    version = kubernetes_validate.latest_version()
    files = kubernetes.render(make_source(tmp_path / "home"))
    docs = _manifests(files)
    assert {d["kind"] for d in docs.values()} == {"ServiceAccount", "ConfigMap", "Deployment", "Service", "NetworkPolicy",
                                                   "PodDisruptionBudget", "Secret"}
    for path, doc in docs.items():
        kubernetes_validate.validate(doc, version, strict=True)
    # the validator is strict: an unknown field in the pod's security context fails
    bad = json.loads(json.dumps(docs["deployment.yaml"]))
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsRoot"] = False
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)


def test_kustomization_lists_the_manifests_and_the_image_parameter(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home")
    files = kubernetes.render(src)
    kust = _yaml(files, "kustomization.yaml")
    assert kust["kind"] == "Kustomization" and kust["namespace"] == kubernetes.NAMESPACE
    assert all(path in files for path in kust["resources"])
    assert kubernetes.SECRET_TEMPLATE not in kust["resources"]  # apply -k never overwrites the real Secret
    recipe = src.provider_impl.recipe(src.config, src.artifact, src.provider_impl.options(src.config), src.owner)
    assert kust["images"] == [{"name": recipe.repository, "newName": recipe.repository, "newTag": recipe.tag}]
    deploy = _yaml(files, "deployment.yaml")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == recipe.ref
    readme = files["README.md"].decode()
    assert f"docker build -t {recipe.ref} image/" in readme and "@sha256:" in readme and "kubectl apply -k ." in readme


def test_deployment_is_locked_down_and_sized_from_the_weave(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home", memory_mb=512)
    docs = _manifests(kubernetes.render(src))
    pod = docs["deployment.yaml"]["spec"]["template"]["spec"]
    (ctr,) = pod["containers"]
    sc = ctr["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001 and sc["runAsGroup"] == 10001
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False and pod["serviceAccountName"] == "demo"
    assert docs["serviceaccount.yaml"]["metadata"]["name"] == "demo"
    assert ctr["resources"]["requests"]["memory"] == ctr["resources"]["limits"]["memory"] == "512Mi"
    assert ctr["resources"]["requests"]["cpu"] and ctr["resources"]["limits"]["cpu"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert ctr[probe]["httpGet"]["path"] == "/health" and ctr[probe]["httpGet"]["port"] == "http"
    mounts = {m["mountPath"]: m for m in ctr["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert mounts["/etc/weave-nb"]["readOnly"] is True
    assert volumes[mounts["/etc/weave-nb"]["name"]]["configMap"]["name"] == docs["configmap.yaml"]["metadata"]["name"]
    env = {e["name"]: e for e in ctr["env"]}
    assert env["WEAVE_SPEC_PATH"]["value"] == "/etc/weave-nb/weave.json"
    assert docs["configmap.yaml"]["data"]["weave.json"].encode() == src.artifact.files["weave.json"]
    assert docs["service.yaml"]["spec"]["type"] == "ClusterIP"
    assert docs["networkpolicy.yaml"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert docs["poddisruptionbudget.yaml"]["spec"]["selector"] == docs["deployment.yaml"]["spec"]["selector"]


def test_default_memory_when_the_weave_sets_none(tmp_path: Path) -> None:
    docs = _manifests(kubernetes.render(make_source(tmp_path / "home", provider="local", env={})))
    (ctr,) = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    assert ctr["resources"]["limits"]["memory"] == f"{kubernetes.DEFAULT_MEMORY_MB}Mi"
    assert [e["name"] for e in ctr["env"]] == ["WEAVE_SPEC_PATH", "WEAVE_ALLOWED_HOSTS"]
    assert docs[kubernetes.SECRET_TEMPLATE]["stringData"] == {}
    skips = docs["deployment.yaml"]["metadata"]["annotations"]
    assert not any("CKV_K8S_35" in v for v in skips.values())  # no env from a Secret: nothing to excuse


def test_secret_is_a_template_of_names_referenced_by_the_pod(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home")
    docs = _manifests(kubernetes.render(src))
    secret = docs[kubernetes.SECRET_TEMPLATE]
    assert secret["stringData"] == {n: kubernetes.PLACEHOLDER for n in src.env_names}
    assert "data" not in secret
    (ctr,) = docs["deployment.yaml"]["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in ctr["env"] if "valueFrom" in e}
    assert refs == {n: {"name": secret["metadata"]["name"], "key": n} for n in src.env_names}
    example = kubernetes.render(src)[".env.example"].decode().splitlines()  # for kubectl create secret --from-env-file
    assert [ln for ln in example if not ln.startswith("#")] == [f"{n}=" for n in src.env_names]


def test_every_object_carries_the_app_labels_and_ownership_marks(tmp_path: Path) -> None:
    src = make_source(tmp_path / "home")
    docs = _manifests(kubernetes.render(src))
    want = {**marks("label", "demo", src.owner), "app.kubernetes.io/name": "demo", "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/part-of": "weave-nb"}
    for path, doc in docs.items():
        labels = doc["metadata"]["labels"]
        assert want.items() <= labels.items(), path
        assert doc["metadata"]["namespace"] == kubernetes.NAMESPACE, path
    template = docs["deployment.yaml"]["spec"]["template"]["metadata"]
    assert want.items() <= template["labels"].items()
    assert template["annotations"]["weave-nb.hash"] == src.artifact.content_hash  # a new weave rolls the pods


def test_checkov_skips_carry_their_reasons(tmp_path: Path) -> None:
    docs = _manifests(kubernetes.render(make_source(tmp_path / "home")))
    skips = docs["deployment.yaml"]["metadata"]["annotations"]
    checks = {}
    for key, value in skips.items():
        assert key.startswith("checkov.io/skip")
        check, _, reason = value.partition("=")
        assert len(reason) > 30, value
        checks[check] = reason
    assert set(checks) == {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_35"}


def test_kubernetes_refuses_names_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        kubernetes.render(make_source(tmp_path / "home", name="my_weave", provider="local"))
    assert "my-weave" in err.value.suggestion
    with pytest.raises(ConfigError, match="numeric UID"):
        kubernetes.render(make_source(tmp_path / "home", options={"user": "appuser"}))


def test_kubernetes_checkov_finds_no_failed_check(tmp_path):
    """checkov's Kubernetes checks over four variants (env, no env, local provider, --public): none fails, each skip says why."""
    from export_tools import run_checkov

    variants = {
        "env": {},
        "no-env": {"env": {}},
        "local": {"provider": "local"},
        "public": {"public": True},
    }
    for folder, extra in variants.items():
        src = make_source(tmp_path / f"home-{folder}", **extra)
        write_files(kubernetes.render(src), tmp_path / "all" / folder)
    report = run_checkov(tmp_path / "all", "kubernetes")
    assert report.parsing_errors == 0 and report.passed > 0
    assert [str(f) for f in report.failed] == []
    assert report.skipped and all(reason.strip() for _, _, reason in report.skipped), report.skipped


def test_kubernetes_checkov_is_not_blind(tmp_path):
    """The same run fails a Deployment that drops the hardening (a root container with a writable root filesystem)."""
    from export_tools import run_checkov

    src = make_source(tmp_path / "home")
    files = kubernetes.render(src)
    doc = yaml.safe_load(files["deployment.yaml"])
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"runAsUser": 0, "readOnlyRootFilesystem": False}
    doc["metadata"].pop("annotations", None)
    files["deployment.yaml"] = yaml.safe_dump(doc).encode()
    report = run_checkov(write_files(files, tmp_path / "k8s"), "kubernetes")
    assert any(f.check_id in ("CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_40") for f in report.failed), report.failed
