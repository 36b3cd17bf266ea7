"""A real browser check of the widgets: JupyterLab in Debian's Chromium, driven through notebook 05.

Widgets that pass in Python can still fail to render in JupyterLab (mismatched
ipywidgets / jupyterlab_widgets versions are the classic); only a browser
shows that. The test serves JupyterLab on 127.0.0.1 (no token, a temporary
root, config and settings), runs every cell of ``05_widgets.ipynb``, checks the
form rendered, fills in a new name, clicks **Deploy**, waits for the endpoint
to appear, and saves a screenshot to ``$WEAVE_SCREENSHOT_DIR`` (default: the
test's temporary folder).

Skips only when Chromium is missing and ``CI`` is not set; under ``CI=true`` a
missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nbhelpers import NOTEBOOKS, REPO_ROOT, alive, child_env, children_of

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LAB_SETTINGS = {
    # render every cell (no virtual scrolling), so the form is in the DOM wherever it is
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no news or update checks (no network, no pop-ups)
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def _in_ci(environ) -> bool:
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_browser(path: str, environ) -> str:
    """Return ``path``; skip when it is missing outside CI, fail when it is missing in CI (``CI=true``)."""
    if not os.path.exists(path):
        if _in_ci(environ):
            pytest.fail(f"{path} is missing; install Debian's chromium package (apt-get install -y chromium)")
        pytest.skip(f"{path} is missing (apt-get install -y chromium); CI=true makes this a failure")
    return path


@pytest.fixture
def chromium_path():
    path = require_browser(CHROMIUM, os.environ)
    import playwright.sync_api  # noqa: F401 - a missing driver is a failure, never a skip

    return path


def test_a_missing_browser_skips_locally_and_fails_in_ci(tmp_path):
    missing = str(tmp_path / "no-chromium")
    with pytest.raises(pytest.skip.Exception):
        require_browser(missing, {})
    with pytest.raises(pytest.fail.Exception):
        require_browser(missing, {"CI": "true"})
    assert require_browser(sys.executable, {"CI": "true"}) == sys.executable


@pytest.fixture
def lab(tmp_path):
    """A token-less JupyterLab on 127.0.0.1 serving a temporary root that holds notebook 05."""
    from weave_nb.core.procutil import free_port, http_ok, stop_process, wait_for

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "05_widgets.ipynb", root / "05_widgets.ipynb")
    settings = tmp_path / "lab-settings"
    for rel, values in LAB_SETTINGS.items():
        target = settings / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    home = tmp_path / "weave-home"
    env = child_env(
        WEAVE_HOME=str(home),
        JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"),
        HOME=str(tmp_path / "home"),
    )
    Path(env["HOME"]).mkdir()
    port = free_port()
    log = open(tmp_path / "lab.log", "wb")
    cmd = [
        sys.executable, "-m", "jupyterlab", "--ServerApp.open_browser=False", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabApp.extension_manager=readonly",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        ok = wait_for(lambda: proc.poll() is not None or http_ok(f"{url}/api/status", 1.0), 90, 0.2)
        if proc.poll() is not None or not ok:
            pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        yield {"url": url, "home": home, "log": tmp_path / "lab.log", "pid": proc.pid}
    finally:
        tree = [proc.pid, *children_of(proc.pid)]
        stop_process(proc.pid, grace=10)  # the server shuts its kernels down on SIGTERM
        proc.wait(timeout=15)
        log.close()
        _undeploy_all(home)
        wait_for(lambda: not [p for p in tree if alive(p)], 15)
        for pid in tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _undeploy_all(home: Path) -> list[str]:
    if not (home / "inventory.db").exists():
        return []
    from weave_nb.core.manager import DeploymentManager

    mgr = DeploymentManager(home=home)
    names = []
    for info in mgr.inventory.list():
        mgr.destroy(info.name, info.provider)
        names.append(info.name)
    return names


def _accept_kernel_dialog(page) -> None:
    """Click "Select" if JupyterLab asks which kernel to start (it may, on a fresh profile)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    try:
        dialog.wait_for(state="visible", timeout=10_000)
    except PlaywrightTimeout:
        return
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=30_000)


def screenshot_dir(tmp_path: Path) -> Path:
    """Where the screenshot goes: ``$WEAVE_SCREENSHOT_DIR`` or the test's temporary folder."""
    folder = Path(os.environ.get("WEAVE_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_widget_notebook_in_jupyterlab(chromium_path, lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    shot = screenshot_dir(tmp_path) / "05_widgets_jupyterlab.png"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium_path, args=CHROMIUM_ARGS,
            headless=True, viewport={"width": 1400, "height": 1500},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{lab['url']}/lab/tree/05_widgets.ipynb")
            # the kernel is started (accepting the preferred kernel if Lab asks) and idle
            expect(page.locator(".jp-Notebook")).to_be_visible(timeout=90_000)
            _accept_kernel_dialog(page)
            expect(page.locator(".jp-Toolbar-kernelName", has_text="Python 3").first).to_be_visible(timeout=90_000)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first).to_be_attached(timeout=90_000)

            # Run > Run All Cells
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            # the form renders as real widgets (not as the text repr of a DeployForm)
            deploy = page.locator(".jupyter-widgets button", has_text=re.compile(r"^\s*Deploy\s*$")).first
            expect(deploy).to_be_visible(timeout=120_000)
            name_input = page.locator(".widget-text", has=page.locator("label", has_text=re.compile(r"^name$"))).locator("input").first
            expect(name_input).to_be_visible()
            # every cell ran: the code path deployed and removed hello-form, and the board refreshed
            expect(page.locator(".jp-OutputArea-output", has_text="hello-form [local] destroyed")).to_be_visible(timeout=180_000)
            expect(page.get_by_text("DeployForm(children=")).to_have_count(0)

            # a user fills in the form and clicks Deploy
            name_input.fill("browser-demo")
            expect(deploy).to_be_enabled()
            deploy.click()
            done = page.locator(".jupyter-widgets", has_text=re.compile(r"browser-demo \[local\] active http://127\.0\.0\.1:\d+")).first
            expect(done).to_be_visible(timeout=120_000)
            link = page.locator("table.weave-deployment a[href^='http://127.0.0.1:']").last
            expect(link).to_be_visible()
            endpoint = link.get_attribute("href")
            page.locator(".jp-Cell", has=deploy).first.scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        finally:
            context.close()

    assert shot.exists() and shot.stat().st_size > 10_000
    # the endpoint the browser shows is the real, running deployment
    from weave_nb.core.manager import DeploymentManager
    from weave_nb.core.procutil import http_ok

    info = DeploymentManager(home=lab["home"]).status("browser-demo", "local")
    assert info.endpoint == endpoint and info.status.value == "active"
    assert http_ok(f"{endpoint}/health")
    print(f"screenshot: {shot}")
