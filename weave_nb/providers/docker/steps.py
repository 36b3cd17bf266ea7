"""The docker provider's apply and undo functions: each does exactly what its plan step says.

One method per ``step.call`` (``apply_<call>``) and per ``step.undo``
(``undo_<undo>``); none of them looks at the engine to decide anything
again. Environment values are read from ``run.ctx.env`` here, by the names
the plan lists, so they never appear in a plan, the journal or a label.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...core.executor import Run
from ...core.plan import PlannedStep
from ...core.errors import DeploymentFailed
from ...core.procutil import free_port
from .engine import DockerEngine
from .image import CONTAINER_PORT
from .switch import HOLDER_COMMAND, SERVER_COMMAND
from .state import make_bind_folders, reach

if TYPE_CHECKING:
    from .engine import Log


class DockerSteps:
    """Mixed into :class:`~weave_nb.providers.docker.provider.DockerProvider`: the step functions."""

    def engine(self, config: Any = None) -> DockerEngine:  # pragma: no cover - provided by the provider
        raise NotImplementedError

    @staticmethod
    def _log(run: Run, step: PlannedStep) -> "Log":
        return lambda line: run.ctx.log(line, step.key)

    # images -------------------------------------------------------------------
    def apply_pull_base(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        self.engine(run.config).pull(step.params["image"], self._log(run, step))
        return {"base_pulled": step.params["image"]}

    def apply_build_image(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Build the image with the streaming API; every build line goes to the step's log as it arrives."""
        assert run.config is not None and run.artifact is not None
        opts = self.options(run.config)  # type: ignore[attr-defined]
        recipe = self.recipe(run.config, run.artifact, opts, run.ctx.owner)  # type: ignore[attr-defined]
        if recipe.ref != step.params["ref"] or dict(recipe.labels) != step.params["labels"]:
            raise DeploymentFailed(f"the image to build ({recipe.ref}) is not the planned {step.params['ref']}",
                                   "the weave or its settings changed while deploying; deploy again")
        eng = self.engine(run.config)
        image_id = eng.build(recipe.context, recipe.ref, self._log(run, step))
        run.ctx.add_resource("image", recipe.ref, image_id=image_id)
        built, base = eng.get_image(image_id), eng.get_image(step.params["base_image"])
        if built is not None and base is not None:
            extra = (built.attrs.get("Size", 0) - base.attrs.get("Size", 0)) / 1024
            run.ctx.log(f"image {recipe.ref}: {extra:.0f} KB over {step.params['base_image']}", step.key)
        return {"image": recipe.ref, "image_id": image_id}

    def undo_remove_built(self, run: Run, step: PlannedStep, result: dict[str, Any]) -> None:
        self.engine(run.config).remove_image(result["image_id"])
        run.ctx.remove_resource("image", result["image"])

    def apply_push_image(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Tag and push; the login is read from the credentials now (never from the plan)."""
        assert run.config is not None
        p = step.params
        opts = self.options(run.config)  # type: ignore[attr-defined]
        login = DockerEngine.registry_login(self.auth, opts.registry, run.config.auth)  # type: ignore[attr-defined]
        eng = self.engine(run.config)
        image_id = run.outputs.get("image_id") or run.plan.observed["image_id"]
        eng.tag(image_id, p["repository"], p["tag"])
        digest = eng.push(p["repository"], p["tag"], login, self._log(run, step))
        pushed = f"{p['repository']}:{p['tag']}@{digest}"
        run.ctx.log(f"pushed {pushed}", step.key)
        return {"pushed": pushed, "digest": digest}

    def apply_remove_images(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        eng = self.engine(run.config)
        recorded = run.ctx.resources("image")
        for image_id in step.params["ids"]:
            eng.remove_image(image_id)
            for res in recorded:
                if res.attrs.get("image_id") == image_id:
                    run.ctx.remove_resource("image", res.id)
        return {"removed_images": len(step.params["ids"])}

    # containers -----------------------------------------------------------------
    def apply_adopt_container(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Record a container this inventory did not make (``--adopt``); later steps replace or remove it."""
        run.ctx.add_resource("container", step.params["id"], container=step.params["name"], adopted=True)
        run.ctx.log(f"adopted container {step.params['name']} ({step.params['id'][:12]})", step.key)
        return {}

    def apply_remove_container(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        eng = self.engine(run.config)
        if step.params.get("stop"):
            eng.stop(step.params["id"])
        eng.remove_container(step.params["id"])
        run.ctx.remove_resource("container", step.params["id"])
        return {}

    def apply_remove_old(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Stop and remove the container the switch replaced; the new one already serves, so a failure here
        is a warning, never a reason to undo the switch (that would leave nothing serving)."""
        try:
            return self.apply_remove_container(run, step)
        except Exception as exc:  # noqa: BLE001 - any engine error: the deployment serves; the leftover is recorded
            run.ctx.warn(f"the old container {step.params['id'][:12]} could not be removed ({type(exc).__name__}); "
                         "it no longer serves, and the next deploy or `weave undeploy` removes it")
            return {"left": step.params["id"]}

    def _start(self, run: Run, step: PlannedStep, port: int | None, name: str | None = None,
               extra_env: dict[str, str] | None = None, **joined: Any) -> str:
        p = step.params
        env = {**p.get("server_env", {}), **{key: run.ctx.env[key] for key in p["env"]}, **(extra_env or {})}
        make_bind_folders(p["binds"])
        files = None
        if p.get("secrets"):  # managed secrets: files owned by the container's user, never its env (.secret_files)
            from .secret_files import secrets_archive

            files = secrets_archive({key: run.ctx.env[key] for key in p["secrets"]}, p["user"])
        return self.engine(run.config).run(
            name or p["name"], p["image"], port=port, host=p["host"], container_port=CONTAINER_PORT, env=env, labels=p["labels"],
            binds=p["binds"], memory_mb=p["memory_mb"], user=p["user"], files=files, **joined)

    def apply_trial_run(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Run the new release with no port published until Docker reports it healthy, then remove it.

        Raises:
            DeploymentFailed: it never became healthy (it is removed; the serving container was not touched).
        """
        eng = self.engine(run.config)
        cid = self._start(run, step, None)
        run.ctx.add_resource("container", cid, container=step.params["name"], trial=True)
        try:
            ok, why = eng.wait_healthy(cid, float(step.params["timeout"]), run.ctx.sleep, run.ctx.clock)
        finally:
            eng.remove_container(cid)
            run.ctx.remove_resource("container", cid)
        if not ok:
            raise DeploymentFailed(f"the new container never became healthy: {why}",
                                   "fix the cause above and deploy again; the serving container was not touched")
        run.ctx.log("the new release is healthy on trial", step.key)
        return {"trial": "healthy"}

    def apply_set_aside(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Stop the old container (freeing its port) and rename it aside."""
        eng = self.engine(run.config)
        p = step.params
        run.ctx.log(f"stopping the old container {p['id'][:12]} and setting it aside as {p['aside']}", step.key)
        eng.stop(p["id"])
        eng.rename(p["id"], p["aside"])
        return {"aside": p["id"]}

    def undo_put_back(self, run: Run, step: PlannedStep, result: dict[str, Any]) -> None:
        """Give the old container its name back and start it again if it ran; wait for its health if it served."""
        eng = self.engine(run.config)
        p = step.params
        eng.remove_container(p["name"])  # a new container of that name that no undo removed
        eng.rename(p["id"], p["name"])
        if not p["was_running"]:
            run.ctx.log(f"put the old container {p['id'][:12]} back (stopped, as it was)")
            return
        eng.start(p["id"])
        if p["was_serving"]:
            ok, why = eng.wait_healthy(p["id"], float(p["timeout"]), run.ctx.sleep, run.ctx.clock)
            if not ok:
                raise DeploymentFailed(f"the old container {p['id'][:12]} was put back but is not healthy: {why}")
        run.ctx.log(f"put the old container {p['id'][:12]} back; it serves again")

    def apply_run_container(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Create and start the container on the planned port (a free one when the plan says none is pinned)."""
        p = step.params
        port = p["port"] or free_port(reach(p["host"]))
        cid = self._start(run, step, port)
        run.ctx.add_resource("container", cid, container=p["name"], image=p["image"], port=port)
        run.ctx.log(f"container {cid[:12]} publishes {p['host']}:{port} -> {CONTAINER_PORT}", step.key)
        from .releases import release_outputs

        record = {"container": p["name"], "container_id": cid, "port": port, "host": p["host"], "image": p["image"]}
        timeout = next((s.params.get("timeout") for s in run.plan.steps if s.key == "health"), None)
        return {"container": p["name"], "container_id": cid, "port": port, "host": p["host"],
                "endpoint": f"http://{reach(p['host'])}:{port}", "record_details": record,
                "version": p["image"].rsplit(":", 1)[-1],
                **release_outputs({**p, "port": p["port"]}, timeout)}

    def undo_remove_started(self, run: Run, step: PlannedStep, result: dict[str, Any]) -> None:
        self.engine(run.config).remove_container(result["container_id"])
        run.ctx.remove_resource("container", result["container_id"])

    def apply_wait_healthy(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Wait (bounded) until Docker reports the new container healthy.

        Raises:
            DeploymentFailed: it exited or its health check failed; quotes the probe or the log.
        """
        cid = run.outputs["container_id"]
        ok, why = self.engine(run.config).wait_healthy(cid, float(step.params["timeout"]), run.ctx.sleep, run.ctx.clock)
        if not ok:
            keep = bool(getattr(self.options(run.config), "keep_on_failure", False))  # type: ignore[attr-defined]
            hint = (f"it is kept for inspection: `docker logs {step.params['name']}`" if keep else
                    "fix the cause above and deploy again")
            raise DeploymentFailed(f"the container never became healthy: {why}", hint)
        return {"healthy": True}

    # the port holder and the release containers that join it (see ``switch``) ------------------
    def apply_run_holder(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Run the port holder: a sleeping process that owns the network namespace and publishes the port."""
        p = step.params
        port = p["port"] or free_port(reach(p["host"]))
        hid = self.engine(run.config).run(
            p["name"], p["image"], port=port, host=p["host"], container_port=CONTAINER_PORT, env={}, labels=p["labels"],
            binds=[], user=p["user"], command=HOLDER_COMMAND, healthcheck={"test": ["NONE"]})
        run.ctx.add_resource("container", hid, container=p["name"], port=port, holder=True)
        run.ctx.log(f"port holder {hid[:12]} publishes {p['host']}:{port} -> {CONTAINER_PORT}", step.key)
        return {"holder_id": hid, "holder_port": port}

    def undo_remove_holder(self, run: Run, step: PlannedStep, result: dict[str, Any]) -> None:
        self.engine(run.config).remove_container(result["holder_id"])
        run.ctx.remove_resource("container", result["holder_id"])

    def apply_run_release(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Run the release in the holder's network namespace; its server shares the port (``--reuse-port``).

        It carries a fresh ``WEAVE_INSTANCE`` marker, which its server sends on ``/health``:
        the health step waits for an answer with it.
        """
        import secrets

        p = step.params
        holder = p["holder"] or run.outputs["holder_id"]
        port = p["port"] or run.outputs["holder_port"]
        instance = secrets.token_hex(8)
        cid = self._start(run, step, None, name=p["name"], extra_env={"WEAVE_INSTANCE": instance},
                          network_mode=f"container:{holder}", command=SERVER_COMMAND)
        run.ctx.add_resource("container", cid, container=p["final"], image=p["image"], port=port)
        run.ctx.log(f"container {cid[:12]} serves {p['host']}:{port} through the port holder", step.key)
        from .releases import release_outputs

        record = {"container": p["final"], "container_id": cid, "port": port, "host": p["host"], "image": p["image"]}
        timeout = next((s.params.get("timeout") for s in run.plan.steps if s.key == "health"), None)
        run_params = {k: v for k, v in p.items() if k not in ("final", "holder")}
        return {"container": p["final"], "container_id": cid, "port": port, "host": p["host"], "instance": instance,
                "endpoint": f"http://{reach(p['host'])}:{port}", "record_details": record,
                "version": p["image"].rsplit(":", 1)[-1],
                **release_outputs({**run_params, "name": p["final"], "port": port}, timeout)}

    def apply_wait_answering(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Wait (bounded) until the new container's own server answers /health (its ``X-Weave-Instance``).

        Raises:
            DeploymentFailed: it exited or never answered by itself; quotes why.
        """
        cid = run.outputs["container_id"]
        eng = self.engine(run.config)
        deadline = run.ctx.clock() + float(step.params["timeout"])
        ok, why = eng.wait_answering(cid, run.outputs["instance"], float(step.params["timeout"]), run.ctx.sleep, run.ctx.clock)
        if ok:  # and Docker's own health check agrees (what `weave status` and the next plan read)
            ok, why = eng.wait_healthy(cid, max(deadline - run.ctx.clock(), 1.0), run.ctx.sleep, run.ctx.clock)
        if not ok:
            raise DeploymentFailed(f"the container never became healthy: {why}", "fix the cause above and deploy again")
        run.ctx.log(f"{step.params['name']} answers /health by itself", step.key)
        return {"healthy": True}

    def apply_swap_names(self, run: Run, step: PlannedStep) -> dict[str, Any]:
        """Rename the serving container aside and the new one to the serving name (both keep running)."""
        p = step.params
        eng = self.engine(run.config)
        eng.rename(p["old_id"], p["aside"])
        try:
            eng.rename(run.outputs["container_id"], p["name"])
        except Exception:
            eng.rename(p["old_id"], p["name"])
            raise
        return {"swapped": True}

    def undo_swap_back(self, run: Run, step: PlannedStep, result: dict[str, Any]) -> None:
        p = step.params
        eng = self.engine(run.config)
        eng.rename(run.outputs["container_id"], p["new"])
        eng.rename(p["old_id"], p["name"])
