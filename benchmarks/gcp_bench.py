"""GCP provider figures against the Cloud Functions fake (fast polling).

Prints: the source zip size for the 4-agent example, first deploy wall time,
unchanged redeploy wall time, and the API calls each made.

    python benchmarks/gcp_bench.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions
from weave_nb.core.manager import DeploymentManager

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = str(ROOT / "examples" / "research_pipeline.weave.yaml")


def main() -> None:
    with FakeCloudFunctions(polls_before_done=2) as fake, tempfile.TemporaryDirectory() as home:
        os.environ.update(
            WEAVE_HOME=home, GOOGLE_OAUTH_ACCESS_TOKEN="bench-token", GCP_PROJECT_ID="bench-proj",
            WEAVE_GCP_API_ENDPOINT=fake.url,
        )
        mgr = DeploymentManager(home=home, sleep=lambda s: None)
        values = {"name": "bench-fn", "provider": "gcp", "weave_file": PIPELINE, "options": {"poll_interval": 0.05}}
        config, spec = mgr.configure(values)
        artifact = mgr.provider("gcp").build_artifact(spec, config)
        print(f"source zip (4-agent example): {artifact.size} bytes zipped, {artifact.unzipped_size} bytes unzipped")
        start = time.perf_counter()
        mgr.deploy(values)
        first = time.perf_counter() - start
        calls = sum(fake.counts.values())
        print(f"first deploy: {first:.3f} s, {calls} API calls ({dict(fake.counts)})")
        times = []
        for _ in range(5):
            before = Counter(fake.counts)
            start = time.perf_counter()
            mgr.deploy(values)
            times.append(time.perf_counter() - start)
        after = Counter(fake.counts) - before
        print(f"unchanged redeploy: median {statistics.median(times):.3f} s over 5, calls per redeploy: {dict(after)}")
        mgr.destroy("bench-fn", "gcp")


if __name__ == "__main__":
    main()
