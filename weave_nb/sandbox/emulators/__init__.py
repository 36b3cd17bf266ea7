"""Local stand-ins for cloud services, for tests and sandbox notebooks.

``FakeCloudFunctions`` is a test fake of the Cloud Functions v2 REST API written
from the public reference and captured traffic; it is not Google's service.
Imported lazily so ``python -m weave_nb.sandbox.emulators.gcf_fake`` runs cleanly.
"""

__all__ = ["FakeCloudFunctions"]


def __getattr__(name: str):
    if name == "FakeCloudFunctions":
        from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions

        return FakeCloudFunctions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
