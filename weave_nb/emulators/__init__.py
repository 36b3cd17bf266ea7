"""Local stand-ins for cloud services, for tests and sandbox notebooks.

``FakeCloudFunctions`` is a test fake of the Cloud Functions v2 REST API written
from the public reference and captured traffic; it is not Google's service.
"""

from weave_nb.emulators.gcf_fake import FakeCloudFunctions

__all__ = ["FakeCloudFunctions"]
