"""The ``folder`` provider: publish a weave's artifact into a folder.

It shows every part of the provider interface on something small: options with
limits checked before any work, credentials found through the credential
chain (never stored), a plan that is data, resources recorded as they are
made, an undeploy plan, listing with drift, and invoke.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from weave_nb import DeploymentConfig, DeploymentInfo, DeploymentProvider, DeploymentStatus, Plan, PlannedStep
from weave_nb.core.errors import ConfigError, NotFound

TOKEN_KEY = "FOLDER_TOKEN"


class FolderOptions(BaseModel):
    """Options of the folder provider (``--option root=PATH``)."""

    model_config = ConfigDict(extra="forbid")

    root: str = Field(default="published-weaves", description="folder to publish into")
    max_kb: int = Field(default=1024, ge=1, le=10240, description="largest artifact accepted, in KB")


class FolderProvider(DeploymentProvider):
    """Publish the artifact zip and its compiled weave under ``root/NAME``."""

    name = "folder"
    options_model = FolderOptions
    description = "publish the artifact into a folder (example plug-in)"

    # -- checks, no side effects ------------------------------------------------
    def validate_config(self, config: DeploymentConfig) -> None:
        opts = self.options(config)
        root = Path(opts.root)
        if root.exists() and not root.is_dir():
            raise ConfigError(f"root {opts.root!r} is a file, not a folder", "pass --option root=A_FOLDER")

    def validate_artifact(self, artifact: Any, config: DeploymentConfig) -> None:
        limit = self.options(config).max_kb * 1024
        if artifact.size > limit:
            raise ConfigError(f"the artifact is {artifact.size} bytes, over max_kb={limit // 1024}", "raise --option max_kb")

    def check_credentials(self, config: DeploymentConfig) -> None:
        self.auth.require(self.name, [TOKEN_KEY], f"set {TOKEN_KEY} (environment, credentials file or a dotenv file)", auth=config.auth)

    # -- helpers ----------------------------------------------------------------
    def _target(self, config: DeploymentConfig) -> Path:
        return Path(self.options(config).root).resolve() / config.name

    @staticmethod
    def _published_hash(target: Path) -> str | None:
        meta = target / "published.json"
        return json.loads(meta.read_text()).get("content_hash") if meta.is_file() else None

    # -- operations ---------------------------------------------------------------
    def plan(self, config: DeploymentConfig, artifact: Any, ctx: Any) -> Plan:
        """Read what is published and return the steps; the executor runs them by calling ``apply_<call>``."""
        target = self._target(config)
        current = self._published_hash(target)
        action = "no-change" if current == artifact.content_hash else "update" if current else "create"
        return Plan(provider=self.name, name=config.name, observed={"published": current}, steps=[
            PlannedStep(key="publish", resource=f"folder {target}", action=action, detail=artifact.content_hash[:12],
                        call="publish", params={"target": str(target)}, undo=None if current else "unpublish"),
        ])

    def apply_publish(self, run: Any, step: PlannedStep) -> dict[str, Any]:
        """Write the artifact into the folder the step names."""
        target = Path(step.params["target"])
        token = self.auth.require(self.name, [TOKEN_KEY], "set FOLDER_TOKEN", auth=run.config.auth)
        target.mkdir(parents=True, exist_ok=True)
        run.ctx.add_resource("folder", str(target))
        run.artifact.write(target / "artifact.zip")
        (target / "weave.json").write_bytes(run.artifact.files["weave.json"])
        # the token proves we may publish; only its length is kept, never the value
        meta = {"content_hash": run.artifact.content_hash, "token_length": len(token.get_secret_value())}
        (target / "published.json").write_text(json.dumps(meta))
        run.ctx.log(f"wrote {run.artifact.size} bytes")
        return {"folder": str(target)}

    def undo_unpublish(self, run: Any, step: PlannedStep, result: dict[str, Any]) -> None:
        """Remove a folder this run published for the first time (on rollback)."""
        self.apply_unpublish(run, step)

    def finish(self, run: Any) -> DeploymentInfo:
        target = self._target(run.config)
        return DeploymentInfo(
            name=run.config.name, provider=self.name, status=DeploymentStatus.ACTIVE,
            endpoint=target.as_uri(), region="filesystem", details={"folder": str(target)},
        )

    def status(self, ctx: Any) -> DeploymentInfo:
        rec = ctx.record
        if rec is None:
            raise NotFound(f"no folder deployment named {ctx.name!r}", "list them with `weave deployments`")
        folder = Path(rec.details.get("folder", ""))
        if not (folder / "published.json").is_file():
            return rec.model_copy(update={"status": DeploymentStatus.FAILED, "drift": "missing", "health": "gone"})
        return rec.model_copy(update={"health": "published"})

    def plan_destroy(self, ctx: Any, **options: Any) -> Plan:
        if ctx.record is None:
            raise NotFound(f"no folder deployment named {ctx.name!r}", "list them with `weave deployments`")
        return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=[
            PlannedStep(key=f"unpublish-{i}", resource=f"folder {res.id}", action="delete", call="unpublish",
                        params={"target": res.id})
            for i, res in enumerate(ctx.resources("folder"))
        ])

    def apply_unpublish(self, run: Any, step: PlannedStep) -> None:
        """Remove a published folder and forget it."""
        shutil.rmtree(step.params["target"], ignore_errors=True)
        run.ctx.remove_resource("folder", step.params["target"])

    def list_deployments(self, records: Any = None) -> list[DeploymentInfo]:
        live = []
        for rec in records or []:
            folder = Path(rec.details.get("folder", ""))
            if (folder / "published.json").is_file():
                live.append(rec.model_copy(update={"health": "published"}))
        return live

    def invoke(self, ctx: Any, payload: dict[str, Any], local: bool = False, timeout: float = 60) -> Any:
        """Run the published weave in this process with the runtime weave-nb ships."""
        from weave_nb.runtime.engine import run_weave

        rec = ctx.record
        if rec is None:
            raise NotFound(f"no folder deployment named {ctx.name!r}", "deploy it first")
        spec = json.loads((Path(rec.details["folder"]) / "weave.json").read_text())
        return run_weave(spec, payload.get("weave"), payload.get("input", ""), environ=ctx.env)
