"""`weave bench` against a local deployment of examples/hello.weave.yaml (mock model): throughput and latency.

Prints, for each concurrency, what `weave bench` reports (nearest-rank percentiles), in a temporary
WEAVE_HOME, and removes the deployment. Run from the repository root:

    python benchmarks/load_bench.py                # 200 requests at 1, 4, 8 and 16 at once
    python benchmarks/load_bench.py 500 1 8 32     # REQUESTS then concurrencies
"""

from __future__ import annotations

import os
import sys
import tempfile


def main(argv: list[str]) -> None:
    requests = int(argv[0]) if argv else 200
    levels = [int(a) for a in argv[1:]] or [1, 4, 8, 16]
    with tempfile.TemporaryDirectory(prefix="weave-load-") as home:
        os.environ["WEAVE_HOME"] = home
        import weave_nb

        weave_nb.deploy("load", "local", weave_file="examples/hello.weave.yaml", sink=lambda e: None)
        try:
            print(f"{'c':>3} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} errors")
            for c in levels:
                report = weave_nb.bench("load", requests=requests, concurrency=c, input="hello")
                p = report.percentiles()
                print(f"{c:>3} {report.throughput:>8.1f} {p['p50']:>8.1f} {p['p95']:>8.1f} {p['p99']:>8.1f} "
                      f"{max(report.latencies()):>8.1f} {report.errors}")
        finally:
            weave_nb.undeploy("load", "local", sink=lambda e: None)


if __name__ == "__main__":
    main(sys.argv[1:])
