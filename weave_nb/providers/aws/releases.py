"""The aws provider's releases: published Lambda versions behind the ``live`` alias.

Every release is a published version (its version id). Rollback and promote
move the alias (``UpdateAlias``) to a kept version with no rebuild and no
upload; a canary keeps the alias on the live version and gives the new one
its share through ``RoutingConfig.AdditionalVersionWeights``. Each is one
planned step whose undo puts the alias back as it was (version and split).
Pruning deletes old versions (never one the alias routes to) and their
local package copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.errors import ConfigError, NotFound
from ...core.plan import Plan, PlannedStep
from .settings import ALIAS

if TYPE_CHECKING:
    from ...core.executor import Run
    from ...core.releases import Release
    from ..base import DeployContext
    from .client import AwsClient


def weights_of(alias: dict[str, Any] | None) -> dict[str, float]:
    """The alias's canary split: version -> fraction (``{}`` when all of the traffic is on one version)."""
    routing = (alias or {}).get("RoutingConfig") or {}
    return {str(k): float(v) for k, v in (routing.get("AdditionalVersionWeights") or {}).items()}


def alias_step(client: "AwsClient", fname: str, live_version: str | None, publish: bool, canary: int | None) -> PlannedStep:
    """The deploy's step on an existing ``live`` alias: point it at the new version, or split the traffic (``canary``).

    Reads the alias's routing config, so the undo puts back the split that was there.
    """
    if not publish:
        return PlannedStep(key="alias", resource=f"alias {ALIAS}", action="no-change", detail=f"version {live_version}")
    before = weights_of(client.api.lam.find_alias(fname, ALIAS))
    base = {"function_name": fname, "alias": ALIAS, "previous_version": live_version, "previous_weights": before}
    if canary:
        return PlannedStep(key="alias", resource=f"alias {ALIAS}", action="update",
                           detail=f"canary: {canary}% to the new version, {100 - canary}% stays on version {live_version}",
                           call="split_alias", undo="restore_alias",
                           params={**base, "version": live_version, "canary_version": None, "weight": round(canary / 100, 4)})
    return PlannedStep(key="alias", resource=f"alias {ALIAS}", action="update", detail=f"from version {live_version}",
                       call="point_alias", undo="restore_alias", params={**base, "version": None})


class AwsReleases:
    """Mixed into :class:`~weave_nb.providers.aws.provider.AwsProvider`: rollback, promote, canary and prune."""

    name = "aws"
    supports_canary = True

    # _client_for, _fname (AwsOperations) and _run_client (the provider) come from the classes after this one

    def _alias_now(self, ctx: "DeployContext") -> tuple["AwsClient", str, dict[str, Any]]:
        client, _ = self._client_for(ctx)  # type: ignore[attr-defined]
        fname = self._fname(ctx)  # type: ignore[attr-defined]
        alias = client.api.lam.find_alias(fname, ALIAS)
        if alias is None:
            raise NotFound(f"the Lambda function {fname} has no {ALIAS} alias", f"deploy {ctx.name} again to make it")
        return client, fname, alias

    def _move(self, ctx: "DeployContext", operation: str, version: str, what: str, zip_path: str | None) -> Plan:
        client, fname, alias = self._alias_now(ctx)
        # the alias is moved only on a function this inventory made, as a deploy would check (ForeignResource otherwise)
        self._check(f"Lambda function {fname}", (client.api.lam.find_function(fname) or {}).get("Tags") or {},  # type: ignore[attr-defined]
                    ctx, False)
        if client.api.lam.find_function(fname, version) is None:
            raise ConfigError(f"version {version} of {fname} is gone", "redeploy that weave instead")
        before, weights = alias["FunctionVersion"], weights_of(alias)
        same = before == version and not weights
        split = " / ".join([f"version {before} {round((1 - sum(weights.values())) * 100)}%"]
                           + [f"version {v} {round(w * 100)}%" for v, w in weights.items()]) if weights else f"version {before}"
        step = PlannedStep(key="alias", resource=f"alias {ALIAS} of {fname}", action="no-change" if same else "update",
                           detail=f"{what}: from {split} to version {version} (100%)", call=None if same else "route_alias",
                           undo=None if same else "restore_alias",
                           params={"function_name": fname, "alias": ALIAS, "version": version, "previous_version": before,
                                   "previous_weights": weights, "zip": zip_path})
        return Plan(provider="aws", name=ctx.name, operation=operation, steps=[step],  # type: ignore[arg-type]
                    observed={"region": client.region, "function": fname, "version": before, "weights": weights})

    def plan_rollback(self, ctx: "DeployContext", target: "Release", releases: "list[Release]") -> Plan:
        """One step: the alias to ``target``'s published version, with no canary split."""
        return self._move(ctx, "rollback", target.version_id, f"release {target.number}", target.details.get("zip"))

    def plan_promote(self, ctx: "DeployContext", canary: "Release", releases: "list[Release]") -> Plan:
        """One step: the alias to the canary's version, with no split left."""
        return self._move(ctx, "promote", canary.version_id, f"promote release {canary.number}", canary.details.get("zip"))

    def traffic(self, ctx: "DeployContext") -> dict[str, float]:
        """The alias's live split: its version gets what the additional weights leave."""
        _, _, alias = self._alias_now(ctx)
        weights = weights_of(alias)
        return {alias["FunctionVersion"]: round(1 - sum(weights.values()), 4), **weights}

    def plan_prune(self, ctx: "DeployContext", releases_to_drop: "list[Release]") -> list[PlannedStep]:
        """A delete step per old published version (and its local package copy)."""
        fname = self._fname(ctx)  # type: ignore[attr-defined]
        steps = []
        for r in releases_to_drop:
            steps.append(PlannedStep(key=f"prune-{r.number}", resource=f"version {r.version_id} of {fname} (release {r.number})",
                                     action="delete", detail="beyond the releases kept", call="delete_release",
                                     params={"function_name": fname, "version": r.version_id, "zip": r.details.get("zip")}))
        return steps

    # -- apply / undo ---------------------------------------------------------------
    def apply_split_alias(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Keep the alias on the live version and send ``weight`` of the traffic to the version this run published."""
        p = step.params
        canary = str(p["canary_version"] or run.outputs["version"])
        out = self._run_client(run).api.lam.update_alias(p["function_name"], p["alias"], str(p["version"]), {canary: p["weight"]})
        return {"alias_arn": out["AliasArn"], "canary_version": canary}

    def apply_route_alias(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """All of the traffic to one kept version (rollback, promote)."""
        p = step.params
        version = str(p["version"])
        self._run_client(run).api.lam.update_alias(p["function_name"], p["alias"], version, {})
        run.ctx.add_resource("alias", p["alias"], function=p["function_name"], version=version)
        record = {"live_version": version, **({"zip": p["zip"]} if p.get("zip") and Path(p["zip"]).is_file() else {})}
        return {"version": version, "release_version": version, "record_details": record}

    def apply_delete_release(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Delete one old published version and its local package copy; forget them."""
        p = step.params
        self._run_client(run).api.lam.delete_function(p["function_name"], str(p["version"]))
        run.ctx.remove_resource("version", str(p["version"]))
        if p.get("zip"):
            Path(p["zip"]).unlink(missing_ok=True)
        return {}
