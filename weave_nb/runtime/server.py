"""A small HTTP server for the local provider and Docker images.

``python -m weave_runtime.server --host 127.0.0.1 --port 8080`` serves
:func:`app.handle` with ``http.server.ThreadingHTTPServer``. Port 0 picks a
free port; once bound the server prints exactly one line
``listening on http://HOST:PORT`` (flushed) to stdout so a parent process
can read it. SIGTERM and SIGINT shut it down cleanly (exit status 0).
Access logs are one short line per request on stderr. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import app

__all__ = ["main", "make_server"]


class _Handler(BaseHTTPRequestHandler):
    server_version = "weave-runtime/1"
    protocol_version = "HTTP/1.1"
    spec_path: str | None = None

    def _serve(self) -> None:
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0:
            status, headers, body = app._error(400, "Invalid Content-Length.")
        elif size > app.MAX_BODY_BYTES:
            status, headers, body = app._error(413, f"Request body is larger than {app.MAX_BODY_BYTES} bytes.")
            self.close_connection = True
        else:
            raw = self.rfile.read(size) if size else b""
            status, headers, body = app.handle(self.command, self.path, raw, dict(self.headers),
                                               spec_path=self.spec_path)
        self.send_response(status)
        if self.path == "/health":  # tells a deployer which process answered (two share a port during a switch-over)
            self.send_header("X-Weave-Pid", str(os.getpid()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class _ReusePortServer(ThreadingHTTPServer):
    """Binds with SO_REUSEPORT, so a new release can listen on the port before the old one stops."""

    def server_bind(self) -> None:
        if hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def make_server(host: str = "127.0.0.1", port: int = 8080, spec_path: str | None = None,
                reuse_port: bool = False) -> ThreadingHTTPServer:
    """Bind a server (not yet serving).

    Args:
        host: interface to bind.
        port: TCP port; 0 picks a free one (read ``server.server_address``).
        spec_path: ``weave.json`` to serve; default as :func:`engine.default_spec_path`.
        reuse_port: share the port with another server bound the same way (SO_REUSEPORT),
            for switching releases without a moment where nothing listens.

    Returns:
        The bound ``ThreadingHTTPServer``; call ``serve_forever()``.

    Raises:
        OSError: if the address cannot be bound.
    """
    handler = type("WeaveHandler", (_Handler,), {"spec_path": spec_path})
    server = (_ReusePortServer if reuse_port else ThreadingHTTPServer)((host, port), handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    """Command line entry: parse options, serve until SIGTERM/SIGINT.

    Args:
        argv: arguments without the program name; ``sys.argv[1:]`` by default.

    Returns:
        Process exit status (0 after a clean shutdown, 2 if the port cannot be bound).
    """
    parser = argparse.ArgumentParser(prog="python -m weave_runtime.server",
                                     description="Serve a compiled weave over HTTP.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0 in containers)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8080),
                        help="TCP port; 0 picks a free one (default: $PORT or 8080)")
    parser.add_argument("--spec", default=None, help="path of weave.json (default: next to the package)")
    parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT (for switch-overs)")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.host, args.port, args.spec, args.reuse_port)
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 2
    host, port = server.server_address[:2]
    if ":" in host:
        host = f"[{host}]"

    def stop(signum, frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
