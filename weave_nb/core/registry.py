"""Finding providers: built-ins and the ``weave_nb.providers`` entry point group."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

from .errors import ProviderUnavailable

ENTRY_POINT_GROUP = "weave_nb.providers"
BUILTINS = {
    "local": ("weave_nb.providers.local.provider:LocalProvider", None),
    "aws": ("weave_nb.providers.aws.provider:AwsProvider", "aws"),
    "gcp": ("weave_nb.providers.gcp.provider:GcpProvider", "gcp"),
    "docker": ("weave_nb.providers.docker.provider:DockerProvider", "docker"),
}


def provider_names() -> list[str]:
    """Names of every known provider: built-ins first, then plug-ins, without importing any."""
    names = list(BUILTINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in names:
            names.append(ep.name)
    return names


def load_provider_class(name: str) -> type:
    """Import and return the provider class registered as ``name``.

    Raises:
        ProviderUnavailable: the name is unknown, or the provider's dependency is
            not installed (the message names the pip extra to install).
    """
    # a built-in is found without scanning every installed distribution's entry points (a plug-in cannot replace one)
    target, extra = BUILTINS.get(name, (None, None))
    if target is None:
        target = next((ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name), None)
    if target is None:
        known = ", ".join(provider_names())
        raise ProviderUnavailable(f"unknown provider {name!r}", f"choose one of: {known}")
    module_name, _, attr = target.partition(":")
    try:
        module: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or "a dependency"
        if missing.split(".")[0] == "weave_nb":
            raise ProviderUnavailable(f"the {name} provider is not part of this installation of weave-nb") from None
        how = f"pip install -e '.[{extra}]' in your weave-nb checkout" if extra else f"install the package that provides {missing}"
        raise ProviderUnavailable(
            f"the {name} provider needs {missing}, which is not installed", how
        ) from None
    except ImportError as exc:
        how = f"pip install -e '.[{extra}]' in your weave-nb checkout" if extra else "reinstall or upgrade the plug-in"
        raise ProviderUnavailable(f"the {name} provider could not be imported: {exc}", how) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ProviderUnavailable(
            f"the {name} provider's entry point names {target}, which does not exist", "reinstall or upgrade the plug-in"
        ) from None
