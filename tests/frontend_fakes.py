"""A fake provider for front-end tests: records state in the real inventory, makes no processes.

``SlowProvider`` emits its events one by one and can block on a
``threading.Event`` the test controls, so a test can watch progress arrive
while a deploy is still running.
"""

from __future__ import annotations

import threading
from typing import Any

from pydantic import BaseModel, ConfigDict

from weave_nb.core.config import (
    DeploymentConfig,
    DeploymentInfo,
    DeploymentStatus,
    Plan,
    PlannedStep,
)
from weave_nb.core.errors import DeploymentFailed, NotFound
from weave_nb.providers.base import DeployContext, DeploymentProvider

HELLO = """\
version: "1.0"
agents:
  greeter: {model: mock, outputs: greeting}
weaves:
  hello: {description: say hello, agents: [greeter]}
"""


def weave_text(provider: str | None = None, region: str | None = None) -> str:
    """The hello weave, with a deployment section when given."""
    parts = {k: v for k, v in (("provider", provider), ("region", region)) if v}
    if not parts:
        return HELLO
    body = ", ".join(f"{k}: {v}" for k, v in parts.items())
    return HELLO + f"deployment: {{{body}}}\n"


class SlowOptions(BaseModel):
    """The fake's one option."""

    model_config = ConfigDict(extra="forbid")

    level: int = 0


class SlowProvider(DeploymentProvider):
    """A provider whose deploy can be held at a gate.

    Class attributes are replaced per test through :func:`make_provider`.
    """

    name = "slow"
    options_model = SlowOptions
    gate: threading.Event | None = None
    started: threading.Event | None = None
    fail_with: str | None = None
    seen: list[DeploymentConfig]

    def plan(self, config: DeploymentConfig, artifact: Any, ctx: DeployContext) -> Plan:
        action = "update" if ctx.record else "create"
        return Plan(
            provider=self.name,
            name=config.name,
            steps=[
                PlannedStep(key="build", resource="build the image", action=action, call="build"),
                PlannedStep(key="run", resource="run the service", action=action, call="run"),
            ],
        )

    def apply_build(self, run: Any, step: PlannedStep) -> None:
        ctx = run.ctx
        self.seen.append(run.config)
        ctx.log("Step 1/2 : FROM python:3.12-slim")
        if self.fail_with == "leak":
            ctx.log(f"careless build line: {sorted(ctx.env.items())}")
        if self.started is not None:
            self.started.set()
        if self.gate is not None and not self.gate.wait(30):
            raise DeploymentFailed("the test never opened the gate")
        ctx.log("Step 2/2 : COPY . /app")

    def apply_run(self, run: Any, step: PlannedStep) -> None:
        if self.fail_with == "interrupt":
            raise KeyboardInterrupt
        if self.fail_with and self.fail_with != "leak":
            raise DeploymentFailed(self.fail_with, "try turning it off and on again")
        run.ctx.add_resource("service", run.config.name)

    def finish(self, run: Any) -> DeploymentInfo:
        config = run.config
        return DeploymentInfo(
            name=config.name, provider=self.name, status=DeploymentStatus.ACTIVE,
            endpoint=f"http://127.0.0.1:9/{config.name}", region=config.region or "nowhere-1",
        )

    def status(self, ctx: DeployContext) -> DeploymentInfo:
        if ctx.record is None:
            raise NotFound(f"no {ctx.provider} deployment named {ctx.name!r}")
        return ctx.record.model_copy(update={"health": "healthy"})

    def plan_destroy(self, ctx: DeployContext, **options: Any) -> Plan:
        if ctx.record is None:
            raise NotFound(f"no {ctx.provider} deployment named {ctx.name!r}")
        return Plan(provider=self.name, name=ctx.name, operation="undeploy", steps=[
            PlannedStep(key="service", resource="remove the service", action="delete", call="remove_service")])

    def apply_remove_service(self, run: Any, step: PlannedStep) -> None:
        for res in run.ctx.resources("service"):
            run.ctx.remove_resource(res.kind, res.id)

    def list_deployments(self, records: Any = None) -> list[DeploymentInfo]:
        return [r.model_copy(update={"health": "healthy"}) for r in records or []]

    def invoke(self, ctx: DeployContext, payload: dict[str, Any], local: bool = False, timeout: float = 60) -> Any:
        return {"weave": payload.get("weave", "hello"), "input": payload.get("input"), "output": f"echo: {payload.get('input')}"}

    def logs(self, ctx: DeployContext, tail: int = 100) -> str:
        return f"log of {ctx.name}"


def make_provider(gate: threading.Event | None = None, fail_with: str | None = None) -> type[SlowProvider]:
    """A fresh SlowProvider subclass with its own gate, start signal and record of configs."""
    return type(
        "TestSlowProvider",
        (SlowProvider,),
        {"gate": gate, "started": threading.Event(), "fail_with": fail_with, "seen": []},
    )


class FileGate:
    """A gate opened by creating a file: lets a test hold a deploy running in another process (a kernel)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def wait(self, timeout: float) -> bool:
        """Wait until the file exists (polled), at most ``timeout`` seconds."""
        import os

        from weave_nb.core.procutil import wait_for

        return wait_for(lambda: os.path.exists(self.path), timeout, 0.01)


def file_gated_provider(path: str) -> type[SlowProvider]:
    """A SlowProvider held until ``path`` exists."""
    cls = make_provider()
    cls.gate = FileGate(path)  # type: ignore[assignment]
    return cls


def gated_kernel_setup(gate: str) -> str:
    """Code that loads the extension in a kernel and points its magics at a file-gated provider named ``gated``."""
    return (
        "%load_ext weave_nb\n"
        "from frontend_fakes import file_gated_provider\n"
        "from weave_nb.frontends.magics import WeaveMagics\n"
        "from weave_nb.core.manager import DeploymentManager\n"
        "magics = next(c for c in get_ipython().configurables if isinstance(c, WeaveMagics))\n"
        f"magics.manager = DeploymentManager(providers={{'gated': file_gated_provider({gate!r})}})\n"
    )
