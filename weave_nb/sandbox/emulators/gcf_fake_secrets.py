"""Secret Manager v1 for the Cloud Functions test fake (see ``gcf_fake``; not Google's service).

Standard library only. Written from the public Secret Manager v1 REST
reference and the paths the official ``google-cloud-secret-manager`` client
sends with ``transport="rest"`` (its ``rest_base`` http rules):

* ``POST /v1/projects/P/secrets?secretId=S`` (body: a Secret) -> the Secret;
  409 ``ALREADY_EXISTS`` when it exists
* ``GET|DELETE /v1/projects/P/secrets/S`` -> the Secret | ``{}``; 404 ``NOT_FOUND``
* ``PATCH /v1/projects/P/secrets/S?updateMask=labels`` -> the Secret (only ``labels`` may change here)
* ``GET /v1/projects/P/secrets`` (``filter``: ``name:TEXT``, ``labels.KEY=VALUE``,
  joined by spaces or ``AND``; ``pageSize``, ``pageToken``) -> ``{"secrets", "totalSize"}``
* ``POST /v1/projects/P/secrets/S:addVersion`` (body ``{"payload": {"data": base64,
  "dataCrc32c"}}``; a wrong CRC32C is a 400) -> the SecretVersion (numbered from 1)
* ``GET /v1/projects/P/secrets/S/versions/V`` and ``.../V:access`` (``V`` may be
  ``latest``) -> the SecretVersion | ``{"name", "payload": {"data", "dataCrc32c"}}``

As the real service does, names in answers carry the project *number*; the
project id and number are both accepted in requests. A function whose
``serviceConfig.secretEnvironmentVariables`` names a secret gets the value of
that version in its process environment (:meth:`SecretsMixin.secret_env`), and a
deploy naming a missing secret or version fails, as a real one does.
Not implemented: locations (regional secrets), IAM on secrets, rotation, expiry,
version disable/destroy, etags checks. The request log (``fake.calls``) keeps
bodies as sent, so it holds secret values: never print it.
"""

from __future__ import annotations

import base64
import copy
import re
import threading
from typing import Any

from weave_nb.sandbox.emulators.gcf_fake_functions import PROJECT_NUMBER, ApiError, now_rfc3339, paginate

_P = r"/v1/projects/(?P<project>[^/]+)"
_S = _P + r"/secrets/(?P<sid>[^/:]+)"
SECRET_ROUTES = [
    ("POST", _P + r"/secrets", "secrets.create", "_sm_create"),
    ("GET", _P + r"/secrets", "secrets.list", "_sm_list"),
    ("POST", _S + r":addVersion", "secrets.addVersion", "_sm_add_version"),
    ("GET", _S + r"/versions/(?P<version>[^/:]+):access", "versions.access", "_sm_access"),
    ("GET", _S + r"/versions/(?P<version>[^/:]+)", "versions.get", "_sm_get_version"),
    ("GET", _S, "secrets.get", "_sm_get"),
    ("PATCH", _S, "secrets.patch", "_sm_patch"),
    ("DELETE", _S, "secrets.delete", "_sm_delete"),
]
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), the checksum Secret Manager uses for payloads."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


class SecretsMixin:
    """Secret Manager state and API methods (part of ``FakeCloudFunctions``)."""

    _lock: threading.RLock

    @property
    def _sm(self) -> dict[str, dict[str, Any]]:
        store = self.__dict__.get("_sm_store")
        if store is None:
            store = self.__dict__["_sm_store"] = {}
        return store

    @staticmethod
    def _sm_name(sid: str) -> str:
        return f"projects/{PROJECT_NUMBER}/secrets/{sid}"

    def _sm_find(self, sid: str) -> dict[str, Any]:
        entry = self._sm.get(sid)
        if entry is None:
            raise ApiError(404, f"Secret [{self._sm_name(sid)}] not found or has no versions.")
        return entry

    def _sm_version(self, sid: str, version: str) -> dict[str, Any]:
        versions = self._sm_find(sid)["versions"]
        if version == "latest":
            found = versions[-1] if versions else None
        else:
            found = next((v for v in versions if v["meta"]["name"].rsplit("/", 1)[-1] == version), None)
        if found is None:
            raise ApiError(404, f"Secret Version [{self._sm_name(sid)}/versions/{version}] not found.")
        return found

    def api_sm_create(self, sid: str | None, body: Any) -> dict[str, Any]:
        if not sid or not _SECRET_ID.match(sid):
            raise ApiError(400, "Invalid secret id: use 1-255 letters, digits, '_' or '-' (query parameter secretId)")
        body = body if isinstance(body, dict) else {}
        if not isinstance(body.get("replication"), dict) or not body["replication"]:
            raise ApiError(400, "Secret.replication is required (automatic or userManaged)")
        labels = body.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise ApiError(400, "Invalid value at 'secret.labels': expected a map of strings")
        with self._lock:
            if sid in self._sm:
                raise ApiError(409, f"Secret [{self._sm_name(sid)}] already exists.")
            secret = {"name": self._sm_name(sid), "replication": copy.deepcopy(body["replication"]),
                      "createTime": now_rfc3339(), "labels": dict(labels), "etag": f'"{len(self._sm) + 1:x}"'}
            self._sm[sid] = {"secret": secret, "versions": []}
            return copy.deepcopy(secret)

    def api_sm_get(self, sid: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._sm_find(sid)["secret"])

    def api_sm_patch(self, sid: str, mask: str | None, body: Any) -> dict[str, Any]:
        paths = [p for p in (mask or "").split(",") if p]
        if not paths or any(p != "labels" for p in paths):
            raise ApiError(400, "updateMask must be labels (the fake changes labels only)")
        labels = (body or {}).get("labels") or {}
        with self._lock:
            secret = self._sm_find(sid)["secret"]
            secret["labels"] = dict(labels)
            return copy.deepcopy(secret)

    def api_sm_delete(self, sid: str) -> dict[str, Any]:
        with self._lock:
            self._sm_find(sid)
            del self._sm[sid]
        return {}

    def api_sm_list(self, query: dict) -> dict[str, Any]:
        clauses = [c for c in re.split(r"\s+(?:AND\s+)?", (query.get("filter") or "").strip()) if c]
        with self._lock:
            secrets = [copy.deepcopy(e["secret"]) for _, e in sorted(self._sm.items())]

        def keep(secret: dict) -> bool:
            for clause in clauses:
                if clause.startswith("labels.") and "=" in clause:
                    key, value = clause[len("labels."):].split("=", 1)
                    if secret["labels"].get(key) != value.strip('"'):
                        return False
                elif clause.startswith("name:"):
                    if clause[len("name:"):].strip('"') not in secret["name"].rsplit("/", 1)[-1]:
                        return False
                else:
                    raise ApiError(400, f"unsupported filter clause {clause!r} (the fake knows name:TEXT and labels.KEY=VALUE)")
            return True

        chosen = [s for s in secrets if keep(s)]
        page, token = paginate(chosen, query.get("pageSize"), query.get("pageToken"))
        return {"secrets": page, "totalSize": len(chosen), **({"nextPageToken": token} if token else {})}

    def api_sm_add_version(self, sid: str, body: Any) -> dict[str, Any]:
        payload = (body or {}).get("payload") if isinstance(body, dict) else None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), str):
            raise ApiError(400, "SecretPayload.data is required")
        try:
            data = base64.b64decode(payload["data"], validate=True)
        except ValueError:
            raise ApiError(400, "Invalid value at 'payload.data': not base64") from None
        if len(data) > 64 * 1024:
            raise ApiError(400, "Secret payload data length must be at most 65536 bytes.")
        given = payload.get("dataCrc32c")
        if given is not None and int(given) != crc32c(data):
            raise ApiError(400, "Checksum mismatch: data_crc32c does not match the payload")
        with self._lock:
            entry = self._sm_find(sid)
            number = len(entry["versions"]) + 1
            meta = {"name": f"{self._sm_name(sid)}/versions/{number}", "createTime": now_rfc3339(), "state": "ENABLED",
                    "replicationStatus": {"automatic": {}}, "etag": f'"{number:x}"', "clientSpecifiedPayloadChecksum": given is not None}
            entry["versions"].append({"meta": meta, "data": data})
            return copy.deepcopy(meta)

    def api_sm_get_version(self, sid: str, version: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._sm_version(sid, version)["meta"])

    def api_sm_access(self, sid: str, version: str) -> dict[str, Any]:
        with self._lock:
            found = self._sm_version(sid, version)
            data = found["data"]
            return {"name": found["meta"]["name"],
                    "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))}}

    def secret_env(self, refs: Any) -> dict[str, str]:
        """The environment a function's ``serviceConfig.secretEnvironmentVariables`` gives its process.

        Raises:
            ApiError: a reference is malformed, or its secret or version does not exist (the deploy fails).
        """
        out: dict[str, str] = {}
        for ref in refs or []:
            if not isinstance(ref, dict) or not ref.get("key") or not ref.get("secret"):
                raise ApiError(400, "secretEnvironmentVariables entries need key and secret")
            secret = str(ref["secret"]).rsplit("/", 1)[-1]
            with self._lock:
                found = self._sm_version(secret, str(ref.get("version") or "latest"))
            out[ref["key"]] = found["data"].decode("utf-8")
        return out


class SecretHandlers:
    """The HTTP handlers of :data:`SECRET_ROUTES` (part of the fake's request handler)."""

    fake: Any
    body: Any
    query: dict

    def _sm_create(self, project):
        return self.fake.api_sm_create(self.query.get("secretId"), self.body)

    def _sm_list(self, project):
        return self.fake.api_sm_list(self.query)

    def _sm_get(self, project, sid):
        return self.fake.api_sm_get(sid)

    def _sm_patch(self, project, sid):
        return self.fake.api_sm_patch(sid, self.query.get("updateMask"), self.body)

    def _sm_delete(self, project, sid):
        return self.fake.api_sm_delete(sid)

    def _sm_add_version(self, project, sid):
        return self.fake.api_sm_add_version(sid, self.body)

    def _sm_get_version(self, project, sid, version):
        return self.fake.api_sm_get_version(sid, version)

    def _sm_access(self, project, sid, version):
        return self.fake.api_sm_access(sid, version)
