"""A small HTTP server for the local provider and Docker images.

``python -m weave_runtime.server --host 127.0.0.1 --port 8080`` serves
:func:`app.handle` with ``http.server.ThreadingHTTPServer``. Port 0 picks a
free port; once bound the server prints exactly one line
``listening on http://HOST:PORT`` (flushed) to stdout so a parent process
can read it. SIGTERM and SIGINT shut it down cleanly (exit status 0).
Access logs are one short line per request on stderr, and so is each
request's JSON record (see ``records``); with ``WEAVE_LOG_TIMESTAMPS=1``
every line starts with its UTC time. Standard library only.

Browser safety (a web page the user visits must not be able to run the
weave on the user's API keys, nor read its answers through DNS rebinding):

* ``POST`` needs ``Content-Type: application/json`` (415 otherwise): a
  browser cannot send that cross-site without a CORS preflight, which this
  server refuses.
* Requests carrying an ``Origin`` header are refused (403) unless the origin
  is listed in ``WEAVE_ALLOWED_ORIGINS`` (comma-separated, e.g.
  ``http://localhost:3000``; ``*`` allows any); a listed origin gets CORS
  headers and its preflight answered.
* The ``Host`` header must name the server (421 otherwise): when bound to a
  loopback address, only ``127.0.0.1:PORT``, ``localhost:PORT``,
  ``[::1]:PORT`` and the bound address itself are accepted. ``WEAVE_ALLOWED_HOSTS``
  (comma-separated; ``name`` matches any port, ``name:port`` one port, ``*``
  anything) replaces that rule; the Docker provider sets it to the loopback
  names because the container binds 0.0.0.0 behind a published 127.0.0.1
  port. Bound to a non-loopback address with no list, any Host is accepted:
  the user chose to expose the server.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import app
from .records import iso_time, write_line

__all__ = ["main", "make_server"]

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _is_loopback(address: str) -> bool:
    address = address.lower()
    return address.startswith(("127.", "::ffff:127.")) or address in ("::1", "localhost")


def _split_list(value: str | None) -> list[str]:
    return [item.strip().lower() for item in (value or "").split(",") if item.strip()]


def _host_key(host: str) -> str:
    """``host`` as it appears in a Host header (IPv6 in brackets), lower case."""
    host = host.lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _split_host(header: str) -> tuple[str, str]:
    """``(name, port)`` of a Host header value; port is ``""`` when absent."""
    header = header.strip().lower()
    if header.startswith("["):
        name, _, rest = header.partition("]")
        return name + "]", rest[1:] if rest.startswith(":") else ""
    name, _, port = header.partition(":")
    return name.rstrip("."), port


class _Handler(BaseHTTPRequestHandler):
    server_version = "weave-runtime/1"
    protocol_version = "HTTP/1.1"
    spec_path: str | None = None
    allowed_hosts: tuple[str, ...] | None = None  # None: any Host
    allowed_origins: tuple[str, ...] = ()

    def _refusal(self) -> tuple[int, dict, bytes] | None:
        """The answer to a request a browser page may have forged, or ``None`` to serve it."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            return app._error(400, "More than one Host header.")
        if hosts and self.allowed_hosts is not None:
            name, port = _split_host(hosts[0])
            if "*" not in self.allowed_hosts and name not in self.allowed_hosts \
                    and f"{name}:{port}" not in self.allowed_hosts:
                return app._error(421, f"This server does not answer for the host {hosts[0][:100]!r}; "
                                       "call it as 127.0.0.1 or localhost with its port, "
                                       "or list the name in WEAVE_ALLOWED_HOSTS.")
        origin = self.headers.get("Origin")
        if origin is not None and "*" not in self.allowed_origins \
                and origin.strip().lower().rstrip("/") not in self.allowed_origins:
            return app._error(403, "Requests from web pages are refused (the request has an Origin header); "
                                   "list the page's origin in WEAVE_ALLOWED_ORIGINS to allow it.")
        if self.command == "OPTIONS" and origin is not None:
            return 204, self._cors(origin), b""
        if self.command == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                return app._error(415, "Send the request body as JSON with the header "
                                       "'Content-Type: application/json'.")
        return None

    def _cors(self, origin: str) -> dict:
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "600"}

    def _serve(self) -> None:
        refusal = self._refusal()
        if refusal is not None:
            self.close_connection = refusal[0] >= 400  # the body, if any, is left unread
            if refusal[0] >= 400:  # recorded before the answer, as app.handle does
                _record_refusal(refusal[0], dict(self.headers))
            self._send(*refusal)
            return
        length = self.headers.get("Content-Length")
        try:
            size = int(length) if length else 0
        except ValueError:
            size = -1
        if size < 0:
            status, headers, body = app._error(400, "Invalid Content-Length.")
            _record_refusal(400, dict(self.headers))
        elif size > app.MAX_BODY_BYTES:
            status, headers, body = app._error(413, f"Request body is larger than {app.MAX_BODY_BYTES} bytes.")
            self.close_connection = True
            _record_refusal(413, dict(self.headers))
        else:
            raw = self.rfile.read(size) if size else b""
            status, headers, body = app.handle(self.command, self.path, raw, dict(self.headers),
                                               spec_path=self.spec_path)
        origin = self.headers.get("Origin")
        if origin is not None:  # only an allowed origin gets here
            headers = {**headers, "Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        if self.path == "/health":  # tells a deployer which process answered (two share a port during a switch-over)
            self.send_header("X-Weave-Pid", str(os.getpid()))
            if os.environ.get("WEAVE_INSTANCE"):  # names the container (pids repeat across containers' namespaces)
                self.send_header("X-Weave-Instance", os.environ["WEAVE_INSTANCE"])
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve  # noqa: N815

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        write_line(f"{self.address_string()} {format % args}")


def _record_refusal(status: int, headers: dict) -> None:
    """The request record of a request refused before the weave saw it (Host, Origin, Content-Type, size)."""
    from . import records

    record = records.build(started=time.time(), duration_ms=0.0, rid=records.request_id(headers), weave=None,
                           status=status, error="RequestError")
    try:
        records.emit(record)
    except (OSError, ValueError):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    reuse_port = False
    # the listen backlog: socketserver's default of 5 drops connections beyond it under load (`weave bench -c 8`),
    # and each dropped SYN is retried by the client only after a second
    request_queue_size = 128

    def server_bind(self) -> None:
        if self.reuse_port and hasattr(socket, "SO_REUSEPORT"):
            # a new release listens on the port before the old one stops
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(host: str = "127.0.0.1", port: int = 8080, spec_path: str | None = None,
                environ=None, reuse_port: bool = False) -> ThreadingHTTPServer:
    """Bind a server (not yet serving).

    Args:
        host: interface to bind (an IPv6 address such as ``::1`` binds IPv6).
        port: TCP port; 0 picks a free one (read ``server.server_address``).
        spec_path: ``weave.json`` to serve; default as :func:`engine.default_spec_path`.
        environ: where ``WEAVE_ALLOWED_HOSTS`` and ``WEAVE_ALLOWED_ORIGINS``
            are read (see the module docstring); ``os.environ`` by default.
        reuse_port: share the port with another server bound the same way (SO_REUSEPORT),
            for switching releases without a moment where nothing listens.

    Returns:
        The bound ``ThreadingHTTPServer``; call ``serve_forever()``.

    Raises:
        OSError: if the address cannot be bound.
    """
    environ = os.environ if environ is None else environ
    cls = _Server6 if ":" in host else _Server
    server = type(cls.__name__, (cls,), {"reuse_port": reuse_port})((host, port), _Handler)
    bound, bound_port = server.server_address[:2]
    hosts: tuple[str, ...] | None = tuple(_split_list(environ.get("WEAVE_ALLOWED_HOSTS")))
    if not hosts:
        hosts = None
        if _is_loopback(bound) or _is_loopback(host):
            hosts = tuple(f"{name}:{bound_port}" for name in {*_LOOPBACK_NAMES, _host_key(bound), _host_key(host)})
    origins = tuple(o.rstrip("/") for o in _split_list(environ.get("WEAVE_ALLOWED_ORIGINS")))
    server.RequestHandlerClass = type("WeaveHandler", (_Handler,), {
        "spec_path": spec_path, "allowed_hosts": hosts, "allowed_origins": origins})
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
        server = make_server(args.host, args.port, args.spec, reuse_port=args.reuse_port)
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
    stamp = f"{iso_time(time.time())} " if os.environ.get("WEAVE_LOG_TIMESTAMPS", "").strip() in ("1", "true", "yes") else ""
    print(f"{stamp}listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        drain(server)
        server.server_close()
    return 0


def drain(server: ThreadingHTTPServer, wait: float = 3.0) -> int:
    """Answer what is already queued on the listening socket, then let running requests end (at most ``wait`` s).

    With SO_REUSEPORT the kernel may have queued a connection on this
    server's socket just before it stopped serving; closing the socket would
    reset it. Accepting until the queue is empty leaves only a window of
    microseconds, so a switch-over between two releases drops no request.

    Returns:
        How many queued connections were answered.
    """
    import time as _time

    answered = 0
    sock = server.socket
    try:
        sock.setblocking(False)
    except OSError:
        return 0
    while True:
        try:
            request, address = sock.accept()
        except (BlockingIOError, InterruptedError, OSError):
            break
        request.setblocking(True)
        try:
            server.finish_request(request, address)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the drain
            pass
        finally:
            server.shutdown_request(request)
        answered += 1
    deadline = _time.monotonic() + wait
    for thread in [t for t in threading.enumerate() if t is not threading.current_thread() and t.daemon]:
        thread.join(max(0.0, deadline - _time.monotonic()))
    return answered


if __name__ == "__main__":
    sys.exit(main())
