"""The README.md each export folder gets: what is in it and the deploy commands of the format's own tool."""

from __future__ import annotations

from typing import Any

from .aws_model import AwsModel, parameter_names, secret_id


def _env_lines(names: tuple[str, ...], how: str) -> str:
    if not names:
        return "The weave needs no environment variables.\n"
    listed = ", ".join(f"`{n}`" for n in names)
    return f"Environment variables (values are not in these files; {how}): {listed}.\n"


def _secrets(m: AwsModel, fmt: str) -> str:
    if not m.secret_names:
        return ""
    ids = ", ".join(f"`{secret_id(m.name, k)}`" for k in m.secret_names)
    how = ("`TF_VAR_secret_NAME`" if fmt == "terraform" else
           "the NoEcho parameters " + ", ".join(f"`{p}`" for p in parameter_names(m.secret_names, "Secret").values()))
    return (f"\nManaged secrets ({', '.join(f'`{k}`' for k in m.secret_names)}) become the Secrets Manager secrets {ids}, "
            f"as a deploy makes them; their values come from {how}. The function gets their ARNs in "
            "`WEAVE_SECRET_ARNS` and may read only them (the role's `weave-nb-secrets` policy).\n")


def _endpoint(m: AwsModel) -> str:
    if m.endpoint == "none":
        return "No HTTP endpoint: call it with `aws lambda invoke --function-name {0}:live`.\n".format(m.function)
    what = "Function URL" if m.endpoint == "url" else "HTTP API"
    if m.public:
        return f"The {what} is public (--public): anyone may call it.\n"
    service = "lambda" if m.endpoint == "url" else "execute-api"
    return f"The {what} is private (AWS_IAM): sign calls with SigV4 for service `{service}` (or use `weave invoke`).\n"


def aws_readme(fmt: str, m: AwsModel) -> str:
    """The README of a sam, cloudformation or terraform (aws) export."""
    head = (f"# {m.name}: {fmt} export (aws)\n\n"
            f"What `weave deploy {m.name} --provider aws` makes: the role `{m.role or m.role_arn}`, the Lambda function "
            f"`{m.function}` ({m.runtime}, {m.architecture}, {m.memory} MB, {m.timeout} s) from `{m.artifact}`, "
            f"a published version, the alias `live`, the log group `{m.log_group}` ({m.retention} days)"
            f"{'' if m.endpoint == 'none' else ' and its endpoint'}, all tagged with the weave-nb ownership marks.\n\n")
    names = parameter_names(m.env_names, "Env")
    if fmt == "sam":
        overrides = " ".join(f"{p}=..." for p in [*names.values(), *parameter_names(m.secret_names, "Secret").values()])
        body = ("## Deploy with the SAM CLI\n\n```bash\n"
                f"sam deploy --template-file template.yaml --stack-name weave-{m.name} --region {m.region} \\\n"
                f"  --capabilities CAPABILITY_NAMED_IAM --resolve-s3"
                + (f" \\\n  --parameter-overrides {overrides}" if overrides else "") + "\n```\n\n"
                "`sam deploy` uploads the zip (`CodeUri`) and publishes a new version on `live` when the code changes.\n"
                f"Remove it with `sam delete --stack-name weave-{m.name}`.\n\n")
        body += _env_lines(m.env_names, "give each as a NoEcho parameter: " + ", ".join(f"`{p}` for {e}" for e, p in names.items()))
    elif fmt == "cloudformation":
        overrides = "".join(f" {p}=..." for p in [*names.values(), *parameter_names(m.secret_names, "Secret").values()])
        body = ("## Deploy with the AWS CLI\n\n```bash\n"
                f"aws s3 cp {m.artifact} s3://YOUR-BUCKET/{m.artifact_key}\n"
                f"aws cloudformation deploy --template-file template.json --stack-name weave-{m.name} --region {m.region} \\\n"
                f"  --capabilities CAPABILITY_NAMED_IAM \\\n"
                f"  --parameter-overrides ArtifactBucket=YOUR-BUCKET{overrides}\n```\n\n"
                f"The key `{m.artifact_key}` (the template's `ArtifactKey` default) holds the package's content hash: "
                "a changed export names a new key, so CloudFormation updates the code, publishes a new version and "
                f"moves `live` to it. Remove it with `aws cloudformation delete-stack --stack-name weave-{m.name}`.\n\n")
        body += _env_lines(m.env_names, "give each as a NoEcho parameter: " + ", ".join(f"`{p}` for {e}" for e, p in names.items()))
    else:
        body = ("## Deploy with Terraform\n\n```bash\nterraform init\n"
                + "".join(f"export TF_VAR_env_{e}=...   # the value of {e}\n" for e in m.env_names)
                + "".join(f"export TF_VAR_secret_{e}=...   # the value of the managed secret {e}\n" for e in m.secret_names)
                + "terraform plan -out weave.tfplan\nterraform apply weave.tfplan\n```\n\n"
                f"Remove it with `terraform destroy`. `main.tf.json` is Terraform's JSON syntax; the zip is `{m.artifact}`.\n"
                "The variables of the environment are `sensitive`: Terraform keeps their values out of its output, "
                "but its state holds them (keep the state in a private backend).\n\n")
        body += _env_lines(m.env_names, "set each as `TF_VAR_env_NAME`")
    return head + body + _secrets(m, fmt) + "\n" + _endpoint(m)


def gcp_readme(src: Any, function_id: str, region: str, artifact: str, public: bool) -> str:
    """The README of a terraform export on gcp."""
    env = "".join(f"export TF_VAR_env_{e}=...   # the value of {e}\n" for e in src.env_names)
    env += "".join(f"export TF_VAR_secret_{e}=...   # the value of the managed secret {e}\n" for e in src.secret_names)
    access = ("public (--public): anyone may call the URL" if public
              else "private: callers need an identity token (`gcloud auth print-identity-token`) or `weave invoke`")
    return (f"# {src.name}: terraform export (gcp)\n\n"
            f"What `weave deploy {src.name} --provider gcp` makes: the Cloud Functions (2nd gen) HTTP function "
            f"`{function_id}` in `{region}`, built from `{artifact}` (uploaded to a private source bucket), "
            "labelled with the weave-nb ownership marks.\n\n"
            "## Deploy with Terraform\n\n```bash\nterraform init\nexport TF_VAR_project=YOUR-PROJECT\n" + env
            + "terraform plan -out weave.tfplan\nterraform apply weave.tfplan\n```\n\n"
            "Remove it with `terraform destroy`. The variables of the environment are `sensitive`: Terraform keeps "
            "their values out of its output, but its state holds them (keep the state in a private backend).\n\n"
            f"The function is {access}.\n"
            + ("\nManaged secrets are Secret Manager secrets given to the function by reference (version `latest`); as "
               "with `weave deploy`, grant the function's runtime service account `roles/secretmanager.secretAccessor` "
               "on them once.\n" if src.secret_names else ""))
