"""Example weave-nb plug-in: the ``folder`` provider and a dotenv credential provider."""

from .credentials import DotenvCredentialProvider
from .provider import FolderOptions, FolderProvider

__all__ = ["DotenvCredentialProvider", "FolderOptions", "FolderProvider"]
