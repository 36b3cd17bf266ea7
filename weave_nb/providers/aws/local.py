"""Run a deployment's exact Lambda zip on this machine, the way Lambda would.

The zip is extracted into a temporary task root, and a fresh interpreter
(``python -I -S``: no PYTHONPATH, no site-packages, so only the standard
library and the zip's own files can be imported, as on Lambda) imports the
handler named in the deployment and calls it with an API Gateway v2 event. The handler's answer
is what Lambda returns; its JSON body is what an HTTP caller sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...core.errors import WeaveError
from .endpoint import api_gateway_event

PASS_THROUGH_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR", "TMPDIR")

_RUNNER = r"""
import importlib, json, sys
root, handler = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
module, _, func = handler.rpartition(".")
fn = getattr(importlib.import_module(module), func)
event = json.loads(sys.stdin.read())
class Context:
    function_name = "local"; function_version = "$LATEST"; memory_limit_in_mb = 128
    aws_request_id = "local"; invoked_function_arn = "arn:aws:lambda:local:000000000000:function:local"
    def get_remaining_time_in_millis(self): return 60000
result = fn(event, Context())
sys.stdout.write("\n__WEAVE_RESULT__" + json.dumps(result))
"""


def run_handler(
    zip_path: str | os.PathLike[str],
    handler: str,
    event: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    python: str | None = None,
) -> dict[str, Any]:
    """Extract ``zip_path``, call ``handler(event, context)`` in a subprocess and return its answer.

    Args:
        zip_path: the Lambda deployment package.
        handler: ``module.function`` as configured on the function.
        event: the event to pass.
        env: extra environment for the handler (the weave's variables).
        timeout: seconds before the run is stopped.
        python: interpreter (default: the current one).

    Returns:
        The handler's return value (``statusCode``, ``headers``, ``body``...).

    Raises:
        WeaveError: the zip is missing or the handler raised or timed out.
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise WeaveError(f"the package {zip_path} is not there", "deploy again to rebuild it")
    with tempfile.TemporaryDirectory(prefix="weave-lambda-") as root:
        with zipfile.ZipFile(zip_path) as zf:
            zf.extractall(root)
        run_env = {k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ}
        run_env.update(env or {})
        run_env.update({"LAMBDA_TASK_ROOT": root, "AWS_LAMBDA_FUNCTION_NAME": "local", "PYTHONDONTWRITEBYTECODE": "1"})
        run_env.pop("WEAVE_SPEC_PATH", None)
        try:
            proc = subprocess.run(
                [python or sys.executable, "-I", "-S", "-c", _RUNNER, root, handler],
                input=json.dumps(dict(event)), capture_output=True, text=True, cwd=root, env=run_env, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            from ...core.http_call import no_answer

            raise no_answer(timeout, "the handler run on this machine") from None
    marker = "__WEAVE_RESULT__"
    if proc.returncode != 0 or marker not in proc.stdout:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise WeaveError(f"the handler failed locally:\n{tail}", "fix the weave, then deploy again")
    return json.loads(proc.stdout.rsplit(marker, 1)[1])


def invoke_zip(zip_path: str | os.PathLike[str], handler: str, payload: Mapping[str, Any], env: Mapping[str, str] | None = None, timeout: float = 60) -> Any:
    """Run the handler with an API Gateway v2 event for ``payload`` and decode the body like an HTTP caller.

    Returns:
        The decoded JSON body of a 2xx answer.

    Raises:
        WeaveError: the handler failed, or answered an error status (its message included).
    """
    answer = run_handler(zip_path, handler, api_gateway_event(dict(payload)), env=env, timeout=timeout)
    return decode_answer(answer)


def decode_answer(answer: Mapping[str, Any]) -> Any:
    """Turn a Lambda HTTP answer (``statusCode``, ``body``) into its decoded JSON body.

    Raises:
        WeaveError: the status is not 2xx.
    """
    status = int(answer.get("statusCode") or 200)
    body = answer.get("body") or "null"
    if answer.get("isBase64Encoded"):
        import base64

        body = base64.b64decode(body).decode()
    try:
        data = json.loads(body)
    except ValueError:
        data = body
    if not 200 <= status < 300:
        detail = data.get("error", data) if isinstance(data, dict) else data
        from ...core.errors import EndpointError
        from ...core.http_call import answer_hint

        raise EndpointError(f"the weave answered {status}: {str(detail)[:500]}", answer_hint(status, str(detail)), status=status)
    return data
