"""The ``docker`` provider's entry point: the provider lives in the :mod:`weave_nb.providers.docker` package."""

from .docker.provider import DockerOptions, DockerProvider

__all__ = ["DockerOptions", "DockerProvider"]
