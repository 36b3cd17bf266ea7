"""Command line for the Cloud Functions v2 test fake (not Google's service).

``python -m weave_nb.sandbox.emulators.gcf_fake [--port N]`` prints ``listening on URL`` and
serves until SIGINT/SIGTERM, then stops every function process it started.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading

from weave_nb.sandbox.emulators.gcf_fake import FakeCloudFunctions


def main(argv: list[str] | None = None) -> int:
    """Run the fake until SIGINT/SIGTERM; prints ``listening on URL``."""
    parser = argparse.ArgumentParser(prog="python -m weave_nb.sandbox.emulators.gcf_fake",
                                     description="Cloud Functions v2 REST test fake (not Google's service)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--polls-before-done", type=int, default=2)
    parser.add_argument("--no-serve-functions", action="store_true")
    parser.add_argument("--operation-seconds", type=float, default=10.0,
                        help="an operation ends on its own after this long, polled or not")
    parser.add_argument("--no-invoker-auth", action="store_true",
                        help="serve private functions without asking for an identity token")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    if args.workdir:  # the fake unpacks each function below it: it must exist before the first deploy
        os.makedirs(args.workdir, exist_ok=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    fake = FakeCloudFunctions(host=args.host, port=args.port, polls_before_done=args.polls_before_done,
                              serve_functions=not args.no_serve_functions, workdir=args.workdir,
                              operation_seconds=args.operation_seconds,
                              invoker_auth=not args.no_invoker_auth).start()
    print(f"listening on {fake.url}", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
