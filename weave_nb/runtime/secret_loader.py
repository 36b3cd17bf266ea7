"""Managed secrets, read once at cold start: AWS Secrets Manager by ARN, or files mounted by Docker.

Standard library only. Two sources, both named by environment variables
that hold no secret value themselves:

* ``WEAVE_SECRET_ARNS`` (AWS Lambda): a JSON object ``{"NAME": "arn:..."}``.
  Each value is fetched with one SigV4-signed ``GetSecretValue`` call over
  HTTPS (``urllib``), with the function's own credentials
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``)
  and the secret's region; ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` or
  ``AWS_ENDPOINT_URL`` send it elsewhere (an emulator).
* ``WEAVE_SECRET_FILES`` (Docker): ``NAME,NAME...``; each value is the file
  ``$WEAVE_SECRETS_DIR/NAME`` (default ``/run/secrets/NAME``), mounted
  read-only and readable only by the container's user.

Each value found is put into the environment as ``NAME`` (so the models
read it as any env value), unless ``NAME`` is set already.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import urllib.parse

__all__ = ["load_secrets", "loaded_names", "get_secret_value", "sign_v4", "SecretLoadError"]

ARNS_VAR = "WEAVE_SECRET_ARNS"
FILES_VAR = "WEAVE_SECRET_FILES"
DIR_VAR = "WEAVE_SECRETS_DIR"
DEFAULT_DIR = "/run/secrets"
LOADED_VAR = "WEAVE_SECRETS_LOADED"  # the names loaded (never values), shown by GET /health


class SecretLoadError(Exception):
    """A managed secret could not be read; the message names it, never its value."""


def loaded_names(environ=None) -> list:
    """The names of the managed secrets loaded into ``environ`` (for ``/health``)."""
    environ = os.environ if environ is None else environ
    return [n for n in (environ.get(LOADED_VAR) or "").split(",") if n]


def load_secrets(environ=None, *, timeout: float = 10.0) -> list:
    """Put every managed secret's value into ``environ`` (once: names set already are skipped).

    Args:
        environ: the environment to read and fill (``os.environ`` by default).
        timeout: seconds for each Secrets Manager call.

    Returns:
        The names loaded, in the order given.

    Raises:
        SecretLoadError: a secret could not be read (its name and the reason; never a value).
    """
    environ = os.environ if environ is None else environ
    done = loaded_names(environ)
    raw = environ.get(ARNS_VAR)
    if raw:
        try:
            arns = json.loads(raw)
        except ValueError:
            raise SecretLoadError(f"{ARNS_VAR} is not a JSON object") from None
        for name, arn in arns.items():
            if name in done:
                continue
            if not environ.get(name):
                environ[name] = get_secret_value(arn, environ, timeout=timeout)
            done.append(name)
    files = [n.strip() for n in (environ.get(FILES_VAR) or "").split(",") if n.strip()]
    folder = environ.get(DIR_VAR) or DEFAULT_DIR
    for name in files:
        if name in done:
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8") as handle:
                environ[name] = handle.read()
        except OSError as exc:
            raise SecretLoadError(f"secret {name}: cannot read {path} ({exc.strerror or type(exc).__name__})") from None
        done.append(name)
    if done:
        environ[LOADED_VAR] = ",".join(done)
    return done


def _endpoint(environ, region: str, partition: str) -> str:
    url = environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or environ.get("AWS_ENDPOINT_URL")
    if url:
        return url.rstrip("/") + "/"
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://secretsmanager.{region}.{suffix}/"


def get_secret_value(arn: str, environ=None, *, timeout: float = 10.0, now=None) -> str:
    """``GetSecretValue`` of ``arn`` with the environment's AWS credentials; the ``SecretString``.

    Raises:
        SecretLoadError: no credentials, or AWS answered an error (its code, never the value).
    """
    import urllib.error
    import urllib.request

    environ = os.environ if environ is None else environ
    parts = arn.split(":")
    region = parts[3] if len(parts) > 6 and parts[3] else (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    partition = parts[1] if len(parts) > 6 else "aws"
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    name = arn.rsplit(":", 1)[-1]
    if not key or not secret:
        raise SecretLoadError(f"secret {name}: no AWS credentials in the environment to read it with")
    url = _endpoint(environ, region, partition)
    body = json.dumps({"SecretId": arn}).encode()
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "secretsmanager.GetSecretValue"}
    headers = sign_v4("POST", url, headers, body, region, "secretsmanager", key, secret,
                      environ.get("AWS_SESSION_TOKEN"), now=now)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            data = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            code = json.loads(exc.read()).get("__type", "").rsplit("#", 1)[-1]
        except ValueError:
            code = ""
        raise SecretLoadError(f"secret {name}: Secrets Manager answered {exc.code} {code}".rstrip()) from None
    except (urllib.error.URLError, OSError) as exc:
        raise SecretLoadError(f"secret {name}: Secrets Manager could not be reached ({type(exc).__name__})") from None
    if "SecretString" not in data:
        raise SecretLoadError(f"secret {name}: it holds no text value (SecretString)")
    return data["SecretString"]


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def sign_v4(method: str, url: str, headers: dict, body: bytes, region: str, service: str, access_key: str,
            secret_key: str, token: str | None = None, now=None) -> dict:
    """``headers`` plus the AWS Signature Version 4 headers for one request.

    Args:
        method, url, headers, body: the request (``url`` may carry a query).
        region, service: the signing scope, e.g. ``us-east-1``, ``secretsmanager``.
        access_key, secret_key, token: the credentials (``token`` for temporary ones).
        now: the signing time (a UTC ``datetime``; default: now).

    Returns:
        A new dict: ``headers`` with ``Host``, ``X-Amz-Date``, ``X-Amz-Content-Sha256``,
        ``X-Amz-Security-Token`` (with a token) and ``Authorization``.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    parsed = urllib.parse.urlsplit(url)
    payload_hash = hashlib.sha256(body).hexdigest()
    out = dict(headers)
    out["Host"] = parsed.netloc
    out["X-Amz-Date"] = stamp
    out["X-Amz-Content-Sha256"] = payload_hash
    if token:
        out["X-Amz-Security-Token"] = token
    canon = {k.lower().strip(): " ".join(str(v).split()) for k, v in out.items()}
    signed = ";".join(sorted(canon))
    query = "&".join(f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
                     for k, v in sorted(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)))
    request = "\n".join([method.upper(), urllib.parse.quote(parsed.path or "/", safe="/-_.~"), query,
                         "".join(f"{k}:{canon[k]}\n" for k in sorted(canon)), signed, payload_hash])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret_key).encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return out
