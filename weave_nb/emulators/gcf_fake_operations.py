"""Long-running operations for the Cloud Functions v2 test fake.

Part of the *test fake* in ``gcf_fake`` (written from the public v2 REST reference
and captured traffic; not Google's service). Standard library only. An operation
answers ``done: false`` for ``polls_before_done`` polls, with its BUILD and SERVICE
stages advancing, and is completed by the fake on the poll after that.
"""

from __future__ import annotations

import copy
import random
import threading
import time

from weave_nb.emulators.gcf_fake_functions import (
    EMPTY_TYPE, FUNCTION_TYPE, METADATA_ENUMS, METADATA_TYPE, enums_to_ints, now_rfc3339, render_function,
)


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
