"""The exports checked by the tools that own their formats.

- CloudFormation: ``cfn-lint`` passes, and a stack created from the template in
  moto's CloudFormation (a real moto_server; the zip uploaded to a moto S3
  bucket, its location passed as parameters) makes the same function, role,
  alias and log group as ``weave deploy`` (compared through boto3).
- SAM: ``aws-sam-translator`` transforms the template (after the step
  ``sam deploy`` runs first: the local ``CodeUri`` replaced by the S3 location it
  uploads to) and the result passes ``cfn-lint``.
- Terraform JSON: every resource, data source, argument and nested block is in
  the providers' documented schemas (``tests/data/terraform-schema-subset.json``);
  every reference names an emitted resource and a documented attribute. No
  Terraform run is possible here.
- checkov finds no failed check on the CloudFormation, SAM and Terraform outputs;
  every exception is a skip next to the resource, with its reason.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from export_tools import run_cfn_lint, run_checkov

from aws_servers import AwsWorld, FaultProxy, MotoServer, _fake_aws_env
from support import FakeSleep, free_port, http_answers

from test_export import CASES, FAKE_SECRET, FAKE_TOKEN, offline, values, weave_file  # noqa: F401 - fixtures shared

SCHEMA = json.loads((Path(__file__).parent / "data" / "terraform-schema-subset.json").read_text())


def _export(manager, weave_file, tmp_path, fmt, provider, extra, sub="out"):
    from weave_nb.export import export_deployment

    return export_deployment(manager, values(weave_file, provider, extra), fmt, tmp_path / sub)


def _ids(case) -> str:
    fmt, provider, extra = case
    return f"{fmt}-{provider}-" + ("-".join(f"{k}" for k in sorted(extra)) + ("-" + "-".join(
        f"{v}" for v in (extra.get("options") or {}).values()) if extra.get("options") else "") or "default")


AWS_CFN = [c for c in CASES if c[0] == "cloudformation"]
AWS_SAM = [c for c in CASES if c[0] == "sam"]
TERRAFORM = [c for c in CASES if c[0] == "terraform"]


# ----------------------------------------------------------------------------- cfn-lint and the SAM translator
@pytest.mark.parametrize("case", AWS_CFN, ids=_ids)
def test_cloudformation_passes_cfn_lint(manager, weave_file, offline, tmp_path, case):
    result = _export(manager, weave_file, tmp_path, *case)
    done = run_cfn_lint(result.folder / "template.json")
    assert done.returncode == 0, done.stdout + done.stderr


def _translate(template: Path, region: str, monkeypatch) -> dict:
    """What CloudFormation's SAM transform makes of the template, after ``sam deploy`` uploaded the zip."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names its own role: no managed policy is looked up
        def load(self) -> dict:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    doc = yaml.safe_load(template.read_text())
    code = doc["Resources"]["WeaveFunction"]["Properties"]["CodeUri"]
    assert (template.parent / code).is_file()  # the zip sam deploy uploads is beside the template
    doc["Resources"]["WeaveFunction"]["Properties"]["CodeUri"] = f"s3://sam-artifacts/{code}"
    return transform(doc, {}, NoManagedPolicies())


@pytest.mark.parametrize("case", AWS_SAM, ids=_ids)
def test_sam_transforms_and_the_result_passes_cfn_lint(manager, weave_file, offline, tmp_path, monkeypatch, case):
    result = _export(manager, weave_file, tmp_path, *case)
    out = _translate(result.folder / "template.yaml", "eu-west-1", monkeypatch)
    resources = out["Resources"]
    types = {v["Type"] for v in resources.values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::Version", "AWS::Lambda::Alias", "AWS::IAM::Role", "AWS::Logs::LogGroup"} <= types
    fn = resources["WeaveFunction"]["Properties"]
    assert fn["FunctionName"] == "weave-demo" and fn["Code"] == {"S3Bucket": "sam-artifacts", "S3Key": "demo-aws.zip"}
    assert resources["WeaveFunctionAliaslive"]["Properties"]["Name"] == "live"
    extra = case[2]
    if (extra.get("options") or {}).get("endpoint", "url") == "url":
        url = resources["WeaveFunctionUrl"]["Properties"]
        assert url["AuthType"] == ("NONE" if extra.get("public") else "AWS_IAM")
        assert url["TargetFunctionArn"] == {"Ref": "WeaveFunctionAliaslive"}
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(out, indent=1))
    done = run_cfn_lint(translated)
    assert done.returncode == 0, done.stdout + done.stderr


# ----------------------------------------------------------------------------- Terraform schemas
def _check_block(body: dict, schema: dict, where: str, problems: list[str]) -> None:
    arguments, blocks = set(schema.get("arguments", [])), schema.get("blocks", {})
    for key, value in body.items():
        if key == "//":
            continue
        if key in blocks:
            for item in value if isinstance(value, list) else [value]:
                _check_block(item, blocks[key], f"{where}.{key}", problems)
        elif key not in arguments:
            problems.append(f"{where}: {key!r} is not a documented argument or block")


def terraform_problems(doc: dict) -> list[str]:
    """Every resource type, argument, block and reference of ``doc`` not in the documented schema subset."""
    problems: list[str] = []
    meta = set(SCHEMA["meta_arguments"])
    for kind in ("resource", "data"):
        for rtype, named in doc.get(kind, {}).items():
            if rtype not in SCHEMA[kind]:
                problems.append(f"{kind} type {rtype} is not in the schema subset")
                continue
            for name, body in named.items():
                if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
                    problems.append(f"{rtype}.{name}: not a valid name")
                _check_block({k: v for k, v in body.items() if k not in meta}, SCHEMA[kind][rtype], f"{rtype}.{name}", problems)
    for pname, body in doc.get("provider", {}).items():
        _check_block(body, SCHEMA["provider"][pname], f"provider.{pname}", problems)
    emitted = {(t, n) for t, named in doc.get("resource", {}).items() for n in named}
    data = {(t, n) for t, named in doc.get("data", {}).items() for n in named}
    text = json.dumps(doc)
    for ref in re.findall(r"\$\{([^}]*)\}", text):
        for part in re.findall(r"\b(data\.)?((?:aws|google)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)", ref):
            is_data, rtype, name, attr = part
            if (rtype, name) not in (data if is_data else emitted):
                problems.append(f"reference to {rtype}.{name}, which is not emitted")
            elif attr not in SCHEMA["attributes"].get(rtype, []) and attr not in SCHEMA[("data" if is_data else "resource")][rtype].get("arguments", []):
                problems.append(f"reference to {rtype}.{name}.{attr}: not a documented attribute")
        for var in re.findall(r"\bvar\.([A-Za-z0-9_]+)", ref):
            if var not in doc.get("variable", {}):
                problems.append(f"var.{var} is not declared")
    for name, var in doc.get("variable", {}).items():
        if name.startswith("env_") and var.get("sensitive") is not True:
            problems.append(f"variable {name} is not sensitive")
    return problems


@pytest.mark.parametrize("case", TERRAFORM, ids=_ids)
def test_terraform_json_uses_only_documented_types_arguments_and_blocks(manager, weave_file, offline, tmp_path, case):
    result = _export(manager, weave_file, tmp_path, *case)
    doc = json.loads((result.folder / "main.tf.json").read_text())
    assert terraform_problems(doc) == []
    provider = case[1]
    wanted = {"aws": {"aws_iam_role", "aws_lambda_function", "aws_lambda_alias", "aws_cloudwatch_log_group"},
              "gcp": {"google_cloudfunctions2_function", "google_storage_bucket", "google_storage_bucket_object"}}[provider]
    assert wanted <= set(doc["resource"])
    if provider == "aws":
        fn = doc["resource"]["aws_lambda_function"]["weave"]
        assert fn["publish"] is True and fn["filename"].endswith("/demo-aws.zip") and (result.folder / "demo-aws.zip").is_file()
        assert doc["resource"]["aws_lambda_alias"]["live"]["function_version"] == "${aws_lambda_function.weave.version}"
        secrets = case[2].get("secrets", [])
        wanted_env = {"EXTRA_TOKEN", "OPENAI_API_KEY", "STYLE", "WEAVE_DEPLOYMENT"} - set(secrets)
        assert set(fn["environment"]["variables"]) == wanted_env | ({"WEAVE_SECRET_ARNS"} if secrets else set())
    else:
        obj = doc["resource"]["google_storage_bucket_object"]["source"]
        assert obj["source"].endswith("/demo-gcp.zip") and (result.folder / "demo-gcp.zip").is_file()


def test_the_schema_check_catches_a_wrong_argument():
    doc = {"resource": {"aws_lambda_function": {"weave": {"function_name": "x", "memory": 128, "environment": {"vars": {}}}},
                        "aws_lambda_funktion": {"x": {}}},
           "output": {"o": {"value": "${aws_lambda_alias.live.arn} ${var.nope}"}}}
    found = terraform_problems(doc)
    assert any("'memory'" in p for p in found) and any("'vars'" in p for p in found)
    assert any("aws_lambda_funktion" in p for p in found) and any("aws_lambda_alias.live" in p for p in found)
    assert any("var.nope" in p for p in found)


# ----------------------------------------------------------------------------- checkov
@pytest.mark.parametrize("framework", ["cloudformation", "terraform_json"])
def test_checkov_finds_no_failed_check(manager, weave_file, offline, tmp_path, framework):
    """Every case of the format(s) in one folder each, one checkov run per framework (findings name their file)."""
    from weave_nb.export import export_deployment

    cases = [c for c in CASES if (c[0] == "terraform") == (framework == "terraform_json")]
    for index, (fmt, provider, extra) in enumerate(cases):
        export_deployment(manager, values(weave_file, provider, extra), fmt, tmp_path / "all" / f"{index:02d}-{fmt}-{provider}")
    report = run_checkov(tmp_path / "all", framework)
    assert report.parsing_errors == 0 and report.passed > 0
    assert [str(f) for f in report.failed] == []
    assert report.skipped and all(reason.strip() for _, _, reason in report.skipped), report.skipped  # each says why


def test_checkov_runs_and_fails_an_unjustified_finding(tmp_path):
    """The fixture is not blind: a public Function URL without its skip comment fails."""
    (tmp_path / "main.tf.json").write_text(json.dumps({"resource": {"aws_lambda_function_url": {"open": {
        "function_name": "f", "authorization_type": "NONE"}}}}, indent=2))
    report = run_checkov(tmp_path, "terraform_json")
    assert [f.check_id for f in report.failed] == ["CKV_AWS_258"]


# ----------------------------------------------------------------------------- moto's CloudFormation vs weave deploy
@pytest.fixture
def aws_cfn(tmp_path, monkeypatch):
    """A moto_server with CloudFormation's AWS::Lambda::Alias (tests/moto_cfn_lambda.py), a proxy, fake credentials."""
    import subprocess
    import sys

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "moto_cfn_lambda.py"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**__import__("os").environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"})
    url = f"http://127.0.0.1:{port}"
    try:
        assert http_answers(f"{url}/moto-api/", 60), "the moto server did not start"
        proxy = FaultProxy(url).start()
        home = _fake_aws_env(monkeypatch, tmp_path, proxy.url)
        try:
            yield AwsWorld(moto=MotoServer(url), proxy=proxy, home=home, sleep=FakeSleep())
        finally:
            proxy.stop()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def _document(policy) -> dict:
    """A policy document as boto3 gives it: a dict, JSON text, or (moto, for a role made by CloudFormation) a Python repr."""
    import ast
    import urllib.parse

    if isinstance(policy, dict):
        return policy
    text = urllib.parse.unquote(policy)
    try:
        return json.loads(text)
    except ValueError:
        return ast.literal_eval(text)


def _snapshot(world, fname: str, role: str) -> dict:
    lam, iam, logs = world.client("lambda"), world.client("iam"), world.client("logs")
    found = lam.get_function(FunctionName=fname)
    cfg = found["Configuration"]
    alias = lam.get_alias(FunctionName=fname, Name="live")
    version = lam.get_function(FunctionName=fname, Qualifier=alias["FunctionVersion"])["Configuration"]
    marks = {k: v for k, v in (found.get("Tags") or {}).items() if k.startswith("weave-nb:")}
    role_info = iam.get_role(RoleName=role)["Role"]
    role_tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=role)["Tags"] if t["Key"].startswith("weave-nb:")}
    policy = iam.get_role_policy(RoleName=role, PolicyName="weave-nb-logs")["PolicyDocument"]
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{fname}")["logGroups"]
    sm = world.client("secretsmanager")
    secrets = {s["Name"]: {t["Key"]: t["Value"] for t in s.get("Tags") or [] if t["Key"].startswith("weave-nb:")}
               for s in sm.list_secrets()["SecretList"]}
    arns = json.loads((cfg.get("Environment") or {}).get("Variables", {}).get("WEAVE_SECRET_ARNS") or "{}")
    read = _document(iam.get_role_policy(RoleName=role, PolicyName="weave-nb-secrets")["PolicyDocument"]) if arns else {}
    return {
        "secrets": secrets,
        "secret_arns_named": {k: sm.describe_secret(SecretId=v)["Name"] for k, v in arns.items()},
        "secrets_policy_reads": sorted(sm.describe_secret(SecretId=a)["Name"] for a in read["Statement"][0]["Resource"]) if read else [],
        "role_policies": sorted(iam.list_role_policies(RoleName=role)["PolicyNames"]),
        "function": {k: cfg.get(k) for k in ("FunctionName", "Runtime", "Handler", "MemorySize", "Timeout", "Architectures",
                                              "CodeSha256", "Description")},
        "env_names": sorted((cfg.get("Environment") or {}).get("Variables") or {}),
        "role_of_function": cfg["Role"].rsplit("/", 1)[-1],
        "tags": marks,
        "alias": alias["Name"],
        "alias_code": version["CodeSha256"],
        "role": role_info["RoleName"],
        "role_tags": role_tags,
        "trust": role_info["AssumeRolePolicyDocument"],
        "log_policy": _document(policy),
        "log_group": [(g["logGroupName"], g.get("retentionInDays")) for g in groups],
    }


def test_a_cloudformation_stack_in_moto_makes_what_weave_deploy_makes(aws_cfn, weave_file, monkeypatch, tmp_path):
    """Deploy, read back, undeploy; then create the exported stack and read back the same way.

    moto's CloudFormation lacks ``AWS::Lambda::Alias`` (added by tests/moto_cfn_lambda.py) and ``AWS::Lambda::Url`` (a stack with it fails in moto, not on AWS), so
    both sides use ``--endpoint none``; the URL and its permissions are checked by cfn-lint and the SAM tests.
    """
    from weave_nb.export import export_deployment

    aws = aws_cfn
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_SECRET)
    settings = {"name": "demo", "provider": "aws", "weave_file": str(weave_file), "region": "us-east-1",
                "memory_mb": 512, "timeout_seconds": 45, "env": {"EXTRA_TOKEN": FAKE_TOKEN}, "secrets": ["EXTRA_TOKEN"],
                "options": {"log_retention_days": 14, "architecture": "arm64", "endpoint": "none"}}
    mgr = aws.manager()
    mgr.deploy(dict(settings))
    deployed = _snapshot(aws, "weave-demo", "weave-nb-demo")
    mgr.destroy("demo", "aws", purge_logs=True)
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
    assert not aws.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/weave-demo")["logGroups"]

    result = export_deployment(mgr, dict(settings), "cloudformation", tmp_path / "cfn")
    template = json.loads((result.folder / "template.json").read_text())
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="weave-artifacts")
    key = template["Parameters"]["ArtifactKey"]["Default"]
    s3.put_object(Bucket="weave-artifacts", Key=key, Body=(result.folder / "demo-aws.zip").read_bytes())
    params = [{"ParameterKey": "ArtifactBucket", "ParameterValue": "weave-artifacts"}]
    params += [{"ParameterKey": p, "ParameterValue": "stack-value"} for p in template["Parameters"] if p.startswith(("Env", "Secret"))]
    cfn = aws.client("cloudformation")
    cfn.create_stack(StackName="weave-demo", TemplateBody=json.dumps(template), Parameters=params,
                     Capabilities=["CAPABILITY_NAMED_IAM"])
    stack = cfn.describe_stacks(StackName="weave-demo")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    stacked = _snapshot(aws, "weave-demo", "weave-nb-demo")
    assert stacked == deployed
    assert deployed["function"]["MemorySize"] == 512 and deployed["function"]["Architectures"] == ["arm64"]
    assert deployed["secret_arns_named"] == {"EXTRA_TOKEN": "weave/demo/EXTRA_TOKEN"} and list(deployed["secrets"]) == ["weave/demo/EXTRA_TOKEN"]
    assert deployed["secrets_policy_reads"] == ["weave/demo/EXTRA_TOKEN"]
    assert deployed["env_names"] == ["OPENAI_API_KEY", "STYLE", "WEAVE_DEPLOYMENT", "WEAVE_SECRET_ARNS"] and deployed["log_group"] == [("/aws/lambda/weave-demo", 14)]
    cfg = aws.client("lambda").get_function(FunctionName="weave-demo")["Configuration"]
    variables = cfg["Environment"]["Variables"]
    assert {variables["OPENAI_API_KEY"], variables["STYLE"], variables["WEAVE_DEPLOYMENT"]} == {"stack-value", "demo"}
    value = aws.client("secretsmanager").get_secret_value(SecretId="weave/demo/EXTRA_TOKEN")["SecretString"]
    assert value == "stack-value"  # the secret's value came from the NoEcho parameter, not from the template
    cfn.delete_stack(StackName="weave-demo")  # and the stack removes what it made
    assert aws.counts() == {"functions": 0, "roles": 0, "apis": 0}
