"""The Cloud Functions fake, and an environment that points weave-nb's gcp provider at it (shared by the gcp tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions

# variables that could point the provider at real Google services or at another endpoint
GCP_VARS = ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST", "K_SERVICE",
            "WEAVE_GCP_MONITORING_ENDPOINT", "WEAVE_GCP_LOGGING_ENDPOINT")


def running_fake(polls_before_done: int = 1) -> Iterator[FakeCloudFunctions]:
    """For a fixture: ``yield from running_fake()`` starts the fake on 127.0.0.1 and stops it afterwards."""
    server = FakeCloudFunctions(polls_before_done=polls_before_done).start()
    try:
        yield server
    finally:
        server.stop()


def point_at_fake(monkeypatch, fake: FakeCloudFunctions, tmp_path: Path) -> Path:
    """A private WEAVE_HOME and HOME, a fake token and project, and the API endpoint of ``fake``; returns the home."""
    for var in GCP_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("WEAVE_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.fake-token-for-tests")
    monkeypatch.setenv("GCP_PROJECT_ID", "demo-proj")
    monkeypatch.setenv("WEAVE_GCP_API_ENDPOINT", fake.url)
    return home
