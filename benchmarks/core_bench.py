"""Core figures: artifact size, handler cold import, local deploy times, import cost, listing speed.

Prints figures with their targets; it is not a test. Run from the repository root:

    python benchmarks/core_bench.py            # every section
    python benchmarks/core_bench.py import list  # only some: artifact handler deploy import list

Every section works in a temporary WEAVE_HOME and undeploys what it made.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "examples" / "research_pipeline.weave.yaml"
sys.path.insert(0, str(ROOT))

MOCK_WEAVE = """\
version: "1.0"
agents:
  fetcher: {model: mock, outputs: facts}
  drafter: {model: mock, inputs: fetcher, outputs: draft}
weaves:
  chain: {agents: [fetcher, drafter]}
"""


def child_env(home: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if home:
        env["WEAVE_HOME"] = home
    return env


def weave_cmd() -> list[str]:
    """The real console script next to this interpreter (not a version-manager shim)."""
    beside = Path(sys.executable).with_name("weave")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("weave")
    return [found] if found else [sys.executable, "-m", "weave_nb.frontends.cli"]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def report(label: str, value: float, unit: str, target: float | None = None) -> None:
    verdict = ""
    if target is not None:
        verdict = f"  (target <= {target:g} {unit}: {'ok' if value <= target else 'MISSED'})"
    print(f"  {label:<52} {value:10.1f} {unit}{verdict}")


def timed_run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    return time.perf_counter() - started


def cpu_run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds of the child). CPU time barely moves on a busy machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed_run(cmd, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report_command(label: str, cmd: list[str], env: dict[str, str], runs: int, target: float | None = None) -> None:
    """Print wall median (against the target), wall min and CPU median of a command."""
    samples = [cpu_run(cmd, env) for _ in range(runs)]
    walls = [w for w, _ in samples]
    report(label, median_ms(walls), "ms", target)
    print(f"  {'':<52} {'':>10}    min {min(walls) * 1000:.1f} ms, CPU {median_ms([c for _, c in samples]):.1f} ms")


# -- sections -----------------------------------------------------------------
def artifact_size() -> None:
    from weave_nb.core.artifact import build_artifact
    from weave_nb.spec.model import load_weave

    art = build_artifact(load_weave(PIPELINE))
    print("artifact (examples/research_pipeline.weave.yaml, 4 agents)")
    report("zip size", art.size / 1024, "KB", 32)
    report("unzipped size", art.unzipped_size / 1024, "KB")
    started = time.perf_counter()
    for _ in range(20):
        build_artifact(load_weave(PIPELINE))
    report("parse + build time (mean of 20)", (time.perf_counter() - started) / 20 * 1000, "ms")


def handler_import(runs: int = 10) -> None:
    from weave_nb.core.artifact import build_artifact
    from weave_nb.spec.model import load_weave

    art = build_artifact(load_weave(PIPELINE))
    with tempfile.TemporaryDirectory() as tmp:
        folder = art.extract(Path(tmp) / "task")
        readonly = art.extract(Path(tmp) / "readonly")  # only ever run with -B: never gets __pycache__
        zipped = art.write(Path(tmp) / "artifact.zip")
        env = {"PATH": os.environ.get("PATH", ""), "WEAVE_SPEC_PATH": str(folder / "weave.json")}
        health = ("from weave_runtime.lambda_adapter import handler; "
                  "handler({'rawPath': '/health', 'requestContext': {'http': {'method': 'GET'}}}, None)")
        cases = {
            "python -I -c pass": "pass",
            "import handler (extracted, as Lambda runs it)": f"import sys; sys.path.insert(0, {str(folder)!r}); import weave_runtime.lambda_adapter",
            "import handler (extracted, no .pyc, like read-only /var/task)": f"import sys; sys.dont_write_bytecode = True; sys.path.insert(0, {str(readonly)!r}); import weave_runtime.lambda_adapter",
            "import handler (from the zip)": f"import sys; sys.path.insert(0, {str(zipped)!r}); import weave_runtime.lambda_adapter",
            "import handler + first /health (extracted)": f"import sys; sys.path.insert(0, {str(folder)!r}); {health}",
        }
        # -S as well as -I: no site-packages and no .pth start-up hooks (this machine has one that
        # imports google.cloud), as in a Lambda runtime. Runs are interleaved so drift hits every case.
        samples: dict[str, list[float]] = {label: [] for label in cases}
        for code in cases.values():
            timed_run([sys.executable, "-I", "-S", "-c", code], env)  # warm the page cache
        for _ in range(runs):
            for label, code in cases.items():
                samples[label].append(timed_run([sys.executable, "-I", "-S", "-c", code], env))
        times = {label: median_ms(values) for label, values in samples.items()}
    base = times.pop("python -I -c pass")
    print(f"handler cold start (median of {runs} interleaved runs, python -I -S)")
    report("bare interpreter (python -I -S -c pass)", base, "ms")
    for label, value in times.items():
        report(label + " - bare", value - base, "ms", 15 if label.startswith("import handler (extracted") else None)


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def local_deploy(runs: int = 5) -> None:
    from weave_nb.core.manager import DeploymentManager

    print(f"local provider (median of {runs} runs)")
    with tempfile.TemporaryDirectory() as home:
        weave = Path(home) / "chain.weave.yaml"
        weave.write_text(MOCK_WEAVE)
        os.environ["WEAVE_HOME"] = home
        mgr = DeploymentManager(home=home)
        values = {"name": "bench", "weave_file": str(weave)}
        first, again = [], []
        try:
            for _ in range(runs):
                started = time.perf_counter()
                info = mgr.deploy(values)
                assert _get_ok(info.endpoint + "/health")
                first.append(time.perf_counter() - started)
                started = time.perf_counter()
                assert mgr.deploy(values).message == "no changes"
                again.append(time.perf_counter() - started)
                mgr.destroy("bench")
            report("API: deploy to first 200 from /health", median_ms(first), "ms", 1000)
            report("API: unchanged redeploy", median_ms(again), "ms", 300)

            env = child_env(home)
            cmd = [*weave_cmd(), "deploy", "-n", "bench", "-c", str(weave)]
            first, again = [], []
            for _ in range(runs):
                started = time.perf_counter()
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                url = out.strip().splitlines()[-1].split(" at ")[1].split()[0]
                assert _get_ok(url + "/health")
                first.append(time.perf_counter() - started)
                again.append(timed_run(cmd, env))
                subprocess.run([*weave_cmd(), "undeploy", "bench", "-f"], env=env, check=True, stdout=subprocess.DEVNULL)
            report("CLI: weave deploy to first 200 from /health", median_ms(first), "ms", 1000)
            report("CLI: unchanged redeploy", median_ms(again), "ms", 300)
        finally:
            for info in mgr.inventory.list("local"):
                mgr.destroy(info.name)


IMPORT_PROBE = """
import json, sys, time
before = set(sys.modules)
started = time.perf_counter()
import weave_nb
elapsed = time.perf_counter() - started
new = sorted({m.split(".")[0] for m in set(sys.modules) - before})
print(json.dumps({"seconds": elapsed, "new": new, "preloaded": sorted({m.split(".")[0] for m in before})}))
"""
HEAVY = ("pandas", "numpy", "IPython", "ipywidgets", "boto3", "botocore", "google", "docker", "requests",
         "urllib3", "grpc", "yaml", "pydantic", "traitlets")


def import_cost(runs: int = 10) -> None:
    env = child_env()
    results = [json.loads(subprocess.run([sys.executable, "-c", IMPORT_PROBE], env=env, check=True,
                                         capture_output=True, text=True, cwd="/").stdout) for _ in range(runs)]
    print(f"import weave_nb (median of {runs} runs, in-process timer)")
    report("import time", median_ms([r["seconds"] for r in results]), "ms")
    new = results[0]["new"]
    print(f"  heavy packages it pulled in: {', '.join(m for m in HEAVY if m in new) or 'none'}")
    print(f"  heavy packages already loaded at startup (.pth files): "
          f"{', '.join(m for m in HEAVY if m in results[0]['preloaded']) or 'none'}")
    print(f"  all new top-level modules: {len(new)}")
    report_command("python -c pass", [sys.executable, "-c", "pass"], env, runs)
    report_command("python -c 'import weave_nb'", [sys.executable, "-c", "import weave_nb"], env, runs)
    report_command("weave --help (whole process)", [*weave_cmd(), "--help"], env, runs)


def listing(rows: int = 1000, runs: int = 10) -> None:
    from weave_nb.core.inventory import Inventory
    from weave_nb.core.manager import DeploymentManager

    print(f"weave deployments over {rows} recorded rows (median of {runs} runs; CLI: wall median, min, CPU)")
    with tempfile.TemporaryDirectory() as home:
        inv = Inventory(home)
        started = time.perf_counter()
        for i in range(rows):
            provider = ("local", "aws", "gcp", "docker")[i % 4]
            inv.save(provider, f"dep-{i:04d}", status="active", endpoint=f"http://127.0.0.1:{10000 + i}",
                     region="localhost", details={"pid": 4_000_000 + i, "port": 10000 + i})
        report(f"Inventory.save x {rows} (setup)", (time.perf_counter() - started) * 1000, "ms")
        os.environ["WEAVE_HOME"] = home
        mgr = DeploymentManager(home=home)
        mgr.list()  # load providers once
        api = []
        for _ in range(runs):
            started = time.perf_counter()
            mgr.list()
            api.append(time.perf_counter() - started)
        report("API: manager.list() (all providers)", median_ms(api), "ms")
        env = child_env(home)
        for args in (["deployments"], ["deployments", "--provider", "local"], ["deployments", "--no-refresh"]):
            report_command("CLI: weave " + " ".join(args), [*weave_cmd(), *args], env, runs, 300)


SECTIONS = {"artifact": artifact_size, "handler": handler_import, "deploy": local_deploy,
            "import": import_cost, "list": listing}


def main(argv: list[str]) -> None:
    chosen = argv or list(SECTIONS)
    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores")
    for name in chosen:
        SECTIONS[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
