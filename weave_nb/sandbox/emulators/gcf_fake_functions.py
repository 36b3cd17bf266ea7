"""Function resources, enums, update masks and operations for the test fake.

Part of the Cloud Functions v2 *test fake* (see ``gcf_fake``): written from the
public Cloud Functions v2 REST reference and captured client traffic, not
Google's service. Standard library only; no google client libraries.

Resources are kept as camelCase JSON dicts with enums stored by name; they are
rendered with integer enums when the caller asked for
``$alt=json;enum-encoding=int``.
"""

from __future__ import annotations

import base64
import copy
import os
import random
import re
import string
from datetime import datetime, timezone

PROJECT_NUMBER = "000000000000"
FUNCTION_TYPE = "type.googleapis.com/google.cloud.functions.v2.Function"
METADATA_TYPE = "type.googleapis.com/google.cloud.functions.v2.OperationMetadata"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message", "status"}}``."""

    def __init__(self, code: int, message: str, status: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_NAMES.get(code, "UNKNOWN")

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- enums
# Value lists are indexed by the proto enum number (google.cloud.functions.v2).
_STATE = ["STATE_UNSPECIFIED", "ACTIVE", "FAILED", "DEPLOYING", "DELETING", "UNKNOWN"]
_SEVERITY = ["SEVERITY_UNSPECIFIED", "ERROR", "WARNING", "INFO"]
FUNCTION_ENUMS: dict[tuple, list[str]] = {
    ("state",): _STATE,
    ("environment",): ["ENVIRONMENT_UNSPECIFIED", "GEN_1", "GEN_2"],
    ("serviceConfig", "ingressSettings"): [
        "INGRESS_SETTINGS_UNSPECIFIED", "ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"],
    ("serviceConfig", "vpcConnectorEgressSettings"): [
        "VPC_CONNECTOR_EGRESS_SETTINGS_UNSPECIFIED", "PRIVATE_RANGES_ONLY", "ALL_TRAFFIC"],
    ("serviceConfig", "securityLevel"): ["SECURITY_LEVEL_UNSPECIFIED", "SECURE_ALWAYS", "SECURE_OPTIONAL"],
    ("buildConfig", "dockerRegistry"): ["DOCKER_REGISTRY_UNSPECIFIED", "CONTAINER_REGISTRY", "ARTIFACT_REGISTRY"],
    ("eventTrigger", "retryPolicy"): ["RETRY_POLICY_UNSPECIFIED", "RETRY_POLICY_DO_NOT_RETRY", "RETRY_POLICY_RETRY"],
    ("stateMessages", "*", "severity"): _SEVERITY,
}
STAGE_NAMES = ["NAME_UNSPECIFIED", "ARTIFACT_REGISTRY", "BUILD", "SERVICE", "TRIGGER",
               "SERVICE_ROLLBACK", "TRIGGER_ROLLBACK"]
STAGE_STATES = ["STATE_UNSPECIFIED", "NOT_STARTED", "IN_PROGRESS", "COMPLETE"]
METADATA_ENUMS: dict[tuple, list[str]] = {
    ("operationType",): ["OPERATIONTYPE_UNSPECIFIED", "CREATE_FUNCTION", "UPDATE_FUNCTION", "DELETE_FUNCTION"],
    ("stages", "*", "name"): STAGE_NAMES,
    ("stages", "*", "state"): STAGE_STATES,
    ("stages", "*", "stateMessages", "*", "severity"): _SEVERITY,
    **{("requestResource", *k): v for k, v in FUNCTION_ENUMS.items()},
}


def _walk(obj, path: tuple, fn, where: str = "") -> None:
    """Apply ``fn(container, key, where)`` to every value at ``path`` (``*`` = list items)."""
    if not path or obj is None:
        return
    head, rest = path[0], path[1:]
    if head == "*":
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                if rest:
                    _walk(item, rest, fn, f"{where}[{i}]")
                else:
                    fn(obj, i, where)
        return
    if not isinstance(obj, dict) or head not in obj:
        return
    if rest:
        _walk(obj[head], rest, fn, f"{where}.{head}" if where else head)
    else:
        fn(obj, head, f"{where}.{head}" if where else head)


def enums_to_names(obj: dict, table: dict) -> dict:
    """Accept int or string enums in a request body; store names. Raises ApiError."""
    for path, names in table.items():
        def conv(container, key, where, names=names):
            value = container[key]
            if isinstance(value, bool):
                raise ApiError(400, f"Invalid value at '{where}': expected an enum")
            if isinstance(value, int):
                if not 0 <= value < len(names):
                    raise ApiError(400, f"Invalid value at '{where}' ({value})")
                container[key] = names[value]
            elif not (isinstance(value, str) and value in names):
                raise ApiError(400, f"Invalid value at '{where}' ({value!r})")
        _walk(obj, path, conv)
    return obj


def enums_to_ints(obj: dict, table: dict) -> dict:
    """Render stored enum names as ints (in place)."""
    for path, names in table.items():
        def conv(container, key, where, names=names):
            if container[key] in names:
                container[key] = names.index(container[key])
        _walk(obj, path, conv)
    return obj


# ----------------------------------------------------------------------- validation
FUNCTION_ID_RE = re.compile(r"^[a-z][a-z0-9-]{2,61}[a-z0-9]$")
_MEMORY_RE = re.compile(r"^\d+(\.\d+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
RESERVED_ENV = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}

FUNCTION_FIELDS = {"name", "description", "buildConfig", "serviceConfig", "eventTrigger", "state",
                   "updateTime", "labels", "stateMessages", "environment", "url", "kmsKeyName",
                   "satisfiesPzs", "createTime"}
BUILD_FIELDS = {"automaticUpdatePolicy", "onDeployUpdatePolicy", "build", "runtime", "entryPoint",
                "source", "sourceProvenance", "workerPool", "environmentVariables", "dockerRegistry",
                "dockerRepository", "serviceAccount"}
SERVICE_FIELDS = {"service", "timeoutSeconds", "availableMemory", "availableCpu", "environmentVariables",
                  "maxInstanceCount", "minInstanceCount", "vpcConnector", "vpcConnectorEgressSettings",
                  "ingressSettings", "uri", "serviceAccountEmail", "allTrafficOnLatestRevision",
                  "secretEnvironmentVariables", "secretVolumes", "revision",
                  "maxInstanceRequestConcurrency", "securityLevel", "binaryAuthorizationPolicy"}
OUTPUT_ONLY = {("state",), ("updateTime",), ("createTime",), ("stateMessages",), ("url",),
               ("satisfiesPzs",), ("buildConfig", "build"), ("buildConfig", "sourceProvenance"),
               ("serviceConfig", "uri"), ("serviceConfig", "revision"), ("serviceConfig", "service")}
_SUBFIELDS = {"buildConfig": BUILD_FIELDS, "serviceConfig": SERVICE_FIELDS}


def _camel(path: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), path)


def check_function_id(fid: str | None) -> str:
    if not fid or not FUNCTION_ID_RE.match(fid):
        raise ApiError(400, f"Invalid function id '{fid}'")
    return fid


def clean_request_function(body) -> dict:
    """Reject unknown fields, drop output-only ones, normalise enums. Returns a copy."""
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received. Expected an object.")
    fn = copy.deepcopy(body)
    fn.pop("@type", None)
    for key in fn:
        if key not in FUNCTION_FIELDS:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
    for parent, allowed in _SUBFIELDS.items():
        sub = fn.get(parent)
        if sub is None:
            continue
        if not isinstance(sub, dict):
            raise ApiError(400, f"Invalid value at '{parent}': expected an object")
        for key in sub:
            if key not in allowed:
                raise ApiError(400, f'Invalid JSON payload received. Unknown name "{key}" at '
                                    f"'{parent}': Cannot find field.")
    for path in OUTPUT_ONLY:
        holder = fn if len(path) == 1 else fn.get(path[0])
        if isinstance(holder, dict):
            holder.pop(path[-1], None)
    return enums_to_names(fn, FUNCTION_ENUMS)


def _check_int(holder: dict, key: str, where: str, lo: int, hi: int) -> None:
    if key not in holder:
        return
    value = holder[key]
    try:
        ivalue = int(value)
        if isinstance(value, bool) or (isinstance(value, str) and not value.strip().lstrip("-").isdigit()):
            raise ValueError
    except (TypeError, ValueError):
        raise ApiError(400, f"Invalid value at '{where}' ({value!r})") from None
    if not lo <= ivalue <= hi:
        raise ApiError(400, f"{where} must be between {lo} and {hi}")
    holder[key] = ivalue


def _check_env(env, where: str) -> None:
    if env is None:
        return
    if not isinstance(env, dict):
        raise ApiError(400, f"Invalid value at '{where}': expected a map")
    for key, value in env.items():  # messages name keys only, never values
        if not _ENV_KEY_RE.match(key) or key in RESERVED_ENV or key.startswith("X_GOOGLE_"):
            raise ApiError(400, f"Invalid or reserved environment variable name '{key}' in {where}")
        if not isinstance(value, str):
            raise ApiError(400, f"Environment variable '{key}' in {where} must be a string")


def validate_function(fn: dict) -> None:
    """Check a complete (merged) function resource. Raises ApiError(400)."""
    svc = fn.setdefault("serviceConfig", {})
    build = fn.get("buildConfig") or {}
    _check_int(svc, "timeoutSeconds", "serviceConfig.timeoutSeconds", 1, 3600)
    _check_int(svc, "maxInstanceCount", "serviceConfig.maxInstanceCount", 0, 1000)
    _check_int(svc, "minInstanceCount", "serviceConfig.minInstanceCount", 0, 1000)
    _check_int(svc, "maxInstanceRequestConcurrency", "serviceConfig.maxInstanceRequestConcurrency", 0, 1000)
    mem = svc.get("availableMemory")
    if mem is not None and not (isinstance(mem, str) and _MEMORY_RE.match(mem)):
        raise ApiError(400, f"Invalid value at 'serviceConfig.availableMemory' ({mem!r})")
    _check_env(svc.get("environmentVariables"), "serviceConfig.environmentVariables")
    _check_env(build.get("environmentVariables"), "buildConfig.environmentVariables")
    labels = fn.get("labels") or {}
    if not isinstance(labels, dict):
        raise ApiError(400, "Invalid value at 'labels': expected a map")
    for key, value in labels.items():
        if not _LABEL_KEY_RE.match(key) or not isinstance(value, str) or not _LABEL_VALUE_RE.match(value):
            raise ApiError(400, f"Invalid label '{key}': keys and values must be lowercase letters, "
                                "digits, '_' or '-' (keys start with a letter, max 63 chars)")
    if fn.get("environment", "GEN_2") != "GEN_2":
        raise ApiError(400, "The fake serves 2nd gen functions only (environment GEN_2)")
    if not build.get("runtime"):
        raise ApiError(400, "buildConfig.runtime is required")
    if not build.get("entryPoint"):
        raise ApiError(400, "buildConfig.entryPoint is required")
    storage = (build.get("source") or {}).get("storageSource")
    if not isinstance(storage, dict) or not storage.get("bucket") or not storage.get("object"):
        raise ApiError(400, "buildConfig.source.storageSource (bucket, object) is required")


# ---------------------------------------------------------------------- update mask
def mask_paths(update_mask: str | None, patch: dict) -> list[str]:
    """Field paths to update: the mask (camelCase or snake_case), else every provided field."""
    if update_mask:
        paths = [_camel(p.strip()) for p in update_mask.split(",") if p.strip()]
    else:  # reference: without a mask, all provided fields are updated
        paths = []
        for key, value in patch.items():
            if key in _SUBFIELDS and isinstance(value, dict):
                paths += [f"{key}.{sub}" for sub in value]
            else:
                paths.append(key)
    for path in paths:
        parts = tuple(path.split("."))
        if tuple(parts[:2]) in OUTPUT_ONLY or parts[:1] in OUTPUT_ONLY or parts[0] in ("name", "environment"):
            raise ApiError(400, f"Invalid update mask path '{path}': field is immutable or output only")
        if parts[0] not in FUNCTION_FIELDS or (
                len(parts) > 1 and parts[0] in _SUBFIELDS and parts[1] not in _SUBFIELDS[parts[0]]):
            raise ApiError(400, f"Invalid update mask path '{path}'")
    return paths


def apply_mask(target: dict, patch: dict, paths: list[str]) -> dict:
    """Return a copy of ``target`` with each path taken from ``patch`` (absent = cleared)."""
    out = copy.deepcopy(target)
    for path in paths:
        parts = path.split(".")
        src = patch
        for part in parts:
            src = src.get(part) if isinstance(src, dict) else None
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
            if not isinstance(dst, dict):
                raise ApiError(400, f"Invalid update mask path '{path}'")
        if src is None:
            dst.pop(parts[-1], None)
        else:
            dst[parts[-1]] = copy.deepcopy(src)
    return out


# ---------------------------------------------------------------------- list helpers
def paginate(items: list, page_size, page_token) -> tuple[list, str | None]:
    try:
        size = int(page_size) if page_size not in (None, "") else 0
        start = int(page_token) if page_token not in (None, "") else 0
    except ValueError:
        raise ApiError(400, "Invalid page size or page token") from None
    if size < 0 or start < 0 or start > len(items):
        raise ApiError(400, "Invalid page size or page token")
    end = len(items) if size == 0 else start + size
    return items[start:end], (str(end) if end < len(items) else None)


_CLAUSE_RE = re.compile(r'^\s*([A-Za-z][\w.]*)\s*=\s*("([^"]*)"|[^\s"]+)\s*$')


def matches_filter(fn: dict, expr: str | None) -> bool:
    """Supports ``path="value"`` clauses joined by AND (e.g. ``environment="GEN_2"``)."""
    if not expr:
        return True
    for clause in re.split(r"\s+AND\s+", expr.strip()):
        m = _CLAUSE_RE.match(clause)
        if not m:
            raise ApiError(400, f"Unsupported filter {expr!r} (the fake supports path=\"value\" AND ...)")
        value = m.group(3) if m.group(3) is not None else m.group(2)
        cur = fn
        for part in m.group(1).split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is None or str(cur) != value:
            return False
    return True


# ------------------------------------------------------------------------ resources
def new_function(name: str, request: dict, revision: int) -> dict:
    """A freshly created resource (state DEPLOYING) with the service defaults filled in."""
    _, project, _, location, _, fid = name.split("/")
    fn = copy.deepcopy(request)
    fn["name"] = name
    svc = fn.setdefault("serviceConfig", {})
    svc.setdefault("timeoutSeconds", 60)
    svc.setdefault("availableMemory", "256M")
    svc.setdefault("maxInstanceCount", 100)
    svc.setdefault("ingressSettings", "ALLOW_ALL")
    svc.setdefault("serviceAccountEmail", f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com")
    svc.setdefault("allTrafficOnLatestRevision", True)
    svc["service"] = f"projects/{project}/locations/{location}/services/{fid}"
    set_revision(fn, revision)
    fn["environment"] = fn.get("environment") or "GEN_2"
    fn["state"] = "DEPLOYING"
    fn["createTime"] = fn["updateTime"] = now_rfc3339()
    return fn


def set_revision(fn: dict, revision: int) -> None:
    fid = fn["name"].rsplit("/", 1)[-1]
    suffix = "".join(random.choice(string.ascii_lowercase) for _ in range(3))
    fn["serviceConfig"]["revision"] = f"{fid}-{revision:05d}-{suffix}"


def placeholder_urls(fn: dict) -> tuple[str, str]:
    """The https URLs a real deployment would get (used when functions are not served)."""
    _, project, _, location, _, fid = fn["name"].split("/")
    return (f"https://{fid}-{PROJECT_NUMBER[:10]}-uc.a.run.app",
            f"https://{location}-{project}.cloudfunctions.net/{fid}")


def render_function(fn: dict, int_enums: bool, with_type: bool = False) -> dict:
    out = copy.deepcopy(fn)
    if int_enums:
        enums_to_ints(out, FUNCTION_ENUMS)
    if with_type:
        out["@type"] = FUNCTION_TYPE
    return out


# ---------------------------------------------------------------------- IAM policy
EMPTY_POLICY = {"version": 1, "etag": "ACAB"}  # what a never-set policy reads as (captures)


def next_policy(current: dict, body) -> dict:
    """Validate a setIamPolicy body against ``current`` and return the stored policy (new etag).

    Raises:
        ApiError: 400 for a malformed policy, 409 ABORTED for a stale etag.
    """
    policy = body.get("policy") if isinstance(body, dict) else None
    if not isinstance(policy, dict):
        raise ApiError(400, "policy is required")
    bindings = policy.get("bindings") or []
    if not isinstance(bindings, list) or not all(
            isinstance(b, dict) and isinstance(b.get("role"), str) and b["role"].startswith("roles/")
            and isinstance(b.get("members"), list) and b["members"] for b in bindings):
        raise ApiError(400, "Invalid policy: each binding needs a 'roles/...' role and members")
    if policy.get("etag") and policy["etag"] != current["etag"]:
        raise ApiError(409, "There were concurrent policy changes. Please retry the whole "
                            "read-modify-write with exponential backoff.", "ABORTED")
    new = {"version": int(policy.get("version") or 1),
           "etag": base64.b64encode(os.urandom(8)).decode(), "bindings": copy.deepcopy(bindings)}
    if policy.get("auditConfigs"):
        new["auditConfigs"] = copy.deepcopy(policy["auditConfigs"])
    return new
