"""What every export format renders from: the same config, weave, artifact and marks a deploy would use.

:func:`source_for` runs the preparation ``weave deploy`` runs (config, weave,
the provider's checks and ``build_artifact``) through
:meth:`~weave_nb.core.manager.DeploymentManager.package`, without
credentials or remote calls, and hands the result to a format's ``render``.

A format module (``weave_nb.export.<format>``) exposes::

    FORMAT: str                      # "sam", "compose", ...
    PROVIDERS: tuple[str, ...]       # the providers whose settings it can express, first = default
    def render(src: ExportSource) -> dict[str, bytes]   # relative path -> file content

``render`` must be deterministic (same input, same bytes: sorted keys, no
timestamps, fixed zip dates) and must never write an environment value:
:attr:`ExportSource.env_names` and :attr:`ExportSource.secret_names` are
names only; templates refer to them (parameters, ``.env`` keys, Secret
placeholders).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from ..core.artifact import Artifact
    from ..core.config import DeploymentConfig
    from ..core.manager import DeploymentManager
    from ..providers.base import DeploymentProvider


@dataclass(frozen=True)
class ExportSource:
    """One deployment as a deploy would make it, for a format to render.

    Attributes:
        name: the deployment name.
        provider: the provider whose settings are exported (``aws``, ``gcp``, ``docker``, ``local``).
        config: the validated config (``env`` values are SecretStr: never unwrap them in an export).
        provider_impl: the provider instance (its settings helpers give names, defaults and tags).
        artifact: the zip a deploy would ship (``data``, ``files``, ``content_hash``, ``spec``).
        owner: this inventory's owner id, for the ownership marks.
        env_names: names of the environment variables the deployment needs (values never exported).
        secret_names: names of managed secrets (``--secret``), referenced, never valued.
    """

    name: str
    provider: str
    config: "DeploymentConfig"
    provider_impl: "DeploymentProvider" = field(repr=False)
    artifact: "Artifact" = field(repr=False)
    owner: str
    env_names: tuple[str, ...] = ()
    secret_names: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return bool(self.config.public)

    @property
    def options(self) -> Mapping[str, Any]:
        return self.config.options


def source_for(manager: "DeploymentManager", values: Any, defaults: Mapping[str, Any] | None = None) -> ExportSource:
    """Prepare ``values`` (a DeploymentConfig or flag mapping, as for ``deploy``) for export.

    Raises:
        ConfigError, WeaveSpecError: invalid input (nothing is written).
    """
    config, provider, artifact = manager.package(values, defaults)
    secrets = tuple(sorted(getattr(config, "secrets", None) or config.options.get("secrets") or ()))
    return ExportSource(
        name=config.name,
        provider=config.provider,
        config=config,
        provider_impl=provider,
        artifact=artifact,
        owner=manager.inventory.owner_id,
        env_names=tuple(sorted(n for n in config.env if n not in secrets)),
        secret_names=secrets,
    )
