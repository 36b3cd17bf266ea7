"""The widgets' views: ipywidgets wired to the models in :mod:`weave_nb.frontends.widgets.models`.

Constructors never ``display()``; show a form by leaving it as a cell's last
value or with ``display(form)``. Work runs on a worker thread (``.future``
and ``.thread`` expose it), so the kernel stays free; the thread writes to
the ``Output`` only through ``append_stdout`` / ``append_stderr`` /
``append_display_data``, which land in the right cell whichever thread calls them.
"""

from __future__ import annotations

import html
import json
import threading
from concurrent.futures import Future
from typing import Any, Callable, Mapping

import ipywidgets as w

from ...core.events import on_inventory_change
from ..shared import classify, invoke_payload
from ...core.present import color, deployments_html
from ..progress import WidgetProgress
from .models import BoardModel, DeployFormModel, run_in_thread

WIDE = w.Layout(width="100%")
BOARD_COLUMNS = ["name", "provider", "status", "region", "endpoint", "created_at", "health", "drift"]


def _manager(manager: Any) -> Any:
    if manager is not None:
        return manager
    from ...core.manager import DeploymentManager

    return DeploymentManager()


def _error_text(exc: BaseException) -> str:
    return classify(exc).text() + "\n"


class _Worker:
    """One operation at a time on a worker thread; ``future``/``thread`` are the latest."""

    future: Future | None
    thread: threading.Thread | None

    def _start(self, fn: Callable[[], Any], model: Any) -> Future:
        model.busy = True

        def run() -> Any:
            try:
                return fn()
            finally:
                model.busy = False

        self.future, self.thread = run_in_thread(run, name=f"weave-{type(self).__name__}")
        return self.future

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the latest operation and return its result (re-raising its error)."""
        return self.future.result(timeout) if self.future is not None else None


class DeployForm(w.VBox, _Worker):
    """A form to plan and deploy a weave: file or text, name, provider, region, memory, timeout, env, public.

    Args:
        manager: the DeploymentManager (default: a new one).
        defaults: front-end defaults passed to the manager (e.g. ``{"region": ...}``).
        environ: where bare environment names are looked up (default ``os.environ``).
        log_lines: latest log lines the progress area keeps.
        **values: initial model values (name, provider, weave_file, weave_text, region, ...).
    """

    def __init__(
        self,
        manager: Any = None,
        defaults: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        log_lines: int = 8,
        **values: Any,
    ) -> None:
        self.manager = _manager(manager)
        self.defaults = dict(defaults or {})
        self.log_lines = log_lines
        self.future = self.thread = None
        self.progress: WidgetProgress | None = None
        self.model = DeployFormModel(providers=self.manager.provider_names(), environ=environ, **values)
        m = self.model
        self.weave_file = w.Text(description="weave file", placeholder="hello.weave.yaml", layout=WIDE)
        self.weave_text = w.Textarea(description="or weave", placeholder="version: \"1.0\" ...", layout=w.Layout(width="100%", height="8em"))
        self.name = w.Text(description="name", placeholder="demo")
        self.provider = w.Dropdown(description="provider", options=[("from the weave file", "")] + [(n, n) for n in m.providers])
        self.region = w.Text(description="region", placeholder="provider default")
        self.memory = w.Text(description="memory MB", placeholder="default")
        self.timeout = w.Text(description="timeout s", placeholder="default")
        self.env = w.Textarea(
            description="env", placeholder="NAME=value, one per line; a bare NAME takes the kernel's value",
            layout=w.Layout(width="100%", height="4em"),
        )
        self.public = w.Checkbox(description="public endpoint", indent=False)
        self.plan_button = w.Button(description="Plan", icon="list")
        self.deploy_button = w.Button(description="Deploy", button_style="primary", icon="rocket")
        self.reason = w.HTML()
        self.progress_box = w.VBox()
        self.output = w.Output()
        for widget, trait in (
            (self.weave_file, "weave_file"), (self.weave_text, "weave_text"), (self.name, "name"),
            (self.provider, "provider"), (self.region, "region"), (self.memory, "memory_mb"),
            (self.timeout, "timeout_seconds"), (self.env, "env_text"), (self.public, "public"),
        ):
            w.link((m, trait), (widget, "value"))
        w.dlink((m, "can_deploy"), (self.deploy_button, "disabled"), lambda ok: not ok)
        w.dlink((m, "can_deploy"), (self.plan_button, "disabled"), lambda ok: not ok)
        m.observe(self._show_reason, names=["reason", "state", "message", "busy"])
        self._show_reason()
        self.plan_button.on_click(lambda _: self.plan())
        self.deploy_button.on_click(lambda _: self.deploy())
        super().__init__(
            [
                self.weave_file, self.weave_text,
                w.HBox([self.name, self.provider]), w.HBox([self.region, self.memory, self.timeout]),
                self.env, self.public, w.HBox([self.plan_button, self.deploy_button, self.reason]),
                self.progress_box, self.output,
            ]
        )

    def _show_reason(self, change: Any = None) -> None:
        m = self.model
        if m.busy:
            text, tone = f"{m.state}…", "running"
        elif not m.valid:
            text, tone = m.reason, "failed"
        elif m.message:
            text, tone = m.message, "failed" if m.state == "failed" else "ok"
        else:
            text, tone = "", "plain"
        self.reason.value = f"<span style='color:{color(tone)}'>{html.escape(text)}</span>"

    def _begin(self, state: str) -> dict[str, Any] | None:
        if not self.model.can_deploy:
            return None
        values = self.model.values()
        self.model.state, self.model.message = state, ""
        self.output.outputs = ()
        return values

    def plan(self) -> Future | None:
        """Plan with the form's values on the worker thread (what the Plan button does).

        Returns:
            The future (holding the Plan), or ``None`` when the input is invalid or a run is busy.
        """
        values = self._begin("planning")
        if values is None:
            return None

        def work() -> Any:
            try:
                plan = self.manager.plan(values, defaults=self.defaults)
            except BaseException as exc:
                self._failed(exc)
                raise
            self.model.result, self.model.state = plan, "idle"
            _append_display(self.output, plan)
            return plan

        return self._start(work, self.model)

    def deploy(self) -> Future | None:
        """Deploy with the form's values on the worker thread (what the Deploy button does).

        Returns at once. Progress shows in the form as events arrive; the
        DeploymentInfo lands in ``model.result`` and the output area.

        Returns:
            The future (holding the DeploymentInfo), or ``None`` when the input is invalid or a run is busy.
        """
        values = self._begin("deploying")
        if values is None:
            return None
        view = WidgetProgress(f"deploy {values['name']}", self.log_lines, failure_below=True)  # the error shows in the output
        if self.progress is not None:
            self.progress.close_widgets()
        self.progress = view
        self.progress_box.children = [view.widget]

        def work() -> Any:
            try:
                info = self.manager.deploy(values, defaults=self.defaults, sink=view)
            except BaseException as exc:
                view.close(getattr(exc, "message", None) or type(exc).__name__)
                self._failed(exc)
                raise
            self.model.result = info
            self.model.message = info.summary()
            self.model.state = "done"
            _append_display(self.output, info)
            return info

        return self._start(work, self.model)

    def _failed(self, exc: BaseException) -> None:
        self.model.result = None
        self.model.message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        self.model.state = "failed"
        self.output.append_stderr(_error_text(exc))


class DeploymentsBoard(w.VBox, _Worker):
    """The inventory as a table, with refresh, invoke and undeploy (confirmed) for the selected row.

    Args:
        manager: the DeploymentManager (default: a new one).
        provider: only this provider (default: all).
        autoload: start a refresh on the worker thread right away.
    """

    def __init__(self, manager: Any = None, provider: str | None = None, autoload: bool = True) -> None:
        self.manager = _manager(manager)
        self.future = self.thread = None
        self.model = m = BoardModel(provider=provider or "")
        self._syncing = False
        self._stale = False  # a deploy or undeploy happened while the board was busy: reload when it is free
        self.provider = w.Dropdown(description="provider", options=[("all", "")] + [(n, n) for n in self.manager.provider_names()], value=m.provider)
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML()
        self.select = w.Dropdown(description="deployment", options=[], value=None)  # the table above shows the rows
        self.input = w.Text(description="input", placeholder="text for the weave")
        self.invoke_button = w.Button(description="Invoke", icon="play")
        self.undeploy_button = w.Button(description="Undeploy", button_style="danger", icon="trash")
        self.confirm_text = w.HTML()
        self.yes_button = w.Button(description="Yes, remove it", button_style="danger")
        self.no_button = w.Button(description="Cancel")
        self.confirm_box = w.HBox([self.confirm_text, self.yes_button, self.no_button], layout=w.Layout(display="none"))
        self.status = w.HTML()
        self.output = w.Output()
        w.link((m, "provider"), (self.provider, "value"))
        w.link((m, "invoke_input"), (self.input, "value"))
        w.dlink((m, "can_act"), (self.invoke_button, "disabled"), lambda ok: not ok)
        w.dlink((m, "can_act"), (self.undeploy_button, "disabled"), lambda ok: not ok)
        w.dlink((m, "busy"), (self.refresh_button, "disabled"))
        w.dlink((m, "busy"), (self.yes_button, "disabled"))
        m.observe(self._show_rows, names=["rows", "notes"])
        m.observe(self._show_confirm, names=["confirming"])
        m.observe(lambda c: setattr(self.status, "value", html.escape(c["new"])), names=["message"])
        self.select.observe(self._picked, names=["value"])
        m.observe(lambda _: self.refresh(), names=["provider"])
        self.refresh_button.on_click(lambda _: self.refresh())
        self.invoke_button.on_click(lambda _: self.invoke())
        self.undeploy_button.on_click(lambda _: self.undeploy())
        self.yes_button.on_click(lambda _: self.confirm(True))
        self.no_button.on_click(lambda _: self.confirm(False))
        self._show_rows()
        # deploys and undeploys made in this kernel (magics, API, forms) reload the board by themselves
        self._stop_listening = on_inventory_change(self._inventory_changed)
        m.observe(self._free_again, names=["busy"])
        super().__init__(
            [
                w.HBox([self.provider, self.refresh_button]), self.table, self.select,
                w.HBox([self.input, self.invoke_button, self.undeploy_button]), self.confirm_box,
                self.status, self.output,
            ]
        )
        if autoload:
            self.refresh()

    # display --------------------------------------------------------------------
    def _show_rows(self, change: Any = None) -> None:
        self.table.value = deployments_html(self.model.rows, BOARD_COLUMNS, self.model.notes)
        labels = self.model.labels()
        keep = self.model.selected if self.model.selected in {key for _, key in labels} else None
        self._syncing = True
        try:
            self.select.options = labels
            self.select.value = keep
        finally:
            self._syncing = False
        self.model.selected = keep or ""

    def _show_confirm(self, change: Any = None) -> None:
        key = self.model.confirming
        self.confirm_text.value = f"Remove <b>{html.escape(key)}</b> and everything it made?" if key else ""
        self.confirm_box.layout.display = "flex" if key else "none"

    def _picked(self, change: Any) -> None:
        if self._syncing:
            return
        self.model.selected = change["new"] or ""
        self.output.outputs = ()  # an answer or error about another row would be stale

    def _inventory_changed(self, provider: str, name: str) -> None:
        if self.model.provider and provider != self.model.provider:
            return
        if self.refresh() is None:  # busy: reloaded by _free_again once the running operation ends
            self._stale = True

    def _free_again(self, change: Any) -> None:
        if not change["new"] and self._stale:
            self._stale = False
            self.refresh()

    def close(self) -> None:
        """Stop listening for deploys, then close the widgets."""
        self._stop_listening()
        super().close()

    # actions --------------------------------------------------------------------
    def select_row(self, name: str, provider: str | None = None) -> None:
        """Select the row of deployment ``name`` (on ``provider``, when several share the name)."""
        for row in self.model.rows:
            if row["name"] == name and provider in (None, row["provider"]):
                self.select.value = BoardModel.key(row)
                return
        raise KeyError(f"no deployment {name!r} in the table")

    def refresh(self) -> Future | None:
        """Reload the table on the worker thread (what Refresh does)."""
        if self.model.busy:
            return None
        provider = self.model.provider or None
        self.model.message = "loading…"

        def work() -> Any:
            try:
                listing = self._load(provider)
            except BaseException as exc:
                self.output.append_stderr(_error_text(exc))
                raise
            self.model.message = f"{len(listing.deployments)} deployment(s)"
            return listing

        return self._start(work, self.model)

    def _load(self, provider: str | None) -> Any:
        """List the deployments (on the worker thread) into the model's rows and notes; returns the Listing.

        Statuses follow the one status rule, as ``weave deployments`` and ``weave status`` do.
        """
        listing = self.manager.list(provider=provider)
        self.model.notes = list(listing.notes)
        # a deployment group's region is listed under its member name, so Invoke and Undeploy act on that one region
        self.model.rows = [{**d.row(), "name": d.details.get("member") or d.name} for d in listing.deployments]
        return listing

    def invoke(self) -> Future | None:
        """Call the selected deployment with the input text (what Invoke does)."""
        picked = self.model.selection()
        if picked is None or self.model.busy:
            return None
        provider, name = picked
        payload = invoke_payload(self.model.invoke_input)
        self.output.outputs = ()  # only this call's answer is shown
        self.model.message = f"invoking {name}…"

        def work() -> Any:
            try:
                result = self.manager.invoke(name, provider, payload)
            except BaseException as exc:
                self.output.append_stderr(_error_text(exc))
                raise
            self.model.last_result = result
            self.model.message = f"{name} answered"
            self.output.append_stdout(json.dumps(result, indent=2, default=str) + "\n")
            return result

        return self._start(work, self.model)

    def undeploy(self) -> None:
        """Ask for confirmation to remove the selected deployment (what Undeploy does)."""
        if self.model.selection() is not None and not self.model.busy:
            self.model.confirming = self.model.selected

    def confirm(self, yes: bool) -> Future | None:
        """Answer the confirmation: remove the deployment on the worker thread, or cancel.

        Returns:
            The future of the removal, or ``None`` when cancelled or nothing was pending.
        """
        key, self.model.confirming = self.model.confirming, ""
        if not key or not yes or self.model.busy:
            if key:
                self.model.message = "cancelled: nothing was removed"
            return None
        provider, _, name = key.partition("/")
        self.output.outputs = ()
        self.model.message = f"removing {name} from {provider}…"  # feedback at once: an undeploy can take a while

        def work() -> Any:
            def step(event: Any) -> None:
                description = getattr(event, "description", None)
                if description:
                    self.model.message = f"removing {name} from {provider}: {description}…"

            try:
                info = self.manager.destroy(name, provider, sink=step)
            except BaseException as exc:
                self.model.message = f"could not remove {name}"
                self.output.append_stderr(_error_text(exc))
                raise
            self._stale = False  # reloaded here
            self._load(self.model.provider or None)
            self.model.message = f"removed {name} from {provider}"
            return info

        return self._start(work, self.model)


def _append_display(output: w.Output, obj: Any) -> None:
    """Append ``obj``'s rich display to ``output`` from any thread.

    In a kernel this is ``Output.append_display_data``; where no IPython shell
    exists yet (a plain script), the bundle is built here, so no shell is
    created on a worker thread.
    """
    from IPython.core.interactiveshell import InteractiveShell

    if InteractiveShell.initialized():
        output.append_display_data(obj)
        return
    text = obj.summary() if hasattr(obj, "summary") else obj.render() if hasattr(obj, "render") else repr(obj)
    data = {"text/plain": text}
    if hasattr(obj, "_repr_html_"):
        data["text/html"] = obj._repr_html_()
    output.outputs += ({"output_type": "display_data", "data": data, "metadata": {}},)

