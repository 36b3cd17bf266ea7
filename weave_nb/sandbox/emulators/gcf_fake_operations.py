"""Long-running operations for the Cloud Functions v2 test fake.

Part of the *test fake* in ``gcf_fake`` (written from the public v2 REST reference
and captured traffic; not Google's service). Standard library only. An operation
answers ``done: false`` for ``polls_before_done`` polls, with its BUILD and SERVICE
stages advancing, and is completed by the fake on the poll after that, or by a
timer ``operation_seconds`` after it started, whichever comes first (the real
service finishes operations whether anyone polls them or not).
"""

from __future__ import annotations

import copy
import os
import random
import tempfile
import threading
import time

from weave_nb.sandbox.emulators.gcf_fake_functions import (
    EMPTY_TYPE, FUNCTION_TYPE, METADATA_ENUMS, METADATA_TYPE, ApiError, enums_to_ints, now_rfc3339, paginate,
    placeholder_urls, render_function, set_revision,
)
from weave_nb.sandbox.emulators.gcf_fake_process import SourceError, StartError, extract_source, start_function_process


class Operation:
    """A long-running operation that completes on a later ``operations.get``."""

    def __init__(self, name: str, kind: str, target: str, request_resource: dict | None):
        self.name = name
        self.kind = kind  # "create" | "update" | "delete"
        self.target = target
        self.request_resource = request_resource
        self.create_time = now_rfc3339()
        self.end_time: str | None = None
        self.polls = 0
        self.done = False
        self.error: dict | None = None
        self.response: dict | None = None  # function snapshot (or None for delete)
        self.failed_stage: str | None = None
        self.pending: dict | None = None  # the new resource an update will apply
        self.fail: tuple[str, list[str]] | None = None  # from fail_next_build
        self.lock = threading.Lock()

    @staticmethod
    def new_name(project: str, location: str) -> str:
        ms = int(time.time() * 1000)
        return f"projects/{project}/locations/{location}/operations/operation-{ms}-{random.getrandbits(48):012x}"

    def stages(self, polls_before_done: int) -> list[dict]:
        if self.done:
            if self.error and self.failed_stage == "BUILD":
                return [{"name": "BUILD", "state": "COMPLETE", "message": self.error["message"],
                         "stateMessages": [{"severity": "ERROR", "type": "BuildFailed",
                                            "message": self.error["message"]}]},
                        {"name": "SERVICE", "state": "NOT_STARTED"}]
            service = {"name": "SERVICE", "state": "COMPLETE"}
            if self.error:
                service["message"] = self.error["message"]
                service["stateMessages"] = [{"severity": "ERROR", "type": "ServiceFailed",
                                             "message": self.error["message"]}]
            return [{"name": "BUILD", "state": "COMPLETE"}, service]
        if self.polls == 0:
            states = ("NOT_STARTED", "NOT_STARTED")
        elif self.polls * 2 <= max(polls_before_done, 1):
            states = ("IN_PROGRESS", "NOT_STARTED")
        else:
            states = ("COMPLETE", "IN_PROGRESS")
        return [{"name": "BUILD", "state": states[0]}, {"name": "SERVICE", "state": states[1]}]

    def render(self, polls_before_done: int, int_enums: bool) -> dict:
        meta = {
            "@type": METADATA_TYPE,
            "createTime": self.create_time,
            "target": self.target,
            "verb": self.kind,
            "cancelRequested": False,
            "apiVersion": "v2",
            "operationType": f"{self.kind.upper()}_FUNCTION",
            "stages": self.stages(polls_before_done),
        }
        if self.request_resource is not None:
            meta["requestResource"] = dict(copy.deepcopy(self.request_resource), **{"@type": FUNCTION_TYPE})
        if self.end_time:
            meta["endTime"] = self.end_time
        if int_enums:
            enums_to_ints(meta, METADATA_ENUMS)
        out = {"name": self.name, "metadata": meta, "done": self.done}
        if self.done and self.error:
            out["error"] = copy.deepcopy(self.error)
        elif self.done:
            out["response"] = (render_function(self.response, int_enums, with_type=True)
                               if self.response is not None else {"@type": EMPTY_TYPE})
        return out


class OperationsMixin:
    """Starting, listing, polling and completing operations (part of ``FakeCloudFunctions``)."""

    # ---------------------------------------------------------------- operations
    def _new_op(self, project, location, kind, target, request) -> Operation:
        op = Operation(Operation.new_name(project, location), kind, target, request)
        if kind != "delete" and self._fail_next is not None:
            op.fail, self._fail_next = self._fail_next, None
        self._ops[op.name] = op
        self._busy[target] = op.name
        timer = threading.Timer(self.operation_seconds, self._complete_in_time, args=(op,))
        timer.daemon = True
        self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()
        return op

    def _complete_in_time(self, op: Operation) -> None:
        """The timer of ``op``: the real service finishes an operation whether anyone polls it or not."""
        with op.lock:
            if not op.done and not self._stopped:
                self._complete(op)

    def _api_list_operations(self, project: str, location: str, query: dict) -> dict:
        """Operations of a location (``location`` ``-``: all), newest first; ``filter`` ``done=false`` keeps the running ones."""
        prefix = f"projects/{project}/locations/{'' if location == '-' else location + '/'}"
        with self._lock:
            ops = [op for name, op in self._ops.items() if name.startswith(prefix)]
        expr = (query.get("filter") or "").replace(" ", "").lower()
        if expr in ("done=false", "done:false"):
            ops = [op for op in ops if not op.done]
        elif expr in ("done=true", "done:true"):
            ops = [op for op in ops if op.done]
        elif expr:
            raise ApiError(400, f"unsupported filter {query.get('filter')!r} (the fake knows done=true/false)")
        ops.sort(key=lambda op: op.create_time, reverse=True)
        page, token = paginate(ops, query.get("pageSize"), query.get("pageToken"))
        return {"operations": page, **({"nextPageToken": token} if token else {})}

    def _api_get_operation(self, name: str) -> Operation:
        with self._lock:
            op = self._ops.get(name)
        if op is None:
            raise ApiError(404, f"Operation '{name}' was not found")
        with op.lock:
            with self._lock:
                op.polls += 1
                due = not op.done and op.polls > self.polls_before_done
            if due:
                self._complete(op)
        return op

    def _complete(self, op: Operation) -> None:
        name = op.target
        if op.kind == "delete":
            with self._lock:
                fn = self._functions.pop(name, None)
                proc = self._procs.pop(name, None)
                self._policies.pop(name, None)
                if fn is not None:
                    self._policies.pop(fn["serviceConfig"].get("service", ""), None)
            if proc is not None:
                proc.stop()
            self._finish(op)
            return
        with self._lock:
            candidate = copy.deepcopy(op.pending if op.kind == "update" else self._functions[name])
        error, messages, new_proc = None, [], None
        if op.fail:
            error, messages = op.fail
        elif self.serve_functions:
            try:
                new_proc = self._start_process(candidate)
            except (StartError, SourceError) as exc:
                error = f"Build failed: {exc}"
                messages = [error]
        old_proc = None
        with self._lock:
            candidate["updateTime"] = now_rfc3339()
            if error:
                candidate["state"] = "FAILED"
                candidate["stateMessages"] = [{"severity": "ERROR", "type": "BuildFailed", "message": m}
                                              for m in messages]
                op.error = {"code": 3, "message": error}
                op.failed_stage = "BUILD"
            else:
                candidate["state"] = "ACTIVE"
                candidate.pop("stateMessages", None)
                if op.kind == "update":
                    self._revisions[name] = self._revisions.get(name, 1) + 1
                    set_revision(candidate, self._revisions[name])
                if new_proc is not None:
                    candidate["serviceConfig"]["uri"] = candidate["url"] = self._invoke_url(name)
                    old_proc = self._procs.get(name)
                    self._procs[name] = new_proc
                else:
                    candidate["serviceConfig"]["uri"], candidate["url"] = placeholder_urls(candidate)
                op.response = copy.deepcopy(candidate)
            self._functions[name] = candidate
        if old_proc is not None:
            old_proc.stop()
        if self._stopped and new_proc is not None:
            new_proc.stop()
        self._finish(op)

    def _finish(self, op: Operation) -> None:
        with self._lock:
            op.done = True
            op.end_time = now_rfc3339()
            self._busy.pop(op.target, None)

    def _secret_env_or_fail(self, svc: dict) -> dict:
        """The values of ``secretEnvironmentVariables`` (gcf_fake_secrets); a missing secret fails the deploy."""
        from weave_nb.sandbox.emulators.gcf_fake_functions import ApiError

        try:
            return self.secret_env(svc.get("secretEnvironmentVariables"))
        except ApiError as exc:
            raise StartError(f"secret environment variable: {exc.message}") from None

    def _start_process(self, fn: dict):
        storage = fn["buildConfig"]["source"]["storageSource"]
        with self._lock:
            data = self._uploads[(storage["bucket"], storage["object"])]
        _, _, _, location, _, fid = fn["name"].split("/")
        base = tempfile.mkdtemp(prefix=f"{location}-{fid}-", dir=self._workdir)
        main_py = extract_source(data, os.path.join(base, "src"))
        svc = fn["serviceConfig"]
        project = fn["name"].split("/")[1]
        revision = svc.get("revision", "")

        def on_line(stream: str, when: float, text: str) -> None:  # the function's output, as Cloud Logging entries
            self.logging.add_line(project=project, location=location, service=fid, revision=revision,
                                  stream=stream, when=when, text=text)

        return start_function_process(main_py, fn["buildConfig"]["entryPoint"],
                                      {**(svc.get("environmentVariables") or {}), **self._secret_env_or_fail(svc)},
                                      service=fid, revision=revision, on_line=on_line)

