"""The sandbox: local stand-ins for AWS (moto_server) and Cloud Functions (a wire-level fake), for learning with no account.

:mod:`.session` starts and stops them and points weave-nb at them;
:mod:`.emulators` holds the Cloud Functions fake. Install with ``pip install -e '.[sandbox]'``.
"""

from .session import Sandbox, SandboxError, SandboxStatus, has_cloud_credentials, sandbox_active

__all__ = ["Sandbox", "SandboxError", "SandboxStatus", "has_cloud_credentials", "sandbox_active"]
