"""HTTP routing for the Cloud Functions v2 test fake (see ``gcf_fake``; not Google's service).

Standard library only. Maps the REST paths seen in the captured traffic onto
``FakeCloudFunctions`` methods and writes JSON (or GCS-style XML for the signed
upload URL) responses.
"""

from __future__ import annotations

import json
import logging
import os
import re
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from weave_nb.sandbox.emulators.gcf_fake_functions import PROJECT_NUMBER, ApiError, render_function
from weave_nb.sandbox.emulators.gcf_fake_secrets import SECRET_ROUTES, SecretHandlers

log = logging.getLogger(__name__)

_LOC = r"/v2/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
_FN = _LOC + r"/functions/(?P<fid>[^/:]+)"
_SVC = r"/v[12]/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/services/(?P<sid>[^/:]+)"
_V1P = r"/v1/projects/(?P<project>[^/]+)"
_MON = r"/v3/projects/(?P<project>[^/]+)"  # Cloud Monitoring v3 (see ``monitoring_fake``)

# (method, path regex, operation name used in ``counts``, handler)
ROUTES: list[tuple[str, re.Pattern, str, str]] = [
    (m, re.compile(p + "$"), op, h) for m, p, op, h in [
        ("POST", _LOC + r"/functions:generateUploadUrl", "generateUploadUrl", "_generate_upload_url"),
        ("POST", _LOC + r"/functions", "create", "_create"),
        ("GET", _LOC + r"/functions", "list", "_list"),
        ("GET", _FN + r":getIamPolicy", "getIamPolicy", "_fn_get_iam"),
        ("POST", _FN + r":setIamPolicy", "setIamPolicy", "_fn_set_iam"),
        ("GET", _FN, "get", "_get"),
        ("PATCH", _FN, "update", "_update"),
        ("DELETE", _FN, "delete", "_delete"),
        ("GET", _LOC + r"/operations/(?P<op>[^/]+)", "operations.get", "_get_operation"),
        ("GET", _LOC + r"/operations", "operations.list", "_list_operations"),
        ("POST", r"/token", "token", "_token"),
        # Cloud Logging (gcf_fake_logging): what the served functions printed
        ("POST", r"/v2/entries:list", "entries.list", "_entries_list"),
        # a metadata server's answers (GCE_METADATA_HOST / GCE_METADATA_IP pointed here), as in wire3
        ("GET", r"/", "metadata.ping", "_metadata_ping"),
        ("GET", r"/computeMetadata/v1/project/project-id", "metadata.project", "_metadata_project"),
        ("GET", r"/computeMetadata/v1/instance/service-accounts/default/", "metadata.account", "_metadata_account"),
        ("GET", r"/computeMetadata/v1/instance/service-accounts/default/token", "metadata.token", "_metadata_token"),
        ("GET", r"/computeMetadata/v1/instance/service-accounts/default/identity", "metadata.identity",
         "_metadata_identity"),
        *[(m, r"/run/(?P<project>[^/]+)/(?P<location>[^/]+)/(?P<fid>[^/]+)(?P<rest>/.*)?", "invoke", "_invoke")
          for m in ("GET", "POST", "PUT", "PATCH", "DELETE")],
        ("GET", _SVC + r":getIamPolicy", "getIamPolicy", "_run_get_iam"),
        ("POST", _SVC + r":setIamPolicy", "setIamPolicy", "_run_set_iam"),
        ("PUT", r"/upload/(?P<bucket>[^/]+)/(?P<object>[^/]+)", "upload", "_upload"),
        # gcloud's extra calls (wire5): answered with fixed, plausible bodies
        ("GET", _LOC + r"/runtimes", "runtimes.list", "_runtimes"),
        ("GET", _V1P + r"/services/(?P<api>[^/]+)", "serviceusage.get", "_service_usage"),
        ("GET", _V1P + r"/locations/(?P<location>[^/]+)/defaultServiceAccount", "defaultServiceAccount",
         "_default_sa"),
        ("GET", _V1P + r"/locations/(?P<location>[^/]+)/functions", "v1.functions.list", "_v1_list"),
        ("GET", _V1P + r"/locations", "locations.list", "_locations"),
        ("GET", _V1P, "projects.get", "_project"),
        ("POST", _MON + r"/alertPolicies", "alertPolicies.create", "_mon_create_policy"),
        ("GET", _MON + r"/alertPolicies", "alertPolicies.list", "_mon_list_policies"),
        ("GET", _MON + r"/alertPolicies/(?P<pid>[^/]+)", "alertPolicies.get", "_mon_get_policy"),
        ("PATCH", _MON + r"/alertPolicies/(?P<pid>[^/]+)", "alertPolicies.patch", "_mon_patch_policy"),
        ("DELETE", _MON + r"/alertPolicies/(?P<pid>[^/]+)", "alertPolicies.delete", "_mon_delete_policy"),
        ("POST", _MON + r"/notificationChannels", "notificationChannels.create", "_mon_create_channel"),
        ("GET", _MON + r"/notificationChannels", "notificationChannels.list", "_mon_list_channels"),
        ("GET", _MON + r"/notificationChannels/(?P<cid>[^/]+)", "notificationChannels.get", "_mon_get_channel"),
        ("DELETE", _MON + r"/notificationChannels/(?P<cid>[^/]+)", "notificationChannels.delete", "_mon_delete_channel"),
        *SECRET_ROUTES,  # Secret Manager v1 (gcf_fake_secrets)
    ]
]


class Passthrough:
    """A response relayed as is (a served function's answer)."""

    def __init__(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}


class UploadError(Exception):
    """An error on the signed upload URL, answered in GCS's XML shape."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Handler(SecretHandlers, BaseHTTPRequestHandler):
    """Request handler; a subclass with ``fake`` bound is made per server."""

    fake = None  # set by FakeCloudFunctions.start()
    protocol_version = "HTTP/1.1"
    server_version = "gcf-v2-test-fake"

    def setup(self):
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.fake._lock:
                self.fake._connections.discard(self.connection)

    def log_message(self, fmt, *args):  # request lines only, never bodies
        log.debug("%s %s", self.address_string(), fmt % args)

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    # ------------------------------------------------------------------ plumbing
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body, content_type: str = "application/json; charset=UTF-8",
              headers: dict | None = None) -> None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        else:
            data = body or b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        self.int_enums = "enum-encoding=int" in self.query.get("$alt", "")
        raw = self.raw = self._read_body()
        call = {"method": method, "path": path, "query": parse_qs(split.query, keep_blank_values=True),
                "body": None}
        is_upload = path.startswith(("/upload/", "/run/")) or path == "/token"  # bodies that are not JSON
        if is_upload:
            call["body_len"] = len(raw)
        with self.fake._lock:
            self.fake.calls.append(call)
        extra = None  # response headers of a relayed answer
        route = next(((op, h, m) for meth, rx, op, h in ROUTES
                      if meth == method and (m := rx.match(path))), None)
        try:
            if raw and not is_upload:
                try:
                    call["body"] = self.body = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "Invalid JSON payload received.") from None
            else:
                self.body = None
            if route:
                with self.fake._lock:
                    self.fake.counts[route[0]] += 1
            injected = self.fake._take_injection(method, path)
            if injected is not None:
                raise ApiError(injected, f"Injected error {injected} for {method} {path}")
            if route is None:
                raise ApiError(404, f"The fake does not implement {method} {path}")
            status, body = 200, getattr(self, route[1])(**route[2].groupdict())
            ctype = "application/json; charset=UTF-8"
            if isinstance(body, Passthrough):
                extra = body.headers
                status, ctype, body = body.status, body.content_type, body.body
        except UploadError as exc:
            status, ctype = exc.status, "application/xml; charset=UTF-8"
            body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{exc.code}</Code>"
                    f"<Message>{escape(exc.message)}</Message></Error>").encode()
        except ApiError as exc:
            status, body, ctype = exc.code, exc.body(), "application/json; charset=UTF-8"
        except Exception as exc:  # a fake bug: answer 500 rather than drop the connection
            log.exception("gcf fake: unhandled error")
            status, body = 500, ApiError(500, f"fake internal error: {type(exc).__name__}").body()
            ctype = "application/json; charset=UTF-8"
        call["status"] = status
        self._send(status, body, ctype, extra)

    def _fn(self, fn: dict) -> dict:
        return render_function(fn, self.int_enums)

    def _op(self, op) -> dict:
        return op.render(self.fake.polls_before_done, self.int_enums)

    # -------------------------------------------------------------------- routes
    def _generate_upload_url(self, project, location):
        return self.fake._api_generate_upload_url(location)

    def _upload(self, bucket, object):
        self.fake._api_upload(bucket, object, self.headers, self.raw)
        return b""

    def _create(self, project, location):
        return self._op(self.fake._api_create(project, location, self.query.get("functionId"), self.body))

    def _list(self, project, location):
        out = self.fake._api_list(project, location, self.query)
        out["functions"] = [self._fn(fn) for fn in out["functions"]]
        return out

    def _get(self, project, location, fid):
        return self._fn(self.fake._api_get(project, location, fid))

    def _update(self, project, location, fid):
        return self._op(self.fake._api_update(project, location, fid, self.query.get("updateMask"), self.body))

    def _delete(self, project, location, fid):
        return self._op(self.fake._api_delete(project, location, fid))

    def _get_operation(self, project, location, op):
        return self._op(self.fake._api_get_operation(f"projects/{project}/locations/{location}/operations/{op}"))

    def _list_operations(self, project, location):
        out = self.fake._api_list_operations(project, location, self.query)
        out["operations"] = [self._op(op) for op in out["operations"]]
        return out

    def _entries_list(self):
        return self.fake.logging.list(self.body)

    def _token(self):
        form = {k: v[-1] for k, v in parse_qs(self.raw.decode(errors="replace")).items()}
        return self.fake._api_token(form)

    def _invoke(self, project, location, fid, rest=None):
        """Relay a call to the function's process, after the invoker check (see ``gcf_fake``)."""
        import http.client

        target = self.fake._invoke_target(project, location, fid, self.headers.get("Authorization"))
        host, port = target.rsplit("//", 1)[1].split(":")
        query = urlsplit(self.path).query
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("content-type", "accept", "user-agent", "x-request-id")}
            conn.request(self.command, (rest or "/") + (f"?{query}" if query else ""), body=self.raw or None,
                         headers=headers)
            resp = conn.getresponse()
            return Passthrough(resp.status, resp.read(), resp.getheader("Content-Type") or "text/plain")
        finally:
            conn.close()

    def _metadata(self, body) -> Passthrough:
        if (self.headers.get("Metadata-Flavor") or "") != "Google":
            raise ApiError(403, "Missing required header: Metadata-Flavor")
        data, ctype = (json.dumps(body).encode(), "application/json") if isinstance(body, dict) else (body.encode(), "text/plain")
        return Passthrough(200, data, ctype, {"Metadata-Flavor": "Google"})

    def _metadata_ping(self):
        return self._metadata("")

    def _metadata_project(self):
        return self._metadata("demo-proj")

    def _metadata_account(self):
        return self._metadata({"email": self.fake.METADATA_ACCOUNT, "aliases": ["default"],
                               "scopes": ["https://www.googleapis.com/auth/cloud-platform"]})

    def _metadata_token(self):
        return self._metadata({"access_token": f"ya29.mds-{os.urandom(4).hex()}", "expires_in": 3599,
                               "token_type": "Bearer"})

    def _metadata_identity(self):
        if not self.query.get("audience"):
            raise ApiError(400, "non-empty audience parameter required")
        return self._metadata(self.fake.identity_token(self.query["audience"], self.fake.METADATA_ACCOUNT))

    def _fn_get_iam(self, project, location, fid):
        return self.fake._api_get_iam_policy("functions", project, location, fid)

    def _fn_set_iam(self, project, location, fid):
        return self.fake._api_set_iam_policy("functions", project, location, fid, self.body)

    def _run_get_iam(self, project, location, sid):
        return self.fake._api_get_iam_policy("services", project, location, sid)

    def _run_set_iam(self, project, location, sid):
        return self.fake._api_set_iam_policy("services", project, location, sid, self.body)

    def _runtimes(self, project, location):
        return {"runtimes": [{"name": f"python3{v}", "displayName": f"Python 3.{v}", "stage": "GA",
                              "environment": "GEN_2"} for v in (13, 12, 11, 10)]}

    def _service_usage(self, project, api):
        return {"name": f"projects/{PROJECT_NUMBER}/services/{api}", "state": "ENABLED",
                "parent": f"projects/{PROJECT_NUMBER}"}

    def _default_sa(self, project, location):
        return {"name": f"projects/{project}/locations/{location}/defaultServiceAccount",
                "serviceAccountEmail": f"projects/{project}/serviceAccounts/"
                                       f"{PROJECT_NUMBER}@cloudbuild.gserviceaccount.com"}

    def _v1_list(self, project, location):
        return {}  # no 1st-gen functions in the fake

    def _locations(self, project):
        return {"locations": [{"name": f"projects/{project}/locations/{loc}", "locationId": loc}
                              for loc in self.fake._api_locations()]}

    # Cloud Monitoring v3: alert policies and notification channels (``monitoring_fake``)
    def _mon_create_policy(self, project):
        return self.fake.monitoring.create_policy(project, self.body)

    def _mon_list_policies(self, project):
        return self.fake.monitoring.list_policies(project, self.query)

    def _mon_get_policy(self, project, pid):
        return self.fake.monitoring.get_policy(project, pid)

    def _mon_patch_policy(self, project, pid):
        return self.fake.monitoring.patch_policy(project, pid, self.query.get("updateMask"), self.body)

    def _mon_delete_policy(self, project, pid):
        return self.fake.monitoring.delete_policy(project, pid)

    def _mon_create_channel(self, project):
        return self.fake.monitoring.create_channel(project, self.body)

    def _mon_list_channels(self, project):
        return self.fake.monitoring.list_channels(project, self.query)

    def _mon_get_channel(self, project, cid):
        return self.fake.monitoring.get_channel(project, cid)

    def _mon_delete_channel(self, project, cid):
        return self.fake.monitoring.delete_channel(project, cid, self.query.get("force", "").lower() == "true")

    def _project(self, project):
        return {"projectNumber": PROJECT_NUMBER, "projectId": project, "lifecycleState": "ACTIVE",
                "name": project}
