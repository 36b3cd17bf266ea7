"""JupyterLab in Chromium: the deploy cell shows live widget progress while the deploy runs, in its own cell.

Starts a real ``jupyter lab`` on 127.0.0.1 (token auth, private config and
runtime folders) and drives it with Playwright. The deploy uses a fake
provider held at a file gate, so the test sees the progress before the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from frontend_fakes import HELLO, gated_kernel_setup

from weave_nb.core.procutil import free_port, wait_for

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def wait_until(condition, timeout: float = 60.0) -> bool:
    return wait_for(condition, timeout, 0.1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 whose kernels see WEAVE_HOME and this tree."""
    port, token = free_port(), "weave-test-token"
    for sub in ("config", "runtime", "workspaces", "settings", "nb"):
        (tmp_path / sub).mkdir()
    env = {
        **os.environ,
        "WEAVE_HOME": str(tmp_path / "home"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path / 'nb'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        "--ServerApp.port_retries=0", "--ServerApp.allow_root=True", "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until(lambda: proc.poll() is not None or _ready(f"{base}/api/status?token={token}"), 90) or proc.poll() is not None:
            pytest.fail("jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
        yield base, token, tmp_path
    finally:
        try:
            req = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST", data=b"")
            urllib.request.urlopen(req, timeout=10).close()
        except OSError:
            pass
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


@pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium (Debian package chromium)")
@pytest.mark.timeout(300)
def open_notebook(browser, url: str, cell_count: int):
    """Open a notebook in a new JupyterLab page; wait until its ``cell_count`` code cells show. Returns (page, cells)."""
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(url)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    expect(cells).to_have_count(cell_count, timeout=60_000)
    return page, cells


def run_all_cells(page) -> None:
    """Once the notebook's kernel is connected and idle, start 'run all cells' without waiting for them."""
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;"
        " return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }",
        timeout=60_000,
    )
    # fire and forget: awaiting the command would wait for every cell to finish
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def test_live_progress_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    base, token, tmp = lab
    gate = tmp / "open-the-gate"
    setup = gated_kernel_setup(str(gate)) + "print('ready')"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell("%%weave_deploy --name browser --provider gated\n" + HELLO)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp / "nb" / "live.ipynb")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, cells = open_notebook(browser, f"{base}/lab/tree/live.ipynb?token={token}", 2)
            expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=60_000)
            run_all_cells(page)
            expect(cells.nth(0).locator(".jp-OutputArea-output")).to_contain_text("ready", timeout=60_000)
            deploy_out = cells.nth(1).locator(".jp-OutputArea")
            # live: the widget (steps, bar, log lines) shows while the deploy is held
            expect(deploy_out.locator(".widget-html", has_text="build the image")).to_have_count(1, timeout=20_000)
            expect(deploy_out).to_contain_text("Step 1/2 : FROM python:3.12-slim", timeout=30_000)
            assert deploy_out.locator(".widget-hprogress").count() == 1
            assert deploy_out.locator(".weave-progress").count() == 0 and not gate.exists()
            assert "build the image" not in cells.nth(0).locator(".jp-OutputArea").inner_text()
            gate.write_text("go")
            # the end: a static copy of the final state replaces the widget, then the result
            expect(deploy_out.locator(".weave-progress")).to_contain_text("run the service", timeout=60_000)
            expect(deploy_out.locator("table.weave-deployment")).to_contain_text("browser", timeout=30_000)
            assert deploy_out.locator(".widget-hprogress").count() == 0
        finally:
            browser.close()


CONTRAST_JS = """(el) => {
  const parse = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = (rgb) => { const [r, g, b] = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
                         return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const style = getComputedStyle(el);
  const fg = lum(parse(style.color)), bg = lum(parse(style.backgroundColor));
  return {contrast: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05), background: bg};
}"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium (Debian package chromium)")
@pytest.mark.timeout(300)
def test_banner_readable_in_both_themes_and_board_refreshes_itself(lab):
    """The sandbox banner keeps a readable contrast in the light and the dark theme; the board shows a deploy made
    in the same kernel without Refresh, and drops it after the undeploy."""
    from playwright.sync_api import expect, sync_playwright

    base, token, tmp = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from weave_nb.sandbox.session import SandboxStatus, Service\n"
            "SandboxStatus(running=True, services=(Service(name='aws', url='http://127.0.0.1:1', pid=1, log='aws.log'),))"),
        nbformat.v4.new_code_cell("from weave_nb.frontends.widgets import DeploymentsBoard\nboard = DeploymentsBoard(provider='local')\nboard"),
        nbformat.v4.new_code_cell("print('cells ready')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp / "nb" / "themes.ipynb")
    weave = tmp / "board.weave.yaml"
    weave.write_text(HELLO)

    def run_in_kernel(page, code: str) -> None:
        page.evaluate("(code) => { const w = window.jupyterapp.shell.currentWidget;"
                      " w.sessionContext.session.kernel.requestExecute({code}); }", code)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, cells = open_notebook(browser, f"{base}/lab/tree/themes.ipynb?token={token}", 3)
            run_all_cells(page)
            expect(cells.nth(2).locator(".jp-OutputArea-output")).to_contain_text("cells ready", timeout=60_000)
            banner = cells.nth(0).locator(".jp-OutputArea-output pre").first
            expect(banner).to_contain_text("SANDBOX", timeout=30_000)
            light = banner.evaluate(CONTRAST_JS)
            assert light["contrast"] >= 4.5 and light["background"] > 0.5, light

            # a deploy in the same kernel (the Python API) shows on the board without a click on Refresh
            board_out = cells.nth(1).locator(".jp-OutputArea-output")
            expect(board_out).to_contain_text("no deployments", timeout=30_000)
            run_in_kernel(page, f"import weave_nb\nweave_nb.deploy('board-auto', 'local', weave_file={str(weave)!r})")
            expect(board_out.locator("table")).to_contain_text("board-auto", timeout=60_000)
            run_in_kernel(page, "weave_nb.undeploy('board-auto', 'local')")
            expect(board_out).to_contain_text("no deployments", timeout=60_000)  # the table is empty again

            page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})")
            page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
            dark = banner.evaluate(CONTRAST_JS)
            assert dark["contrast"] >= 4.5 and dark["background"] < 0.2, dark
        finally:
            browser.close()
            from conftest import undeploy_all_local

            undeploy_all_local(tmp / "home")


@pytest.mark.skipif(CHROMIUM is None, reason="needs a Chromium (Debian package chromium)")
@pytest.mark.timeout(300)
def test_metrics_plots_render_in_jupyterlab(lab):
    """%weave_metrics on a real local deployment draws its plots as images JupyterLab decodes and lays out."""
    from playwright.sync_api import expect, sync_playwright

    base, token, tmp = lab
    deploy = (
        "import weave_nb\n%load_ext weave_nb\n"
        f"weave_nb.deploy('plots', 'local', weave_text={HELLO!r})\n"
        "for text in ['a', 'b', 'c', 'd']:\n    weave_nb.invoke('plots', text)\nprint('traffic sent')"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(deploy),
        nbformat.v4.new_code_cell("df = %weave_metrics plots --since 1h\nprint('rows', len(df))"),
        nbformat.v4.new_code_cell("weave_nb.undeploy('plots', 'local'); print('removed')"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp / "nb" / "plots.ipynb")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, cells = open_notebook(browser, f"{base}/lab/tree/plots.ipynb?token={token}", 3)
            run_all_cells(page)
            expect(cells.nth(0).locator(".jp-OutputArea")).to_contain_text("traffic sent", timeout=90_000)
            metrics_out = cells.nth(1).locator(".jp-OutputArea")
            expect(metrics_out).to_contain_text("rows 4", timeout=90_000)
            expect(metrics_out).to_contain_text("nearest rank")
            image = metrics_out.locator(".jp-RenderedImage img").first
            expect(image).to_be_visible(timeout=30_000)
            # decoded by the browser (a broken PNG has naturalWidth 0) and laid out at a readable size
            size = image.evaluate("(img) => [img.complete, img.naturalWidth, img.naturalHeight, img.getBoundingClientRect().width]")
            assert size[0] and size[1] >= 300 and size[2] >= 150 and size[3] >= 200, size
            expect(cells.nth(2).locator(".jp-OutputArea")).to_contain_text("removed", timeout=60_000)
        finally:
            browser.close()
