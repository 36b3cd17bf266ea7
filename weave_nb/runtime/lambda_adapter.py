"""AWS Lambda entry point: ``weave_runtime.lambda_adapter.handler``.

Speaks the API Gateway v2 HTTP API / Lambda Function URL payload format 2.0
(``requestContext.http.method``, ``rawPath``, ``body``, ``isBase64Encoded``);
REST API (1.0) events with ``httpMethod``/``path`` are accepted too.
Standard library only, and deliberately light to import (no http.server).
"""

from __future__ import annotations

from . import app

__all__ = ["handler"]


def handler(event: dict, context=None) -> dict:
    """Answer one Lambda invocation.

    Args:
        event: the HTTP event (payload format 2.0, or 1.0).
        context: the Lambda context (its ``aws_request_id`` names the request record).

    Returns:
        ``{"statusCode", "headers", "body", "isBase64Encoded": False}`` with
        a JSON body.
    """
    event = event or {}
    http = (event.get("requestContext") or {}).get("http") or {}
    method = http.get("method") or event.get("httpMethod") or "GET"
    path = event.get("rawPath") or http.get("path") or event.get("path") or "/"
    headers = event.get("headers") or {}
    raw = event.get("body") or ""
    if event.get("isBase64Encoded") and raw:
        import base64
        import binascii

        try:
            body = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            import time

            from . import records

            status, out_headers, out = app._error(400, "Request body is not valid base64.")
            rec = records.build(started=time.time(), duration_ms=0.0, rid=records.request_id(headers, getattr(
                context, "aws_request_id", None)), weave=None, status=400, error="RequestError")
            records.emit(rec, "lambda")
            return {"statusCode": status, "headers": out_headers, "body": out.decode("utf-8"),
                    "isBase64Encoded": False}
    else:
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    status, out_headers, out = app.handle(method, path, body, headers, platform="lambda",
                                          request_id=getattr(context, "aws_request_id", None))
    return {"statusCode": status, "headers": out_headers, "body": out.decode("utf-8"), "isBase64Encoded": False}
