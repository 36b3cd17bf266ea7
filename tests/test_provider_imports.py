"""A provider without credentials is rejected before its SDK is loaded, so `weave deployments` stays fast.

Each check runs in a fresh interpreter (a clean ``sys.modules``) with an
empty HOME and no provider variables, then reports whether the SDK was
imported and what error it got.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
from weave_nb.core.auth import AuthenticationManager
from weave_nb.core.config import DeploymentConfig
from weave_nb.core.registry import load_provider_class
name, sdk = sys.argv[1], sys.argv[2]
prov = load_provider_class(name)(AuthenticationManager())
after_import = sdk in sys.modules
try:
    prov.check_credentials(DeploymentConfig(name="list", provider=name))
    error = None
except Exception as exc:
    error = [type(exc).__name__, str(exc)]
print(json.dumps({"after_import": after_import, "after_check": sdk in sys.modules, "error": error}))
"""


def _probe(tmp_path: Path, provider: str, sdk: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOOGLE_", "GCP_", "CLOUDSDK_", "BOTO_", "WEAVE_GCP_"))}
    env.update(HOME=str(tmp_path), WEAVE_HOME=str(tmp_path / "weave"), PYTHONPATH=str(ROOT), **extra)
    out = subprocess.run([sys.executable, "-c", PROBE, provider, sdk], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


AWS_SDK = "botocore.session"  # the aws provider makes botocore sessions (it does not use boto3 at run time)


def test_aws_without_credentials_never_loads_boto3(tmp_path):
    got = _probe(tmp_path, "aws", AWS_SDK)
    assert got["after_import"] is False, "importing the aws provider loaded botocore.session"
    assert got["after_check"] is False, "check_credentials loaded botocore.session although nothing could be found"
    assert got["error"][0] == "CredentialsError"
    assert "no AWS credentials found" in got["error"][1]


def test_aws_with_a_shared_credentials_file_still_asks_botocore(tmp_path):
    creds = tmp_path / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = from-file\n")
    got = _probe(tmp_path, "aws", AWS_SDK)
    assert got["error"] is None
    assert got["after_check"] is True  # the file is read by botocore, as before
    assert _probe(tmp_path, "aws", "boto3")["after_check"] is False  # botocore only: boto3 (and s3transfer) never load


def test_aws_with_an_empty_shared_credentials_file_is_still_rejected(tmp_path):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("# nothing here\n")
    got = _probe(tmp_path, "aws", AWS_SDK)
    assert got["error"][0] == "CredentialsError"


def test_aws_env_keys_need_no_boto3_to_be_accepted(tmp_path):
    got = _probe(tmp_path, "aws", AWS_SDK, AWS_ACCESS_KEY_ID="AKIDENV", AWS_SECRET_ACCESS_KEY="from-env")
    assert got == {"after_import": False, "after_check": False, "error": None}


@pytest.mark.parametrize("sdk", ["google.auth", "google.cloud.functions_v2"])
def test_gcp_without_credentials_never_loads_the_client(tmp_path, sdk):
    got = _probe(tmp_path, "gcp", sdk)
    assert got["after_import"] is False and got["after_check"] is False
    assert got["error"][0] == "CredentialsError"


DOCKER_PROBE = """
import json, sys
from weave_nb.core.auth import AuthenticationManager
from weave_nb.core.registry import load_provider_class
prov = load_provider_class("docker")(AuthenticationManager())
after_import = "docker" in sys.modules
try:
    prov.list_deployments([])
    error = None
except Exception as exc:
    error = [type(exc).__name__, str(exc)]
print(json.dumps({"after_import": after_import, "after_list": "docker" in sys.modules, "error": error}))
"""


def test_docker_without_an_engine_socket_never_loads_the_sdk(tmp_path):
    sock = tmp_path / "no-engine.sock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env.update(HOME=str(tmp_path), WEAVE_HOME=str(tmp_path / "weave"), PYTHONPATH=str(ROOT), DOCKER_HOST=f"unix://{sock}")
    out = subprocess.run([sys.executable, "-c", DOCKER_PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["after_import"] is False and got["after_list"] is False
    assert got["error"][0] == "EngineUnavailable"
    assert f"cannot reach the Docker engine at unix://{sock}: no engine socket there" in got["error"][1]
