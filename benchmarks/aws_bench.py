"""Measure the AWS provider against moto_server and print the figures.

    python benchmarks/aws_bench.py [--moto-url URL] [--count 200]
    python benchmarks/aws_bench.py --cli [--rounds 9] [--chalice PATH]

Starts moto_server on a free 127.0.0.1 port (unless --moto-url or
WEAVE_TEST_MOTO_URL is given) with a counting proxy in front of it, then
reports: first deploy wall time and API calls, unchanged redeploy wall time
and mutating calls (target <= 0.3 s, 0 calls), and listing N deployments
(target <= 2 s). Uses a temporary WEAVE_HOME and fake credentials.

``--cli`` instead times whole processes on the same moto_server, interleaved
round by round with ``chalice deploy``: ``weave deploy --provider aws`` of
the 4-agent example (``examples/research_pipeline.weave.yaml``) with its
Function URL, as a new deployment, against ``chalice deploy`` of a new app
with one ``@app.lambda_function()`` (a role, its policy and a function;
moto cannot import the REST API chalice makes for routes), then the same
command again (an unchanged weave redeploy, a chalice code update). Prints
each median and the median of the per-round ratios weave/chalice. Chalice
is taken from ``--chalice PATH``, else from the PATH, else installed into a
throwaway virtual environment (``pip install chalice``) so it cannot change
this environment's packages.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from aws_servers import FakeSleep, FaultProxy, MotoServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moto-url", default=os.environ.get("WEAVE_TEST_MOTO_URL"))
    parser.add_argument("--count", type=int, default=200, help="deployments to list")
    parser.add_argument("--cli", action="store_true", help="time weave and chalice processes, interleaved")
    parser.add_argument("--rounds", type=int, default=9, help="rounds for --cli")
    parser.add_argument("--chalice", default=shutil.which("chalice"), help="the chalice command for --cli")
    args = parser.parse_args()
    moto = MotoServer(args.moto_url).start()
    if args.cli:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                return cli_rounds(moto, Path(tmp), args.rounds, args.chalice)
        finally:
            moto.stop()
    proxy = FaultProxy(moto.url).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return run(moto, proxy, Path(tmp), args.count)
    finally:
        proxy.stop()
        moto.stop()


def run(moto: MotoServer, proxy: FaultProxy, tmp: Path, count: int) -> int:
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "WEAVE_HOME": str(tmp / "home"), "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "none"),
    })
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        os.environ.pop(var, None)
    import boto3

    moto.reset()
    direct = dict(endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    lam, iam = boto3.client("lambda", **direct), boto3.client("iam", **direct)
    t0 = time.perf_counter()
    lam.list_functions(), iam.list_roles()
    print(f"moto warm-up (first Lambda and IAM calls after a reset): {time.perf_counter() - t0:.3f} s, not counted below")
    ok = True
    for label, url in (("through the counting proxy", proxy.url), ("straight to moto_server", moto.url)):
        os.environ["AWS_ENDPOINT_URL"] = url
        ok &= measure(label, lam, iam, proxy, tmp, count, counted=url == proxy.url)
        moto.reset()
        lam.list_functions(), iam.list_roles()
    return 0 if ok else 1


def measure(label: str, lam, iam, proxy: FaultProxy, tmp: Path, count: int, counted: bool) -> bool:
    from weave_nb.core.artifact import zip_bytes
    from weave_nb.core.manager import DeploymentManager

    home = tmp / f"home-{int(counted)}"
    weave = (ROOT / "examples" / "hello.weave.yaml").read_text()
    mgr = DeploymentManager(home=home, sleep=FakeSleep())
    values = {"name": "bench", "provider": "aws", "weave_text": weave}
    calls = (lambda: f", {len(proxy.calls)} API calls ({len(proxy.mutating())} mutating)") if counted else (lambda: "")

    proxy.clear()
    t0 = time.perf_counter()
    mgr.deploy(values)
    first = time.perf_counter() - t0
    first_calls = calls()

    proxy.clear()
    t0 = time.perf_counter()
    info = mgr.deploy(values)
    again = time.perf_counter() - t0
    again_calls, again_mut = calls(), len(proxy.mutating())
    assert info.message == "no changes"

    role = iam.create_role(RoleName="bench-list", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = zip_bytes({"x.py": b"x = 1\n"})
    for i in range(count - 1):
        name = f"b{i:03d}"
        lam.create_function(FunctionName=f"weave-{name}", Runtime="python3.12", Role=role, Handler="x.h",
                            Code={"ZipFile": code}, Tags={"weave-nb:managed": "true", "weave-nb:name": name})
        mgr.inventory.save("aws", name, status="active", region="us-east-1", details={"function": f"weave-{name}"})
    proxy.clear()
    t0 = time.perf_counter()
    listing = mgr.list("aws")
    listed = time.perf_counter() - t0
    ok_list = len(listing.deployments) == count and not any(d.drift for d in listing.deployments)

    print(f"-- {label}")
    print(f"first deploy:          {first:6.3f} s{first_calls}")
    print(f"unchanged redeploy:    {again:6.3f} s{again_calls}   target <= 0.3 s, 0 mutating")
    print(f"list {count} deployments: {listed:6.3f} s{calls()}, correct={ok_list}   target <= 2 s")
    return ok_list and again_mut == 0


CHALICE_APP = """from chalice import Chalice

app = Chalice(app_name="{name}")


@app.lambda_function()
def handler(event, context):
    return {{"hello": "world"}}
"""


def cli_rounds(moto: MotoServer, tmp: Path, rounds: int, chalice: str | None) -> int:
    """Time ``weave deploy`` and ``chalice deploy`` processes, alternating which goes first each round."""
    if not chalice:
        venv = tmp / "chalice-venv"
        print("installing chalice into a throwaway virtual environment ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "chalice"], check=True)
        chalice = str(venv / "bin" / "chalice")
    import boto3

    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_ENDPOINT_URL=moto.url, AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=str(tmp / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"), WEAVE_HOME=str(tmp / "home"))
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION"):
        env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    moto.reset()
    boto3.client("lambda", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").list_functions()  # moto's first-call setup, not counted
    weave_file = ROOT / "examples" / "research_pipeline.weave.yaml"

    def timed(cmd: list[str], cwd: Path) -> float:
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
        took = time.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"{cmd[0]} failed: {done.stdout[-500:]} {done.stderr[-500:]}")
        return took

    figures: dict[str, list[float]] = {k: [] for k in ("weave first", "chalice first", "weave again", "chalice again")}
    for i in range(rounds):
        project = tmp / f"c{i}"
        (project / ".chalice").mkdir(parents=True)
        (project / "app.py").write_text(CHALICE_APP.format(name=f"c{i}"))
        (project / "requirements.txt").write_text("")
        (project / ".chalice" / "config.json").write_text(
            '{"version": "2.0", "app_name": "c%d", "stages": {"dev": {"api_gateway_stage": "api"}}}' % i)
        weave = [sys.executable, "-m", "weave_nb", "deploy", "--provider", "aws", "--name", f"w{i}",
                 "--config", str(weave_file)]  # the default endpoint: a Function URL
        runs = [("weave", weave, tmp), ("chalice", [chalice, "deploy"], project)]
        for label, cmd, cwd in (runs if i % 2 == 0 else runs[::-1]):
            figures[f"{label} first"].append(timed(cmd, cwd))
            figures[f"{label} again"].append(timed(cmd, cwd))
    print(f"{rounds} interleaved rounds on one moto_server (wall seconds, median [min-max]):")
    for key, vals in figures.items():
        print(f"  {key:<14} {statistics.median(vals):.3f} [{min(vals):.3f}-{max(vals):.3f}]")
    for what in ("first", "again"):
        ratios = [w / c for w, c in zip(figures[f"weave {what}"], figures[f"chalice {what}"])]
        print(f"  ratio weave/chalice, {what}: median {statistics.median(ratios):.2f} (paired per round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
