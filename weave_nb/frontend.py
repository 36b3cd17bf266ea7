"""The front-end core: what the CLI, the magics, the widgets and the Python API share.

- :func:`provider_options_help`: every provider's options, from its options model.
"""

from __future__ import annotations

from typing import Any, Iterable

from .errors import WeaveError

def provider_options_help(names: Iterable[str] | None = None) -> str:
    """Every provider's options, from each provider's ``options_model`` (plug-ins included).

    Imports each provider's module, so it is meant for ``--help`` only; a
    provider whose extra is not installed is listed as such.
    """
    from .options import options_help
    from .registry import load_provider_class, provider_names

    models: dict[str, Any] = {}
    for name in names or provider_names():
        try:
            models[name] = load_provider_class(name).options_model
        except WeaveError:
            models[name] = None
    return options_help(models)
