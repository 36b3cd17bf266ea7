"""The ``aws`` provider: a weave on AWS Lambda behind a Function URL or an API Gateway HTTP API.

``provider`` holds :class:`AwsProvider` (the entry point names it); the other
modules are its options and limits (``settings``), credentials (``auth``), the
SDK client with retries (``client``), the planner and the apply/undo functions.
Importing this package loads no AWS SDK.
"""
