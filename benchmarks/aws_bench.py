"""Measure the AWS provider against moto_server and print the figures.

    python benchmarks/aws_bench.py [--moto-url URL] [--count 200]

Starts moto_server on a free 127.0.0.1 port (unless --moto-url or
WEAVE_TEST_MOTO_URL is given) with a counting proxy in front of it, then
reports: first deploy wall time and API calls, unchanged redeploy wall time
and mutating calls (target <= 0.3 s, 0 calls), and listing N deployments
(target <= 2 s). Uses a temporary WEAVE_HOME and fake credentials.
"""

from __future__ import annotations

import argparse
import os
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
    args = parser.parse_args()
    moto = MotoServer(args.moto_url).start()
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
    from weave_nb.artifact import zip_bytes
    from weave_nb.manager import DeploymentManager

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


if __name__ == "__main__":
    sys.exit(main())
