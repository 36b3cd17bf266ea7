"""``weave export --format kubernetes``: production manifests for the weave's image, applied with ``kubectl apply -k``.

Files (relative to the export folder):

* ``image/``: the build context ``weave deploy --provider docker`` builds
  (same Dockerfile, user and labels; see :mod:`.container_image`).
* ``serviceaccount.yaml``: the pod's own ServiceAccount, no API token mounted.
* ``configmap.yaml``: the weave (the artifact's ``weave.json``), mounted
  read-only at ``/etc/weave-nb`` and named by ``WEAVE_SPEC_PATH``.
* ``deployment.yaml``: two replicas of the image, non-root (``runAsNonRoot``,
  the provider's UID:GID), read-only root filesystem with an ``emptyDir`` on
  ``/tmp``, no privilege escalation, every capability dropped, the
  ``RuntimeDefault`` seccomp profile, memory request = limit from the
  weave's ``memory_mb`` (default :data:`DEFAULT_MEMORY_MB`), CPU
  :data:`CPU_REQUEST`/:data:`CPU_LIMIT`, startup/liveness/readiness probes
  on ``/health``, the environment names as ``secretKeyRef`` into the Secret.
* ``service.yaml`` (ClusterIP, port 80), ``networkpolicy.yaml`` (in: port
  8080 from the namespace; out: DNS and HTTPS for the model APIs),
  ``poddisruptionbudget.yaml`` (at most one pod down at a time).
* ``secret.template.yaml``: the Secret with a placeholder for every key;
  never a value, and not in the kustomization (so ``kubectl apply -k`` never
  overwrites the real one with placeholders).
* ``.env.example``: the same names, empty, for ``kubectl create secret --from-env-file``.
* ``kustomization.yaml``: the manifests, the namespace and the image
  reference as the one parameter to set (pin it to a digest after pushing).
* ``README.md``: how to build, push, fill the Secret and apply.

Every object carries the ``app.kubernetes.io/*`` labels and weave-nb's
ownership marks (label style); checks checkov would flag and that the
runtime needs are skipped on the object with their reason (``checkov.io/skipN``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..core.errors import ConfigError
from ..core.ownership import marks
from ..providers.docker.image import LABEL_HASH, repository_for
from .container_image import (
    ENV_EXAMPLE,
    HEALTH_PATH,
    IMAGE_DIR,
    PORT,
    env_example,
    image_files,
    numeric_user,
    recipe_of,
    settings_of,
)
from .yaml_text import dump

if TYPE_CHECKING:  # pragma: no cover
    from .source import ExportSource

FORMAT = "kubernetes"
PROVIDERS = ("docker", "local")

NAMESPACE = "weave-nb"
DEFAULT_MEMORY_MB = 256
CPU_REQUEST = "100m"
CPU_LIMIT = "1"
REPLICAS = 2
SERVICE_PORT = 80
SPEC_DIR = "/etc/weave-nb"
SPEC_FILE = "weave.json"
TMP_SIZE = "64Mi"
PLACEHOLDER = "REPLACE-ME"
CONTAINER = "weave"

MANIFESTS = ("serviceaccount.yaml", "configmap.yaml", "deployment.yaml", "service.yaml", "networkpolicy.yaml",
             "poddisruptionbudget.yaml")
SECRET_TEMPLATE = "secret.template.yaml"
KUSTOMIZATION = "kustomization.yaml"

_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

# checkov checks that do not fit this runtime, each skipped on the Deployment with its reason
_SKIPS = (
    ("CKV_K8S_43", "the digest exists only after the image is pushed; kustomization.yaml's images entry pins it "
                   "(kustomize edit set image ...@sha256:...), see README.md"),
    ("CKV_K8S_15", "the image reference is immutable (a content-hash tag, then a digest); IfNotPresent also "
                   "runs an image built on the node without a registry"),
    ("CKV_K8S_35", "the weave runtime reads its model API keys from environment variables only"),
)


def check_name(name: str) -> None:
    """Check that ``name`` can name a Service (an RFC 1035 label: lowercase letters, digits, '-').

    Raises:
        ConfigError: it cannot.
    """
    if not _DNS_LABEL.match(name):
        fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        hint = f"deploy or export it as --name {fixed}" if _DNS_LABEL.match(fixed) else (
            "use lower-case letters, digits and '-', starting with a letter")
        raise ConfigError(f"{name!r} cannot name Kubernetes objects (a Service name is lower-case letters, digits "
                          "and '-', starting with a letter)", hint)


def labels_of(src: "ExportSource") -> dict[str, str]:
    """The labels of every object: ``app.kubernetes.io/*`` and the ownership marks (label style)."""
    return {
        "app.kubernetes.io/name": src.name,
        "app.kubernetes.io/instance": src.name,
        "app.kubernetes.io/component": "weave",
        "app.kubernetes.io/part-of": "weave-nb",
        "app.kubernetes.io/version": src.artifact.content_hash[:12],
        **marks("label", src.name, src.owner),
    }


def selector_of(src: "ExportSource") -> dict[str, str]:
    """The pod selector (stable across releases: no version in it)."""
    return {"app.kubernetes.io/name": src.name, "app.kubernetes.io/instance": src.name}


def allowed_hosts(src: "ExportSource") -> str | None:
    """``WEAVE_ALLOWED_HOSTS``: the Service's DNS names and the loopback names (``kubectl port-forward``).

    ``None`` for ``--public`` (any Host, e.g. behind an Ingress).
    """
    if src.public:
        return None
    svc = src.name
    names = [svc, f"{svc}.{NAMESPACE}", f"{svc}.{NAMESPACE}.svc", f"{svc}.{NAMESPACE}.svc.cluster.local",
             "127.0.0.1", "localhost", "[::1]"]
    return ",".join(names)


def _meta(src: "ExportSource", name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, **extra, "labels": labels_of(src)}


def _probe(period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": HEALTH_PATH, "port": "http", "httpHeaders": [{"name": "Host", "value": "localhost"}]},
            "periodSeconds": period, "timeoutSeconds": 3, "failureThreshold": failures}


def memory_mb(src: "ExportSource") -> int:
    """The pod's memory request and limit in MiB: the weave's ``memory_mb``, else :data:`DEFAULT_MEMORY_MB`."""
    return src.config.memory_mb or DEFAULT_MEMORY_MB


def deployment(src: "ExportSource", image: str, uid: int, gid: int) -> dict[str, Any]:
    """The Deployment manifest."""
    names = (*src.env_names, *src.secret_names)
    env: list[dict[str, Any]] = [{"name": "WEAVE_SPEC_PATH", "value": f"{SPEC_DIR}/{SPEC_FILE}"}]
    hosts = allowed_hosts(src)
    if hosts:
        env.append({"name": "WEAVE_ALLOWED_HOSTS", "value": hosts})
    env += [{"name": n, "valueFrom": {"secretKeyRef": {"name": secret_name(src), "key": n}}} for n in names]
    memory = f"{memory_mb(src)}Mi"
    container = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": {"cpu": CPU_REQUEST, "memory": memory},
                      "limits": {"cpu": CPU_LIMIT, "memory": memory}},
        "startupProbe": _probe(1, 30),
        "livenessProbe": _probe(10, 3),
        "readinessProbe": _probe(5, 2),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": uid,
            "runAsGroup": gid,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [{"name": "weave", "mountPath": SPEC_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
    }
    needed = [(check, why) for check, why in _SKIPS if check != "CKV_K8S_35" or names]
    skips = {f"checkov.io/skip{i}": f"{check}={why}" for i, (check, why) in enumerate(needed, 1)}
    pod = {
        "metadata": {"labels": labels_of(src), "annotations": {LABEL_HASH: src.artifact.content_hash}},
        "spec": {
            "serviceAccountName": src.name,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid, "fsGroup": gid,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "terminationGracePeriodSeconds": 30,
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                           "whenUnsatisfiable": "ScheduleAnyway",
                                           "labelSelector": {"matchLabels": selector_of(src)}}],
            "containers": [container],
            "volumes": [{"name": "weave", "configMap": {"name": configmap_name(src), "defaultMode": 0o444,
                                                        "items": [{"key": SPEC_FILE, "path": SPEC_FILE}]}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}],
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(src, src.name, annotations=skips),
        "spec": {
            "replicas": REPLICAS,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_of(src)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": pod,
        },
    }


def configmap_name(src: "ExportSource") -> str:
    """The ConfigMap holding ``weave.json``."""
    return f"{src.name}-weave"


def secret_name(src: "ExportSource") -> str:
    """The Secret holding the environment values."""
    return f"{src.name}-env"


def manifests(src: "ExportSource", image: str) -> dict[str, dict[str, Any]]:
    """Every manifest by file name (the Secret template among them).

    Raises:
        ConfigError: a name Kubernetes cannot use, a named or root user.
    """
    check_name(src.name)
    settings = settings_of(src)
    uid, gid = numeric_user(settings.user)
    selector = selector_of(src)
    names = (*src.env_names, *src.secret_names)
    return {
        "serviceaccount.yaml": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(src, src.name),
                                "automountServiceAccountToken": False},
        "configmap.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(src, configmap_name(src)),
                           "data": {SPEC_FILE: src.artifact.files[SPEC_FILE].decode()}},
        "deployment.yaml": deployment(src, image, uid, gid),
        "service.yaml": {"apiVersion": "v1", "kind": "Service", "metadata": _meta(src, src.name), "spec": {
            "type": "ClusterIP", "selector": selector,
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}]}},
        "networkpolicy.yaml": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                               "metadata": _meta(src, src.name), "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"protocol": "TCP", "port": PORT}]}],
            # DNS to any address: NodeLocal DNSCache answers on a link-local IP, not from the kube-dns pods
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": 443}]},
            ]}},
        "poddisruptionbudget.yaml": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                                     "metadata": _meta(src, src.name),
                                     "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}},
        SECRET_TEMPLATE: {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(src, secret_name(src)),
                          "type": "Opaque", "stringData": {n: PLACEHOLDER for n in names}},
    }


def _kustomization(src: "ExportSource", repository: str, tag: str) -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": NAMESPACE,
        "resources": list(MANIFESTS),
        "images": [{"name": repository, "newName": repository, "newTag": tag}],
    }


_HEADERS = {
    "serviceaccount.yaml": "The pod's own identity; it mounts no API token (the weave never calls the Kubernetes API).",
    "configmap.yaml": f"The weave (weave.json), mounted read-only at {SPEC_DIR}; the runtime rereads it when it changes.",
    "deployment.yaml": "The weave's pods: non-root, read-only root filesystem, no capabilities, probes on /health.",
    "service.yaml": f"In-cluster address http://{{name}}.{NAMESPACE}.svc (ClusterIP, port {SERVICE_PORT}).",
    "networkpolicy.yaml": ("In: port 8080 from pods of this namespace. Out: DNS, and HTTPS (443) to the model APIs;\n"
                           "add the port of an OPENAI_BASE_URL/ANTHROPIC_BASE_URL that is not on 443."),
    "poddisruptionbudget.yaml": "Voluntary disruptions (node drains) take at most one pod at a time.",
    SECRET_TEMPLATE: (f"TEMPLATE: copy to secret.yaml, replace every {PLACEHOLDER}, apply it with kubectl apply -f secret.yaml\n"
                      "and keep it out of version control. Not in kustomization.yaml on purpose: kubectl apply -k\n"
                      "must never overwrite the real Secret with placeholders. The export never writes a value."),
}


def _readme(src: "ExportSource", repository: str, tag: str) -> bytes:
    names = (*src.env_names, *src.secret_names)
    secret_step = (
        f"3. The Secret `{secret_name(src)}` with {', '.join(f'`{n}`' for n in names)}: either\n"
        f"   `cp {SECRET_TEMPLATE} secret.yaml`, replace every `{PLACEHOLDER}`, `kubectl apply -f secret.yaml`, or\n"
        f"   `cp {ENV_EXAMPLE} .env`, fill it in, then\n"
        f"   `kubectl -n {NAMESPACE} create secret generic {secret_name(src)} --from-env-file=.env`.\n"
        "   Keep both files out of version control; the export never writes a value."
        if names else
        "3. The weave needs no environment variables, so there is no Secret to create."
    )
    text = f"""# {src.name}: Kubernetes

Exported by `weave export {src.name} --format kubernetes` from weave-nb: the image
`weave deploy --provider docker` builds (`{IMAGE_DIR}/`) and the manifests to run it on a cluster,
in namespace `{NAMESPACE}` (`kustomization.yaml` lists them).

1. Build the image and push it where the cluster pulls from:
   `docker build -t {repository}:{tag} {IMAGE_DIR}/`, then
   `docker tag {repository}:{tag} REGISTRY/{repository}:{tag}` and `docker push REGISTRY/{repository}:{tag}`.
   Pin the pushed digest (an immutable reference) in `kustomization.yaml`:
   `kustomize edit set image {repository}=REGISTRY/{repository}@sha256:DIGEST`
   (or set `newName` and `digest` in its `images` entry). A cluster that runs images built on
   its node (Docker Desktop, `kind load docker-image`, `minikube image load`) can skip the push.
2. Once: `kubectl create namespace {NAMESPACE}`. (The export does not own the namespace, so deleting
   this weave never deletes another one.)
{secret_step}
4. `kubectl apply -k .` then `kubectl -n {NAMESPACE} rollout status deployment/{src.name}`.
5. Call it from your machine: `kubectl -n {NAMESPACE} port-forward svc/{src.name} 8080:{SERVICE_PORT}`, then
   `curl http://127.0.0.1:8080/health` and
   `curl -X POST -H 'Content-Type: application/json' -d '{{"input": "hello"}}' http://127.0.0.1:8080/`.
   In the cluster it is `http://{src.name}.{NAMESPACE}.svc` (the NetworkPolicy admits pods of `{NAMESPACE}`).
6. Remove it: `kubectl delete -k .` (and `kubectl -n {NAMESPACE} delete secret {secret_name(src)}`).

Sizes: memory request = limit = {memory_mb(src)} MiB (the weave's `memory_mb`; {DEFAULT_MEMORY_MB} MiB when unset),
CPU request {CPU_REQUEST}, limit {CPU_LIMIT}; {REPLICAS} replicas, at most one down during a drain.
The server answers only the Host names in `WEAVE_ALLOWED_HOSTS` (the Service's DNS names and
127.0.0.1/localhost for port-forward): add your Ingress host there if you expose it.
"""
    return text.encode()


def render(src: "ExportSource") -> dict[str, bytes]:
    """The Kubernetes export of ``src``: the manifests, ``kustomization.yaml``, ``README.md`` and ``image/``.

    Raises:
        ConfigError: a name Kubernetes or Docker cannot use, a named or root user.
    """
    check_name(src.name)
    recipe = recipe_of(src, settings_of(src))
    repository = repository_for(src.name)
    files: dict[str, bytes] = {}
    for path, doc in manifests(src, recipe.ref).items():
        about = _HEADERS[path].replace("{name}", src.name)
        header = f"weave-nb deployment {src.name} (weave export --format kubernetes).\n{about}"
        files[path] = dump(header, doc)
    files[KUSTOMIZATION] = dump(
        f"weave-nb deployment {src.name}: kubectl apply -k .\n"
        "images: the one parameter; after pushing, pin the digest (see README.md).\n"
        f"{SECRET_TEMPLATE} is left out on purpose: create the Secret yourself (README.md, step 3).",
        _kustomization(src, repository, recipe.tag))
    files["README.md"] = _readme(src, repository, recipe.tag)
    if src.env_names or src.secret_names:
        files[ENV_EXAMPLE] = env_example(src, f"the Secret {secret_name(src)} (README.md, step 3)")
    files.update(image_files(recipe, src.artifact.files))
    return dict(sorted(files.items()))
