"""``weave export`` core and the sam, cloudformation and terraform formats, without any server.

Deterministic bytes, no secret in any file (the zip's entries included),
the provider and folder checks before anything is written, and the CLI,
magic and Python API front ends. The format-owning tools (cfn-lint, the SAM
translator, checkov, moto's CloudFormation) are in test_export_tools.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from weave_nb.core.errors import ConfigError
from weave_nb.export import ExportSource, export_deployment, format_module
from weave_nb.export.writer import RECORD

FAKE_SECRET = "sk-fake-export-7f3a9c41d2e8b6"
FAKE_TOKEN = "tok-fake-export-5e1d9a0c3b"
WEAVE = """\
version: "1.0"
agents:
  greeter: {model: mock, outputs: greeting}
weaves:
  hello: {description: Say hello, agents: [greeter]}
env:
  OPENAI_API_KEY: ${OPENAI_API_KEY}
  STYLE: concise
"""
CASES = [  # (format, provider, extra settings)
    ("sam", "aws", {}),
    ("sam", "aws", {"public": True}),
    ("sam", "aws", {"options": {"endpoint": "api"}}),
    ("sam", "aws", {"secrets": ["EXTRA_TOKEN"]}),
    ("cloudformation", "aws", {}),
    ("cloudformation", "aws", {"public": True}),
    ("cloudformation", "aws", {"options": {"endpoint": "api"}, "public": True}),
    ("cloudformation", "aws", {"options": {"endpoint": "none", "role_arn": "arn:aws:iam::123456789012:role/given"}}),
    ("cloudformation", "aws", {"secrets": ["EXTRA_TOKEN", "OPENAI_API_KEY"]}),
    ("terraform", "aws", {}),
    ("terraform", "aws", {"public": True}),
    ("terraform", "aws", {"options": {"endpoint": "api"}}),
    ("terraform", "gcp", {}),
    ("terraform", "gcp", {"public": True}),
    ("terraform", "aws", {"secrets": ["EXTRA_TOKEN"]}),
    ("terraform", "gcp", {"secrets": ["EXTRA_TOKEN"]}),
]


@pytest.fixture
def weave_file(tmp_path):
    path = tmp_path / "export.weave.yaml"
    path.write_text(WEAVE)
    return path


@pytest.fixture
def offline(monkeypatch):
    """No cloud credentials or region from the machine; the fake secret only in the environment given."""
    for var in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_ENDPOINT_URL", "GOOGLE_APPLICATION_CREDENTIALS", "GCP_PROJECT_ID", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_SECRET)


def values(weave_file: Path, provider: str, extra: dict, name: str = "demo") -> dict:
    out = {"name": name, "provider": provider, "weave_file": str(weave_file), "env": {"EXTRA_TOKEN": FAKE_TOKEN}, **extra}
    if provider == "aws":
        out["region"] = "eu-west-1"
    return out


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("fmt,provider,extra", CASES)
def test_an_export_is_the_same_bytes_twice_and_holds_no_secret(manager, weave_file, offline, tmp_path, fmt, provider, extra):
    first = export_deployment(manager, values(weave_file, provider, extra), fmt, tmp_path / "one")
    second = export_deployment(manager, values(weave_file, provider, extra), fmt, tmp_path / "two")
    a, b = files_of(first.folder), files_of(second.folder)
    assert a == b and len(a) == 4  # template, zip, README.md, the record
    assert set(first.files) == set(a) - {RECORD} and "README.md" in a
    again = export_deployment(manager, values(weave_file, provider, extra), fmt, tmp_path / "one")  # its own folder: no --force
    assert files_of(again.folder) == a
    for name, data in a.items():
        contents = [data]
        if name.endswith(".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())
                contents += [zf.read(n) for n in zf.namelist()]
        for blob in contents:
            assert FAKE_SECRET.encode() not in blob and FAKE_TOKEN.encode() not in blob, f"{name} holds a secret value"
    text = b"".join(v for k, v in a.items() if not k.endswith(".zip")).decode()
    assert "OPENAI_API_KEY" in text and "EXTRA_TOKEN" in text and "STYLE" in text  # the names are referenced
    assert first.content_hash in a[RECORD].decode()


def test_the_zip_is_the_artifact_a_deploy_ships(manager, weave_file, offline, tmp_path):
    config, _, artifact = manager.package(values(weave_file, "aws", {}))
    result = export_deployment(manager, values(weave_file, "aws", {}), "cloudformation", tmp_path / "out")
    assert (result.folder / "demo-aws.zip").read_bytes() == artifact.data
    gcp = export_deployment(manager, values(weave_file, "gcp", {}), "terraform", tmp_path / "gcp")
    zipped = zipfile.ZipFile(gcp.folder / "demo-gcp.zip")
    assert {"main.py", "requirements.txt", "weave.json"} <= set(zipped.namelist())


def test_cloudformation_matches_the_aws_provider_settings(manager, weave_file, offline, tmp_path):
    from weave_nb.core.artifact import LAMBDA_HANDLER
    from weave_nb.providers.aws.settings import log_policy_document, tags_for

    extra = {"memory_mb": 512, "timeout_seconds": 45, "options": {"architecture": "arm64", "runtime": "python3.11",
                                                                  "log_retention_days": 14}}
    result = export_deployment(manager, values(weave_file, "aws", extra), "cloudformation", tmp_path / "cfn")
    doc = json.loads((result.folder / "template.json").read_text())
    res = doc["Resources"]
    fn = res["WeaveFunction"]["Properties"]
    assert (fn["FunctionName"], fn["Handler"], fn["Runtime"], fn["MemorySize"], fn["Timeout"], fn["Architectures"]) == \
        ("weave-demo", LAMBDA_HANDLER, "python3.11", 512, 45, ["arm64"])
    tags = {t["Key"]: t["Value"] for t in fn["Tags"]}
    assert tags == tags_for("demo", manager.inventory.owner_id)
    variables = dict(fn["Environment"]["Variables"])
    assert variables.pop("WEAVE_DEPLOYMENT") == "demo"  # set by a deploy too: the name, no secret
    assert sorted(variables) == ["EXTRA_TOKEN", "OPENAI_API_KEY", "STYLE"]
    assert all(set(v) == {"Ref"} for v in variables.values())
    assert all(doc["Parameters"][v["Ref"]]["NoEcho"] is True for v in variables.values())
    role = res["WeaveRole"]["Properties"]
    assert role["RoleName"] == "weave-nb-demo" and role["Policies"][0]["PolicyName"] == "weave-nb-logs"
    # the provider's own document, with the ARN prefix left to CloudFormation
    wanted = log_policy_document("eu-west-1", "123456789012", "weave-demo")
    got = json.dumps(role["Policies"][0]["PolicyDocument"]).replace('{"Fn::Sub": ', "").replace('"}', '"')
    assert got.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "eu-west-1").replace(
        "${AWS::AccountId}", "123456789012") == json.dumps(wanted)
    assert res["WeaveLogGroup"]["Properties"]["RetentionInDays"] == 14
    assert res["WeaveAlias"]["Properties"]["Name"] == "live"
    assert res["WeaveFunctionUrl"]["Properties"]["AuthType"] == "AWS_IAM" and "WeaveUrlPublicPermission" not in res
    versions = [k for k, v in res.items() if v["Type"] == "AWS::Lambda::Version"]
    changed = export_deployment(manager, values(weave_file, "aws", {**extra, "memory_mb": 1024}), "cloudformation",
                                tmp_path / "cfn")
    res2 = json.loads((changed.folder / "template.json").read_text())["Resources"]
    assert [k for k, v in res2.items() if v["Type"] == "AWS::Lambda::Version"] != versions  # a new version is published


def test_managed_secrets_are_made_as_a_deploy_makes_them_with_no_value(manager, weave_file, offline, tmp_path):
    from weave_nb.core.secrets import SECRET_ARNS_VAR

    extra = {"secrets": ["EXTRA_TOKEN"]}
    cfn = export_deployment(manager, values(weave_file, "aws", extra), "cloudformation", tmp_path / "cfn")
    doc = json.loads((cfn.folder / "template.json").read_text())
    res, params = doc["Resources"], doc["Parameters"]
    secret = res["WeaveSecretEXTRATOKEN"]["Properties"]
    assert secret["Name"] == "weave/demo/EXTRA_TOKEN" and secret["SecretString"] == {"Ref": "SecretEXTRATOKEN"}
    assert params["SecretEXTRATOKEN"]["NoEcho"] is True
    env = res["WeaveFunction"]["Properties"]["Environment"]["Variables"]
    assert "EXTRA_TOKEN" not in env and env[SECRET_ARNS_VAR] == {"Fn::Sub": '{"EXTRA_TOKEN":"${WeaveSecretEXTRATOKEN}"}'}
    policies = {p["PolicyName"]: p["PolicyDocument"] for p in res["WeaveRole"]["Properties"]["Policies"]}
    assert policies["weave-nb-secrets"]["Statement"][0]["Resource"] == [{"Ref": "WeaveSecretEXTRATOKEN"}]
    assert policies["weave-nb-secrets"]["Statement"][0]["Action"] == "secretsmanager:GetSecretValue"

    tf = export_deployment(manager, values(weave_file, "aws", extra), "terraform", tmp_path / "tf")
    doc = json.loads((tf.folder / "main.tf.json").read_text())
    assert doc["resource"]["aws_secretsmanager_secret"]["secret_EXTRA_TOKEN"]["name"] == "weave/demo/EXTRA_TOKEN"
    assert doc["variable"]["secret_EXTRA_TOKEN"]["sensitive"] is True
    env = doc["resource"]["aws_lambda_function"]["weave"]["environment"]["variables"]
    assert env[SECRET_ARNS_VAR] == '${jsonencode({"EXTRA_TOKEN" = aws_secretsmanager_secret.secret_EXTRA_TOKEN.arn})}'

    gcp = export_deployment(manager, values(weave_file, "gcp", extra), "terraform", tmp_path / "gcp")
    doc = json.loads((gcp.folder / "main.tf.json").read_text())
    assert doc["resource"]["google_secret_manager_secret"]["secret_EXTRA_TOKEN"]["secret_id"] == "weave-demo-EXTRA_TOKEN"
    svc = doc["resource"]["google_cloudfunctions2_function"]["weave"]["service_config"]
    assert "EXTRA_TOKEN" not in svc["environment_variables"]
    assert svc["secret_environment_variables"][0]["key"] == "EXTRA_TOKEN"


# ----------------------------------------------------------------------------- refusals before any write
def test_a_provider_the_format_cannot_express_is_refused_before_writing(manager, weave_file, offline, tmp_path):
    target = tmp_path / "never"
    with pytest.raises(ConfigError) as err:
        export_deployment(manager, values(weave_file, "gcp", {}), "sam", target)
    assert "cannot export a gcp deployment" in err.value.message and "--provider aws" in err.value.suggestion
    with pytest.raises(ConfigError) as err:
        export_deployment(manager, values(weave_file, "docker", {}), "terraform", target)
    assert "--provider aws or --provider gcp" in err.value.suggestion
    assert not target.exists()


def test_unknown_formats_and_names_are_refused(manager, weave_file, offline, tmp_path):
    with pytest.raises(ConfigError) as err:
        export_deployment(manager, values(weave_file, "aws", {}), "terrafrom", tmp_path / "x")
    assert "did you mean 'terraform'?" in err.value.message and "sam, cloudformation, terraform" in err.value.suggestion
    with pytest.raises(ConfigError):
        export_deployment(manager, values(weave_file, "aws", {}, name="bad name!"), "sam", tmp_path / "x")
    with pytest.raises(ConfigError) as err:  # a setting aws does not allow: the provider's own check
        export_deployment(manager, values(weave_file, "aws", {"memory_mb": 64}), "sam", tmp_path / "x")
    assert "memory" in err.value.message
    assert not (tmp_path / "x").exists()
    module = format_module("terraform")
    assert module.FORMAT == "terraform" and module.PROVIDERS == ("aws", "gcp")


def test_a_folder_that_is_not_this_deployments_export_is_refused_unless_force(manager, weave_file, offline, tmp_path):
    folder = tmp_path / "busy"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError) as err:
        export_deployment(manager, values(weave_file, "aws", {}), "sam", folder)
    assert "not empty" in err.value.message and "--force" in err.value.suggestion
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    export_deployment(manager, values(weave_file, "aws", {}), "sam", folder, force=True)
    assert (folder / "template.yaml").exists() and (folder / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError) as err:  # another deployment's export is not ours either
        export_deployment(manager, values(weave_file, "aws", {}, name="other"), "sam", folder)
    assert "an export of 'demo' (sam)" in err.value.message
    # the same deployment in another provider: the earlier export's files it no longer writes go
    tf = tmp_path / "tf"
    export_deployment(manager, values(weave_file, "aws", {}), "terraform", tf)
    export_deployment(manager, values(weave_file, "gcp", {}), "terraform", tf)
    assert sorted(p.name for p in tf.iterdir()) == [RECORD, "README.md", "demo-gcp.zip", "main.tf.json"]


def test_the_default_folder_is_weave_export_name_format(manager, weave_file, offline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = export_deployment(manager, values(weave_file, "aws", {}), "sam")
    assert result.folder == Path("weave-export/demo-sam") and (tmp_path / "weave-export/demo-sam/template.yaml").exists()


# ----------------------------------------------------------------------------- front ends
def test_weave_export_on_the_command_line(weave_home, weave_file, offline, tmp_path, capsys):
    from weave_nb.frontends import cli

    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["export", "demo", "--format", "terraform", "-c", str(weave_file), "--region", "eu-west-1",
                     "-e", f"EXTRA_TOKEN={FAKE_TOKEN}", "--endpoint", "api", "-o", str(tmp_path / "cli")], out, err)
    assert code == 0, err.getvalue()
    assert out.getvalue().startswith(f"wrote {tmp_path / 'cli'} (terraform export of demo on aws")
    doc = json.loads((tmp_path / "cli" / "main.tf.json").read_text())
    assert "aws_apigatewayv2_api" in doc["resource"] and "variable" in doc
    assert doc["variable"]["env_EXTRA_TOKEN"]["sensitive"] is True
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["export", "demo", "--format", "sam", "-p", "gcp", "-c", str(weave_file), "-o", str(tmp_path / "no")], out, err)
    assert code == 2 and "the sam format cannot export a gcp deployment" in err.getvalue() and not (tmp_path / "no").exists()
    assert FAKE_TOKEN not in out.getvalue() + err.getvalue()


def test_the_weave_export_magic_and_the_python_api(weave_home, weave_file, offline, tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    import weave_nb
    from weave_nb import export
    from weave_nb.frontends.magics import WeaveMagics

    shell = InteractiveShell.instance()  # the test session's one shell (the magic tests share it)
    magics = WeaveMagics(shell)
    shell.register_magics(magics)
    try:
        result = shell.run_cell_magic("weave_export", f"demo --format cloudformation --region eu-west-1 -o {tmp_path / 'magic'}",
                                      WEAVE.replace("${OPENAI_API_KEY}", "from-cell"))
    finally:
        from weave_nb.frontends.magics import unload_ipython_extension

        unload_ipython_extension(shell)  # removes this test's magics from the shared test shell
    assert result.format == "cloudformation" and (tmp_path / "magic" / "template.json").exists()
    assert "from-cell" not in (tmp_path / "magic" / "template.json").read_text()
    assert callable(export) and export is weave_nb.export and "export" in weave_nb.__all__
    made = export("demo", "terraform", provider="gcp", weave_file=str(weave_file), output=str(tmp_path / "api"))
    assert made.files == ("README.md", "demo-gcp.zip", "main.tf.json")
    import weave_nb.export.sam

    assert export.sam.FORMAT == "sam" and weave_nb.export is export  # the package's modules stay reachable
