"""A wire-level TEST FAKE of the Cloud Functions v2 REST API.

This is not Google's service and not an official emulator (none exists). It was
written from the public Cloud Functions v2 REST reference and from captured
client traffic (``google-cloud-functions`` 1.25 with ``transport="rest"`` and the
``gcloud`` CLI), so that the GCP provider, the test suite and sandbox notebooks can
talk to something that speaks the same JSON over HTTP. It keeps everything in
memory, trusts every caller of the API (no authentication), and, when asked to,
serves each deployed function with a local ``functions-framework`` process behind
an invoker check (see below).

Standard library only: it never imports the google client libraries.

Implemented: generateUploadUrl and the signed-URL PUT it returns (served here);
functions create / get / patch (updateMask) / delete / list (``locations/-``,
page tokens, ``key="value"`` filters); operations.get and operations list with
BUILD/SERVICE stages that advance per poll; an operation ends after
``polls_before_done`` polls or, like the real service, once ``operation_seconds``
have passed whether anyone polls or not; while it runs the function reads
``state: DEPLOYING`` (create, update) or ``DELETING`` and other changes answer 409;
getIamPolicy / setIamPolicy with etags on functions and on
Cloud Run v1/v2 services; int or string enums in (``$alt=json;enum-encoding=int``
gets ints back); a few fixed answers for gcloud's side calls (runtimes, service
usage, project, locations, v1 list); Cloud Logging's ``POST /v2/entries:list``
answered from what the served functions print (``gcf_fake_logging``: each line a
``cloud_run_revision`` LogEntry, JSON lines as structured logs; a subset of the
filter language), so the official ``google-cloud-logging`` client reads them.
Invoking a served function: its ``url`` is ``{fake.url}/run/PROJECT/LOCATION/ID``, a
proxy to its functions-framework process. Like Cloud Run, the proxy refuses a call
to a private function (no ``roles/run.invoker`` binding for ``allUsers`` on its
service): 403 without an ``Authorization: Bearer`` token, 401 with a token that is
not a well-formed, unexpired JWT whose ``aud`` is the function URL. **The fake
cannot verify Google's signature**: it checks the token's structure, audience and
expiry only. ``POST /token`` plays Google's OAuth token endpoint for service-account
keys (JWT-bearer grant, signature not checked): it answers an access token, or an
identity token for an assertion with ``target_audience``; ``identity_token(aud)``
makes one for tests. Pointed at by ``GCE_METADATA_HOST``/``GCE_METADATA_IP``, the
fake also answers as a metadata server (ping, project id, default account, access
token, identity token for an ``audience``), as captured in wire3.
The same server also fakes two Cloud Monitoring v3 REST resources,
``projects.alertPolicies`` and ``projects.notificationChannels`` (create, get,
list, patch, delete; see ``monitoring_fake``), for ``weave alarm`` on gcp;
Secret Manager v1 secrets and versions, and ``serviceConfig.secretEnvironmentVariables``
given to the served process as environment values: see ``gcf_fake_secrets``.
Not implemented: API authentication, quotas, event triggers, secret volumes, VPC, builds
(``requirements.txt`` is not installed), operation cancel, 1st-gen functions.

Usage::

    with FakeCloudFunctions() as fake:
        client = FunctionServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                       client_options={"api_endpoint": fake.url})

or standalone: ``python -m weave_nb.sandbox.emulators.gcf_fake --port 8089``.
"""

from __future__ import annotations

import collections
import copy
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

from weave_nb.sandbox.emulators.gcf_fake_functions import (
    EMPTY_POLICY, PROJECT_NUMBER, ApiError, apply_mask, check_function_id, clean_request_function,
    mask_paths, matches_filter, new_function, paginate, next_policy, validate_function,
)
from weave_nb.sandbox.emulators.gcf_fake_http import Handler, UploadError
from weave_nb.sandbox.emulators.gcf_fake_logging import LogStore
from weave_nb.sandbox.emulators.gcf_fake_operations import Operation, OperationsMixin
from weave_nb.sandbox.emulators.gcf_fake_tokens import InvokerMixin
from weave_nb.sandbox.emulators.gcf_fake_secrets import SecretsMixin
from weave_nb.sandbox.emulators.gcf_fake_process import SourceError, validate_source_zip
from weave_nb.sandbox.emulators.monitoring_fake import FakeMonitoring

__all__ = ["FakeCloudFunctions"]


class FakeCloudFunctions(OperationsMixin, InvokerMixin, SecretsMixin):
    """In-memory Cloud Functions v2 REST fake on a loopback HTTP server.

    Args:
        host: interface to bind (default loopback).
        port: TCP port; 0 picks a free one.
        polls_before_done: ``operations.get`` calls that answer ``done: false``
            before the next one completes the operation.
        operation_seconds: an operation also completes on its own this many
            seconds after it started, polled or not (as the real service does).
        invoker_auth: refuse calls to private functions without a valid-looking
            identity token (see the module docstring).
        serve_functions: run each deployed function with functions-framework and
            point ``serviceConfig.uri``/``url`` at it.
        workdir: where sources are unpacked; a temporary directory (removed by
            ``stop()``) when None.

    Attributes:
        url: ``"http://HOST:PORT"`` once started.
        require_update_mask: when True, PATCH without ``updateMask`` is a 400. Default
            False: the v2 reference and the captures (wire4) update every provided
            field instead.
        counts: requests per API operation (injected failures included).
        calls: every request as ``{"method", "path", "query", "body", "status"}``;
            bodies are kept as sent (they can hold environment variable values), so
            never print them.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, polls_before_done: int = 2,
                 serve_functions: bool = True, workdir: str | None = None, operation_seconds: float = 10.0,
                 invoker_auth: bool = True):
        self.host = host
        self.port = port
        self.polls_before_done = polls_before_done
        self.operation_seconds = operation_seconds
        self.invoker_auth = invoker_auth
        self._timers: list[threading.Timer] = []
        self.serve_functions = serve_functions
        self.url = ""
        self.require_update_mask = False
        self.counts: collections.Counter = collections.Counter()
        self.calls: list[dict] = []
        self._workdir_arg = workdir
        self._workdir: str | None = None
        self._lock = threading.RLock()
        self.monitoring = FakeMonitoring(self._lock)  # Cloud Monitoring v3 alert policies and channels, same server
        self._functions: dict[str, dict] = {}
        self._ops: dict[str, Operation] = {}
        self._busy: dict[str, str] = {}  # function name -> running operation name
        self._uploads: dict[tuple[str, str], bytes | None] = {}  # None: URL issued, nothing uploaded
        self._policies: dict[str, dict] = {}
        self._procs: dict[str, object] = {}
        self._revisions: dict[str, int] = {}
        self._fail_next: tuple[str, list[str]] | None = None
        self._injections: list[list] = []
        self._connections: set = set()  # open client sockets, closed by stop()
        self.logging = LogStore()  # what the served functions print, as Cloud Logging entries
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeCloudFunctions:
        """Bind ``host:port`` and serve on a daemon thread.

        Returns:
            self, with ``url`` set.

        Raises:
            OSError: the address cannot be bound.
        """
        if self._server is not None:
            return self
        handler = type("BoundHandler", (Handler,), {"fake": self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._workdir = self._workdir_arg or tempfile.mkdtemp(prefix="gcf-fake-")
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://{self.host}:{self.port}"
        self._stopped = False
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcf-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the HTTP server and every function process this fake started.

        Safe to call twice. Removes the temporary workdir (not one passed in).
        """
        self._stopped = True
        with self._lock:
            timers, self._timers = self._timers, []
        for timer in timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            connections, self._connections = list(self._connections), set()
        for conn in connections:  # end idle keep-alive handler threads
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._lock:
            procs, self._procs = list(self._procs.values()), {}
        for proc in procs:
            proc.stop()
        if self._workdir and not self._workdir_arg:
            shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    def __enter__(self) -> FakeCloudFunctions:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------- test controls
    def fail_next_build(self, message: str, state_messages: list[str] | None = None) -> None:
        """Make the next create or update operation fail.

        The operation ends ``done: true`` with ``error {"code": 3, "message": message}``;
        the function goes to state FAILED with one ERROR ``stateMessages`` entry per
        item of ``state_messages`` (default: ``[message]``). No process is started;
        after a failed update the previous revision's process keeps serving.

        Args:
            message: the operation's error message.
            state_messages: the function's state messages.
        """
        with self._lock:
            self._fail_next = (message, list(state_messages) if state_messages else [message])

    def inject_errors(self, method: str, path_regex: str, status: int, count: int = 1) -> None:
        """Fail the next ``count`` matching requests before they are handled.

        Args:
            method: HTTP method, or "*" for any.
            path_regex: ``re.search`` pattern on the URL path (no query string).
            status: HTTP status, answered as ``{"error": {"code", "message", "status"}}``
                (e.g. 429 RESOURCE_EXHAUSTED, 503 UNAVAILABLE).
            count: how many requests to fail.
        """
        with self._lock:
            self._injections.append([method.upper(), re.compile(path_regex), int(status), int(count)])

    def functions(self) -> dict:
        """Returns: a copy of the current function resources (string enums) by full name."""
        with self._lock:
            return copy.deepcopy(self._functions)

    def processes(self) -> dict:
        """Returns: ``{function name: pid}`` of the running functions-framework processes."""
        with self._lock:
            return {name: proc.pid for name, proc in self._procs.items()}

    def _take_injection(self, method: str, path: str) -> int | None:
        with self._lock:
            for inj in self._injections:
                if inj[3] > 0 and inj[0] in ("*", method) and inj[1].search(path):
                    inj[3] -= 1
                    return inj[2]
        return None

    # ------------------------------------------------------------------- uploads
    def _api_generate_upload_url(self, location: str) -> dict:
        if location == "-":
            raise ApiError(400, "A specific location is required")
        bucket = f"gcf-v2-uploads-{PROJECT_NUMBER}.{location}.cloudfunctions.appspot.com"
        obj = f"{uuid.uuid4()}.zip"
        with self._lock:
            self._uploads[(bucket, obj)] = None
        expires = int(time.time()) + 1800
        return {"uploadUrl": f"{self.url}/upload/{bucket}/{obj}?GoogleAccessId=fake&Expires={expires}"
                             "&Signature=fake",
                "storageSource": {"bucket": bucket, "object": obj}}

    def _api_upload(self, bucket: str, obj: str, headers, data: bytes) -> None:
        if headers.get("Authorization"):
            raise UploadError(400, "InvalidArgument", "Signed URL requests must not carry an Authorization header.")
        with self._lock:
            known = (bucket, obj) in self._uploads
        if not known:
            raise UploadError(403, "AccessDenied", "No upload URL was generated for this object.")
        if (headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/zip":
            raise UploadError(403, "SignatureDoesNotMatch",
                              "The request signature does not match: Content-Type must be application/zip.")
        try:
            validate_source_zip(data)
        except SourceError as exc:
            raise UploadError(400, "InvalidArgument", str(exc)) from None
        with self._lock:
            self._uploads[(bucket, obj)] = data

    def _check_uploaded(self, fn: dict) -> None:
        storage = fn["buildConfig"]["source"]["storageSource"]
        if self._uploads.get((storage.get("bucket"), storage.get("object"))) is None:
            raise ApiError(400, f"source not uploaded: {storage}")

    # ------------------------------------------------------------ function CRUD
    def _api_create(self, project: str, location: str, function_id: str | None, body) -> Operation:
        if location == "-":
            raise ApiError(400, "A specific location is required to create a function")
        fid = check_function_id(function_id)
        name = f"projects/{project}/locations/{location}/functions/{fid}"
        with self._lock:
            if name in self._functions:
                raise ApiError(409, f"Function {fid} already exists", "ALREADY_EXISTS")
            request = clean_request_function(body if body is not None else {})
            if request.get("name") not in (None, "", name):
                raise ApiError(400, f"Function name {request['name']!r} does not match {name!r}")
            request.pop("name", None)
            fn = new_function(name, request, revision=1)
            validate_function(fn)
            self._check_uploaded(fn)
            self._functions[name] = fn
            self._revisions[name] = 1
            return self._new_op(project, location, "create", name, request)

    def _existing(self, project: str, location: str, fid: str) -> dict:
        name = f"projects/{project}/locations/{location}/functions/{fid}"
        fn = self._functions.get(name)
        if fn is None:
            raise ApiError(404, f"Resource '{name}' was not found")
        return fn

    def _not_busy(self, name: str) -> None:
        if name in self._busy:
            raise ApiError(409, f"An operation on function {name} is already in progress: "
                                f"{self._busy[name]}", "ABORTED")

    def _api_update(self, project: str, location: str, fid: str, update_mask: str | None, body) -> Operation:
        with self._lock:
            fn = self._existing(project, location, fid)
            self._not_busy(fn["name"])
            patch = clean_request_function(body if body is not None else {})
            patch.pop("name", None)
            if self.require_update_mask and not update_mask:
                raise ApiError(400, "update_mask is required")
            merged = apply_mask(fn, patch, mask_paths(update_mask, patch))
            validate_function(merged)
            self._check_uploaded(merged)
            fn["state"] = "DEPLOYING"
            op = self._new_op(project, location, "update", fn["name"], patch)
            op.pending = merged
            return op

    def _api_delete(self, project: str, location: str, fid: str) -> Operation:
        with self._lock:
            fn = self._existing(project, location, fid)
            self._not_busy(fn["name"])
            fn["state"] = "DELETING"
            return self._new_op(project, location, "delete", fn["name"], None)

    def _api_get(self, project: str, location: str, fid: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._existing(project, location, fid))

    def _api_list(self, project: str, location: str, query: dict) -> dict:
        prefix = f"projects/{project}/locations/{'' if location == '-' else location + '/'}"
        with self._lock:
            items = [copy.deepcopy(fn) for name, fn in sorted(self._functions.items())
                     if name.startswith(prefix)]
        items = [fn for fn in items if matches_filter(fn, query.get("filter"))]
        page, token = paginate(items, query.get("pageSize"), query.get("pageToken"))
        return {"functions": page, **({"nextPageToken": token} if token else {})}

    # ----------------------------------------------------------------------- IAM
    def _iam_resource(self, kind: str, project: str, location: str, rid: str) -> str:
        with self._lock:
            if kind == "functions":
                return self._existing(project, location, rid)["name"]
            resource = f"projects/{project}/locations/{location}/services/{rid}"
            if any(fn["serviceConfig"].get("service") == resource for fn in self._functions.values()):
                return resource
        raise ApiError(404, f"Resource '{resource}' was not found")

    def _api_get_iam_policy(self, kind: str, project: str, location: str, rid: str) -> dict:
        resource = self._iam_resource(kind, project, location, rid)
        with self._lock:
            return copy.deepcopy(self._policies.get(resource, EMPTY_POLICY))

    def _api_set_iam_policy(self, kind: str, project: str, location: str, rid: str, body) -> dict:
        resource = self._iam_resource(kind, project, location, rid)
        with self._lock:
            new = next_policy(self._policies.get(resource, EMPTY_POLICY), body)
            self._policies[resource] = new
            return copy.deepcopy(new)

    def _api_locations(self) -> list[str]:
        with self._lock:
            used = {name.split("/")[3] for name in self._functions}
        return sorted(used | {"europe-west1", "us-central1"})


if __name__ == "__main__":
    from weave_nb.sandbox.emulators.gcf_fake_cli import main

    raise SystemExit(main())
