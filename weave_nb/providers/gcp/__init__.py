"""The ``gcp`` provider: the weave as a Cloud Functions (2nd gen) HTTP function.

``provider`` holds :class:`GcpProvider` (the entry point names it); the other
modules are its credentials (``auth``), the SDK client facade (``client``), the
planner and the apply/undo functions. Importing this package loads no Google SDK.
"""
