"""Source zips and functions-framework processes for the Cloud Functions v2 test fake.

Part of the *test fake* in ``gcf_fake`` (not Google's service). Standard library
only. ``requirements.txt`` is checked for presence but never installed: served
functions run in the fake's own interpreter, which must have
``functions-framework`` installed.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile

REQUIRED_FILES = ("main.py", "requirements.txt")
_PASSTHROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "TZ")


class SourceError(ValueError):
    """The uploaded bytes are not a usable function source zip."""


class StartError(RuntimeError):
    """functions-framework exited or never listened; the message ends with its stderr tail."""


def validate_source_zip(data: bytes) -> list[str]:
    """Check ``data`` is a zip with main.py and requirements.txt at its root.

    Returns:
        The member names.

    Raises:
        SourceError: not a zip, a member escapes the root, or a required file is missing.
    """
    if not data.startswith(b"PK"):
        raise SourceError("body is not a zip archive")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise SourceError(f"body is not a valid zip archive: {exc}") from None
    if bad is not None:
        raise SourceError(f"corrupt zip member {bad!r}")
    for name in names:
        norm = name.replace("\\", "/")
        if norm.startswith("/") or ".." in norm.split("/") or ":" in norm.split("/")[0]:
            raise SourceError(f"zip member {name!r} escapes the archive root")
    missing = [f for f in REQUIRED_FILES if f not in names]
    if missing:
        raise SourceError(f"zip must contain {', '.join(missing)} at its root")
    return names


def extract_source(data: bytes, dest: str) -> str:
    """Unzip validated ``data`` into ``dest``; returns the path of main.py."""
    validate_source_zip(data)
    os.makedirs(dest, exist_ok=True)
    root = os.path.realpath(dest)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member in zf.infolist():
            target = os.path.realpath(os.path.join(root, member.filename))
            if os.path.commonpath([root, target]) != root:
                raise SourceError(f"zip member {member.filename!r} escapes the archive root")
            zf.extract(member, root)
    return os.path.join(root, "main.py")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _tail(path: str, limit: int = 1500) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


class FunctionProcess:
    """A running ``functions-framework`` serving one function revision."""

    def __init__(self, proc: subprocess.Popen, port: int, workdir: str):
        self.proc = proc
        self.port = port
        self.workdir = workdir
        self.url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the process group we created (gunicorn master + workers), then SIGKILL."""
        if self.proc.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                if os.name == "posix":
                    os.killpg(self.proc.pid, sig)
                elif sig == signal.SIGTERM:
                    self.proc.terminate()
                else:
                    self.proc.kill()
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(timeout=timeout)
                return
            except subprocess.TimeoutExpired:
                continue


def start_function_process(main_py: str, entry_point: str, env: dict[str, str], *,
                           service: str = "", revision: str = "",
                           startup_timeout: float = 30.0, on_line=None) -> FunctionProcess:
    """Start functions-framework on a free loopback port and wait until it accepts connections.

    Args:
        main_py: path of the extracted main.py.
        entry_point: the function's ``buildConfig.entryPoint``.
        env: the function's ``serviceConfig.environmentVariables`` (passed via the
            environment only, never on the command line).
        service, revision: values for K_SERVICE / K_REVISION.
        startup_timeout: seconds to wait for the port.
        on_line: called as ``on_line(stream, epoch_seconds, text)`` for every line the
            process prints (``stream`` is ``stdout`` or ``stderr``) the moment it is
            read; the lines also go to ``stdout.log`` / ``stderr.log`` as without it.

    Returns:
        The running process.

    Raises:
        StartError: the process exited or did not listen in time.
    """
    workdir = os.path.dirname(main_py)
    port = free_port()
    child_env = {k: os.environ[k] for k in _PASSTHROUGH_ENV if k in os.environ}
    child_env.update(env)
    child_env.update({"PORT": str(port), "K_SERVICE": service, "K_REVISION": revision,
                      "K_CONFIGURATION": service, "FUNCTION_TARGET": entry_point,
                      "FUNCTION_SIGNATURE_TYPE": "http", "PYTHONUNBUFFERED": "1"})
    log_dir = os.path.dirname(workdir)
    out_path = os.path.join(log_dir, "stdout.log")
    err_path = os.path.join(log_dir, "stderr.log")
    cmd = [sys.executable, "-m", "functions_framework", "--target", entry_point,
           "--source", main_py, "--port", str(port), "--host", "127.0.0.1"]
    readers: list = []
    if on_line is None:
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(cmd, cwd=workdir, env=child_env, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=err, start_new_session=(os.name == "posix"))
    else:
        proc = subprocess.Popen(cmd, cwd=workdir, env=child_env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=(os.name == "posix"))
        readers = [_reader(proc.stdout, out_path, "stdout", on_line), _reader(proc.stderr, err_path, "stderr", on_line)]
    fp = FunctionProcess(proc, port, workdir)
    deadline = time.monotonic() + startup_timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            for reader in readers:  # the output to its end, so the error quotes it
                reader.join(timeout=5)
            raise StartError(f"functions-framework exited rc={rc}: {_tail(err_path)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return fp
        except OSError:
            pass
        if time.monotonic() > deadline:
            fp.stop()
            raise StartError(f"functions-framework did not listen on port {port} within "
                             f"{startup_timeout:.0f}s: {_tail(err_path)}")
        try:  # bounded poll: returns early if the process exits
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            pass


def _reader(pipe, path: str, stream: str, on_line):
    """A daemon thread copying ``pipe`` to ``path`` line by line and passing each line, with when it was read, to ``on_line``."""
    import threading

    def copy() -> None:
        with open(path, "wb") as out:
            for raw in iter(pipe.readline, b""):
                now = time.time()
                out.write(raw)
                out.flush()
                try:
                    on_line(stream, now, raw.decode("utf-8", "replace").rstrip("\r\n"))
                except Exception:  # noqa: BLE001 - a logging fault must not stop the copy
                    pass
        pipe.close()

    thread = threading.Thread(target=copy, name=f"gcf-fake-{stream}", daemon=True)
    thread.start()
    return thread
