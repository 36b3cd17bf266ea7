"""Managed secrets on AWS: Secrets Manager secrets ``weave/<deployment>/<NAME>`` and the role's read access.

For each ``--secret NAME`` the plan holds a step that creates the secret (or
puts a new value, when the value changed), with the ownership marks as tags;
then the inline policy ``weave-nb-secrets`` on the execution role, allowing
``secretsmanager:GetSecretValue`` on exactly those secrets' ARNs. The
function's environment holds no value, only ``WEAVE_SECRET_ARNS`` (a JSON
object NAME -> ARN), which the runtime resolves at cold start
(:mod:`weave_runtime.secrets`). Values are read from ``ctx.env`` when a step
runs; they are never in a plan, a journal row, a result or the inventory.
Secrets a deployment no longer names are deleted (without recovery window),
and so are all of them on undeploy, but only those carrying this inventory's
marks.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping

from ...core import ownership
from ...core.plan import PlannedStep
from ...core.secrets import SECRET_ARNS_VAR
from .api import _Service

if TYPE_CHECKING:
    from ...core.executor import Run
    from ..base import DeployContext
    from .client import AwsClient

POLICY_NAME = "weave-nb-secrets"


def secret_id(deployment: str, name: str) -> str:
    """The Secrets Manager name of secret ``name`` of ``deployment``."""
    return f"weave/{deployment}/{name}"


def secrets_policy(arns: list[str]) -> dict[str, Any]:
    """The role's inline policy: ``GetSecretValue`` on these ARNs and nothing else."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadOwnSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": sorted(arns)}]}


def arns_env(arns: Mapping[str, str]) -> str:
    """The value of ``WEAVE_SECRET_ARNS``: compact JSON, keys sorted (so an unchanged deploy compares equal)."""
    return json.dumps(dict(sorted(arns.items())), separators=(",", ":"))


class SecretsManager(_Service):
    """AWS Secrets Manager: the few operations managed secrets need."""

    service = "secretsmanager"

    def find(self, secret: str) -> dict[str, Any] | None:
        """``DescribeSecret`` (ARN, tags, versions), or ``None``; a secret pending deletion counts as none."""
        found = self._find("describe_secret", SecretId=secret)
        return None if found is None or found.get("DeletedDate") else found

    def value(self, secret: str) -> str | None:
        """The current value (``SecretString``), or ``None``. Keep it in memory only."""
        found = self._find("get_secret_value", SecretId=secret)
        return None if found is None else found.get("SecretString")

    def create(self, name: str, value: str, tags: Mapping[str, str], description: str) -> dict[str, Any]:
        return self._call("create_secret", Name=name, SecretString=value, Description=description,
                          Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def put_value(self, secret: str, value: str) -> str:
        """A new current version holding ``value``; returns its version id."""
        return self._call("put_secret_value", SecretId=secret, SecretString=value)["VersionId"]

    def make_current(self, secret: str, version: str, instead_of: str) -> None:
        self._call("update_secret_version_stage", SecretId=secret, VersionStage="AWSCURRENT",
                   MoveToVersionId=version, RemoveFromVersionId=instead_of)

    def delete(self, secret: str) -> None:
        """Delete at once (no recovery window); a secret already gone is fine."""
        self._find("delete_secret", SecretId=secret, ForceDeleteWithoutRecovery=True)

    def named(self, prefix: str) -> list[dict[str, Any]]:
        """Every secret whose name starts with ``prefix`` (with tags)."""
        found = self._call("list_secrets", Filters=[{"Key": "name", "Values": [prefix]}], MaxResults=100)
        return [s for s in found.get("SecretList", []) if s.get("Name", "").startswith(prefix)]


def store(client: "AwsClient") -> SecretsManager:
    """The Secrets Manager facade of ``client``."""
    return SecretsManager(client)


def _tags(found: Mapping[str, Any] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in (found or {}).get("Tags") or []}


def plan_secrets(client: "AwsClient", config: Any, ctx: "DeployContext", role: str | None,
                 tags: dict[str, str]) -> tuple[list[PlannedStep], dict[str, str], list[str]]:
    """The secret and policy steps of a deploy, and the function's environment.

    Args:
        client: the run's AWS client.
        config: the deployment config (``config.secrets`` names the secrets).
        ctx: the deploy context; ``ctx.env`` holds the values (and gets ``WEAVE_SECRET_ARNS``).
        role: the execution role of ours, or ``None`` when the user gave one (no policy step then).
        tags: the ownership marks.

    Returns:
        ``(steps, function environment, notes)``.

    Raises:
        ForeignResource: a secret of that name exists without our marks (and not ``--adopt``).
    """
    names = list(config.secrets)
    steps: list[PlannedStep] = []
    if not names and not any(r.kind in ("secret", "role-secrets-policy") for r in ctx.resources()):
        return steps, dict(ctx.env), []  # no secrets now or before: no call at all
    sm = store(client)
    arns: dict[str, str] = {}
    for name in names:
        sid = secret_id(config.name, name)
        found = sm.find(sid)
        adopt = found is not None and ownership.check("tag", f"secret {sid}", _tags(found), ctx.owner, config.adopt, config.name)
        resource = f"secret {sid}"
        if found is None:
            steps.append(PlannedStep(key=f"secret-{name}", resource=resource, action="create", detail=f"the value of {name}",
                                     call="create_secret", undo="delete_secret",
                                     params={"secret_id": sid, "env_name": name, "tags": tags,
                                             "description": f"secret {name} of the weave-nb deployment {config.name}"}))
            continue
        arns[name] = found["ARN"]
        current = next((v for v, stages in (found.get("VersionIdsToStages") or {}).items() if "AWSCURRENT" in stages), None)
        same = not adopt and sm.value(sid) == ctx.env.get(name)  # compared in memory; never shown or kept
        steps.append(PlannedStep(key=f"secret-{name}", resource=resource, action="adopt" if adopt else "no-change" if same else "update",
                                 detail=f"the value of {name}" + ("" if same else " changed"),
                                 call=None if same else "put_secret_value", undo=None if same else "restore_secret_value",
                                 params={} if same else {"secret_id": sid, "env_name": name, "arn": found["ARN"],
                                                         "previous_version": current, "tags": tags if adopt else None}))
    for rec in ctx.resources():  # secrets an earlier deploy made that this one no longer names
        if rec.kind == "secret" and rec.attrs.get("env_name") not in names:
            steps.append(PlannedStep(key=f"remove-secret-{rec.attrs.get('env_name')}", resource=f"secret {rec.attrs.get('secret_id')}",
                                     action="delete", detail="no longer named by --secret", call="delete",
                                     params={"kind": "secret", "id": rec.id, "function_name": ""}))
    notes: list[str] = []
    if role is not None:
        had = client.api.iam.find_role_policy(role, POLICY_NAME) if _role_exists(client, role) else None
        if names:
            wanted = secrets_policy(list(arns.values())) if len(arns) == len(names) else None
            same = had is not None and wanted is not None and had == wanted
            action = "no-change" if same else "update" if had is not None else "create"
            steps.append(PlannedStep(key="role-secrets-policy", resource=f"inline policy {POLICY_NAME} on {role}", action=action,
                                     detail="secretsmanager:GetSecretValue on these secrets only",
                                     call=None if same else "put_secrets_policy",
                                     undo=None if same else "restore_secrets_policy" if had is not None else "delete_secrets_policy",
                                     params={} if same else {"role_name": role, "names": names, "arns": arns,
                                                             **({"previous_document": had} if had is not None else {})}))
        elif had is not None:
            steps.append(PlannedStep(key="role-secrets-policy", resource=f"inline policy {POLICY_NAME} on {role}", action="delete",
                                     detail="no secrets any more", call="delete",
                                     params={"kind": "role-secrets-policy", "id": POLICY_NAME, "role": role, "function_name": ""}))
    elif names:
        notes.append(f"the execution role you gave must allow secretsmanager:GetSecretValue on the secrets weave/{config.name}/*")
    plain = {k: v for k, v in ctx.env.items() if k not in names}
    if names:
        # a secret this run creates hands its ARN over when its step runs (apply_create_secret)
        ctx.env[SECRET_ARNS_VAR] = plain[SECRET_ARNS_VAR] = arns_env({n: arns.get(n, "") for n in names})
    return steps, plain, notes


def _role_exists(client: "AwsClient", role: str) -> bool:
    return client.api.iam.find_role(role) is not None


class AwsSecretApply:
    """Apply and undo functions of the secret steps (mixed into the AWS provider)."""

    def _run_client(self, run: "Run") -> "AwsClient":  # provided by the provider
        raise NotImplementedError

    def _hand_over(self, run: "Run", name: str, arn: str) -> None:
        arns = json.loads(run.ctx.env.get(SECRET_ARNS_VAR) or "{}")
        arns[name] = arn
        run.ctx.env[SECRET_ARNS_VAR] = arns_env(arns)

    def apply_create_secret(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Create the secret with the value of ``env_name`` (read from the context, never from the plan)."""
        p, sm = step.params, store(self._run_client(run))
        value = run.ctx.env[p["env_name"]]
        found = sm.find(p["secret_id"])  # a lost answer of an earlier attempt: ours, so take it
        if found is not None and ownership.judge("tag", _tags(found), run.ctx.owner).ours:
            arn = found["ARN"]
            sm.put_value(p["secret_id"], value)
        else:
            arn = sm.create(p["secret_id"], value, p["tags"], p["description"])["ARN"]
        run.ctx.add_resource("secret", arn, secret_id=p["secret_id"], env_name=p["env_name"])
        self._hand_over(run, p["env_name"], arn)
        return {f"secret_arn:{p['env_name']}": arn}

    def undo_delete_secret(self, run: "Run", step: PlannedStep, result: Any) -> None:
        arn = (result or {}).get(f"secret_arn:{step.params['env_name']}") or step.params["secret_id"]
        store(self._run_client(run)).delete(arn)
        run.ctx.remove_resource("secret", arn)

    def apply_put_secret_value(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Put the new value as the current version (tagging it first when it is adopted)."""
        p, client = step.params, self._run_client(run)
        if p.get("tags"):
            client.call("secretsmanager", "tag_resource", SecretId=p["arn"], Tags=[{"Key": k, "Value": v} for k, v in p["tags"].items()])
        version = store(client).put_value(p["secret_id"], run.ctx.env[p["env_name"]])
        run.ctx.add_resource("secret", p["arn"], secret_id=p["secret_id"], env_name=p["env_name"], **({"adopted": True} if p.get("tags") else {}))
        return {"version": version}

    def undo_restore_secret_value(self, run: "Run", step: PlannedStep, result: Any) -> None:
        """Make the version that was current before this run current again."""
        p = step.params
        if p.get("previous_version") and (result or {}).get("version"):
            store(self._run_client(run)).make_current(p["secret_id"], p["previous_version"], result["version"])

    def apply_put_secrets_policy(self, run: "Run", step: PlannedStep) -> dict[str, Any]:
        """Allow the role ``GetSecretValue`` on exactly this deployment's secrets (ARNs from the plan or this run)."""
        p = step.params
        arns = [p["arns"].get(n) or run.outputs[f"secret_arn:{n}"] for n in p["names"]]
        self._run_client(run).api.iam.put_role_policy(p["role_name"], POLICY_NAME, secrets_policy(arns))
        run.ctx.add_resource("role-secrets-policy", POLICY_NAME, role=p["role_name"])
        return {}

    def undo_delete_secrets_policy(self, run: "Run", step: PlannedStep, result: Any) -> None:
        self._run_client(run).api.iam.delete_role_policy(step.params["role_name"], POLICY_NAME)
        run.ctx.remove_resource("role-secrets-policy", POLICY_NAME)

    def undo_restore_secrets_policy(self, run: "Run", step: PlannedStep, result: Any) -> None:
        p = step.params
        self._run_client(run).api.iam.put_role_policy(p["role_name"], POLICY_NAME, p["previous_document"])


def destroy_todo(client: "AwsClient", ctx: "DeployContext", todo: dict[tuple[str, str], dict]) -> None:
    """Add to an undeploy's ``todo`` every secret of this deployment that carries this inventory's marks.

    Secrets found by name but made by someone else are left alone (never deleted).
    """
    for found in store(client).named(f"weave/{ctx.name}/"):
        if ownership.judge("tag", _tags(found), ctx.owner).ours:
            todo.setdefault(("secret", found["ARN"]), {})
