"""The AWS apply and undo functions: each carries out one planned step, exactly as the plan says.

``step.call`` names ``apply_<call>`` and ``step.undo`` names ``undo_<undo>``
(see :class:`~weave_nb.core.executor.Executor`). None of them observes the
remote state to decide what to do: the planner did that. A parameter that is
``None`` in the plan is a value an earlier step of the same run produces
(the new role's ARN, the published version, the new API's id...), read from
``run.outputs``. Environment values are never in a plan: they are read here
from ``run.ctx.env`` by the names the plan lists.

Creates whose answer may be lost (a dropped connection after AWS made the
resource) go through :meth:`AwsClient.create`, which looks for the resource
by name and our ownership marks before trying again, so a lost answer never
makes a second resource; an ``already exists`` answer is accepted only for a
resource carrying this deployment's marks.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ...core.errors import DeploymentFailed
from ...core.private_files import private_dir
from .client import AwsClient, error_code
from .endpoint import api_source_arn
from .resources import delete_resource, delete_role, role_not_ready
from .settings import ALIAS, TRUST_POLICY, account_of, code_sha256, log_policy_document

if TYPE_CHECKING:
    from ...core.executor import Run
    from ...core.plan import PlannedStep


def _ours(found: dict[str, str] | None, tags: dict[str, str]) -> bool:
    """True when ``found`` carries every mark in ``tags`` (this deployment, this inventory)."""
    return bool(found) and all(found.get(k) == v for k, v in tags.items())


def _param(run: "Run", step: "PlannedStep", key: str) -> Any:
    """``step.params[key]``, or when the plan left it ``None``, the value an earlier step of this run produced."""
    value = step.params.get(key)
    return run.outputs[key] if value is None else value


class AwsApply:
    """Apply and undo functions of :class:`~weave_nb.providers.aws.provider.AwsProvider`."""

    def _run_client(self, run: "Run") -> AwsClient:  # provided by the provider
        raise NotImplementedError

    # -- local package -------------------------------------------------------------
    def apply_keep_zip(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Write the package under ``$WEAVE_HOME/aws/<name>/`` (``weave invoke --local`` runs it)."""
        path = Path(step.params["path"])
        private_dir(path.parent)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            assert run.artifact is not None
            run.artifact.write(tmp)
            tmp.replace(path)
        return {"zip": str(path)}

    # -- role ------------------------------------------------------------------------
    def apply_create_role(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        client, p = self._run_client(run), step.params
        name, tags = p["role_name"], p["tags"]

        def find() -> dict | None:
            role = client.api.iam.find_role(name)
            return {"Role": role} if role and _ours({t["Key"]: t["Value"] for t in role.get("Tags") or []}, tags) else None

        try:
            role = client.api.iam.create_role(name, TRUST_POLICY, p["description"], tags, find)
        except ClientError as exc:
            if error_code(exc) != "EntityAlreadyExists":
                raise
            found = find()  # made by an earlier attempt of ours whose answer was lost, or by someone else
            if found is None:
                raise DeploymentFailed(f"IAM role {name} was made by someone else since the plan was made",
                                       "plan again: the plan checks who owns it") from None
            role = found["Role"]
        run.ctx.add_resource("role", name, arn=role["Arn"])
        return {"role_arn": role["Arn"]}

    def undo_delete_role(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        delete_role(self._run_client(run), step.params["role_name"])
        run.ctx.remove_resource("role", step.params["role_name"])

    def apply_put_role_policy(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Put the inline log policy: the function's own log group only (see :func:`.settings.log_policy_document`).

        ``account_id`` is ``None`` in the plan when this run creates the role; it is then read from
        the ARN the ``role`` step handed over.
        """
        p = step.params
        account = p["account_id"] or account_of(run.outputs["role_arn"])
        document = log_policy_document(p["region"], account, p["function_name"])
        self._run_client(run).api.iam.put_role_policy(p["role_name"], p["policy_name"], document)
        run.ctx.add_resource("role-log-policy", p["policy_name"], role=p["role_name"])
        return {}

    def undo_delete_role_policy(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        """Remove the inline policy this run created."""
        p = step.params
        self._run_client(run).api.iam.delete_role_policy(p["role_name"], p["policy_name"])
        run.ctx.remove_resource("role-log-policy", p["policy_name"])

    def undo_restore_role_policy(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        """Put back the document the inline policy had before this run replaced it."""
        p = step.params
        self._run_client(run).api.iam.put_role_policy(p["role_name"], p["policy_name"], p["previous_document"])

    def apply_detach_policy(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Detach a managed policy (AWSLambdaBasicExecutionRole, attached by older deploys) and forget it."""
        p = step.params
        self._run_client(run).api.iam.detach_role_policy(p["role_name"], p["policy_arn"])
        run.ctx.remove_resource("role-policy", p["policy_arn"])
        return {}

    def undo_attach_policy(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        p = step.params
        self._run_client(run).api.iam.attach_role_policy(p["role_name"], p["policy_arn"])
        run.ctx.add_resource("role-policy", p["policy_arn"], role=p["role_name"])

    # -- adoption (only when the user asked: --adopt / adopt=True) ----------------------
    def apply_adopt(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Put our ownership marks on a resource that exists; it is recorded as adopted (rollback never deletes it)."""
        client, p = self._run_client(run), step.params
        kind, rid, arn, tags = p["kind"], p["id"], p["arn"], p["tags"]
        if kind == "role":
            client.api.iam.tag_role(rid, tags)
            run.ctx.add_resource("role", rid, arn=arn, adopted=True)
            return {"role_arn": arn}
        if kind == "function":
            client.api.lam.tag(arn, tags)
            run.ctx.add_resource("function", rid, arn=arn, region=client.region, adopted=True)
            return {"function_arn": arn}
        client.api.apigw.tag(arn, tags)
        run.ctx.add_resource("api", rid, endpoint=p.get("endpoint"), adopted=True)
        return {"api_id": rid}

    # -- function ----------------------------------------------------------------------
    def _function_settings(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        p = step.params
        env = {k: run.ctx.env[k] for k in p["env_names"]}
        env["WEAVE_DEPLOYMENT"] = run.ctx.name  # named in every request record (and its EMF dimension)
        out = {"Runtime": p["runtime"], "Handler": p["handler"], "MemorySize": p["memory"], "Timeout": p["timeout"],
               "Environment": {"Variables": env}}
        role = step.params.get("role_arn") or run.outputs.get("role_arn")
        if role:
            out["Role"] = role
        return out

    def _zip(self, run: "Run", step: "PlannedStep") -> bytes:
        assert run.artifact is not None
        data = run.artifact.data
        if code_sha256(data) != step.params["code_sha256"]:
            raise DeploymentFailed("the package changed since the plan was made", "plan and deploy again")
        return data

    def apply_create_function(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Create the function, retrying while IAM has not yet propagated a new role; wait until Active."""
        client, p = self._run_client(run), step.params
        fname, tags = p["function_name"], p["tags"]
        params = dict(self._function_settings(run, step), FunctionName=fname, Code={"ZipFile": self._zip(run, step)},
                      Architectures=[p["architecture"]], Tags=tags, Publish=False, PackageType="Zip",
                      Description=p["description"])

        def find() -> dict | None:
            found = client.api.lam.find_function(fname)
            return found["Configuration"] if found and _ours(found.get("Tags"), tags) else None

        waited, delay = 0.0, 1.0
        while True:
            try:
                conf = client.api.lam.create_function(find, **params)
                break
            except ClientError as exc:
                if error_code(exc) == "ResourceConflictException" and (conf := find()) is not None:
                    break  # an earlier attempt of ours made it
                if not role_not_ready(exc):
                    raise
                if waited >= float(p["propagation_seconds"]):
                    raise DeploymentFailed(
                        f"Lambda could not assume the execution role after {int(waited)}s",
                        "check the role's trust policy names lambda.amazonaws.com, then deploy again",
                    ) from None
                run.ctx.log(f"the new role is not usable by Lambda yet; retrying in {delay:.0f}s", step.key)
                run.ctx.sleep(delay)
                waited += delay
                delay = min(delay * 2, 8.0)
        run.ctx.add_resource("function", fname, arn=conf["FunctionArn"], region=client.region)
        conf = client.api.lam.wait_active(fname)["Configuration"]
        return {"function_arn": conf["FunctionArn"]}

    def undo_delete_function(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        fname = step.params["function_name"]
        self._run_client(run).api.lam.delete_function(fname)
        run.ctx.remove_resource("function", fname)

    def apply_update_function(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Update code and/or configuration in place as planned, waiting for each update to finish."""
        lam, p = self._run_client(run).api.lam, step.params
        fname = p["function_name"]
        if p["busy"]:  # an update from elsewhere is still running: Lambda refuses a second one meanwhile
            lam.wait_active(fname)
            lam.wait_updated(fname)
        if p["code"]:
            lam.update_code(fname, self._zip(run, step), p["architecture"])
            lam.wait_updated(fname)
        if p["configuration"]:
            lam.update_configuration(fname, self._function_settings(run, step))
            lam.wait_updated(fname)
        return {}

    def apply_publish(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Publish ``$LATEST`` as a new version, guarded by the planned code hash."""
        p = step.params
        version = self._run_client(run).api.lam.publish_version(p["function_name"], p["code_sha256"])
        run.ctx.add_resource("version", version, function=p["function_name"])
        return {"version": version}

    def undo_delete_version(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        fname, version = step.params["function_name"], result["version"]
        self._run_client(run).api.lam.delete_function(fname, version)
        run.ctx.remove_resource("version", version)

    # -- alias ---------------------------------------------------------------------------
    def apply_create_alias(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        lam, p = self._run_client(run).api.lam, step.params
        version = str(_param(run, step, "version"))
        try:
            out = lam.create_alias(p["function_name"], p["alias"], version)
        except ClientError as exc:  # a lost answer: the retry finds the alias made
            if error_code(exc) != "ResourceConflictException":
                raise
            out = lam.update_alias(p["function_name"], p["alias"], version)
        run.ctx.add_resource("alias", p["alias"], function=p["function_name"], version=version)
        return {"alias_arn": out["AliasArn"]}

    def undo_delete_alias(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        p = step.params
        self._run_client(run).api.lam.delete_alias(p["function_name"], p["alias"])
        run.ctx.remove_resource("alias", p["alias"])

    def apply_point_alias(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        p = step.params
        version = str(_param(run, step, "version"))
        out = self._run_client(run).api.lam.update_alias(p["function_name"], p["alias"], version)
        run.ctx.add_resource("alias", p["alias"], function=p["function_name"], version=version)
        return {"alias_arn": out["AliasArn"]}

    def undo_restore_alias(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        """Move the alias back to the version it served before this run."""
        p = step.params
        self._run_client(run).api.lam.update_alias(p["function_name"], p["alias"], p["previous_version"])
        run.ctx.add_resource("alias", p["alias"], function=p["function_name"], version=p["previous_version"])

    # -- Function URL and permissions ------------------------------------------------------
    def apply_create_url(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        lam, p = self._run_client(run).api.lam, step.params
        url = lam.create_url(p["function_name"], p["qualifier"], p["auth_type"],
                             find=lambda: lam.find_url(p["function_name"], p["qualifier"]))
        run.ctx.add_resource("function-url", url, qualifier=p["qualifier"], auth=p["auth_type"])
        return {"url": url}

    def undo_delete_url(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        p = step.params
        self._run_client(run).api.lam.delete_url(p["function_name"], p["qualifier"])
        run.ctx.remove_resource("function-url", result["url"])

    def apply_update_url(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        p = step.params
        url = self._run_client(run).api.lam.update_url(p["function_name"], p["qualifier"], p["auth_type"])
        run.ctx.add_resource("function-url", url, qualifier=p["qualifier"], auth=p["auth_type"])
        return {"url": url}

    def undo_restore_url(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        p = step.params
        self._run_client(run).api.lam.update_url(p["function_name"], p["qualifier"], p["previous_auth_type"])
        run.ctx.add_resource("function-url", result["url"], qualifier=p["qualifier"], auth=p["previous_auth_type"])

    def apply_add_permission(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        client, p = self._run_client(run), step.params
        extra: dict[str, Any] = {}
        if p.get("function_url_auth_type"):
            extra["FunctionUrlAuthType"] = p["function_url_auth_type"]
        if p.get("invoked_via_function_url"):
            extra["InvokedViaFunctionUrl"] = True
        if "api_id" in p:
            extra["SourceArn"] = api_source_arn(run.outputs.get("alias_arn") or p["alias_arn"], _param(run, step, "api_id"))
        try:
            client.api.lam.add_permission(p["function_name"], p["qualifier"], p["sid"], p["action"], p["principal"], **extra)
        except ClientError as exc:  # a lost answer: the retry finds our statement there
            if error_code(exc) != "ResourceConflictException":
                raise
        run.ctx.add_resource("permission", p["sid"], qualifier=p["qualifier"])
        return {}

    def undo_remove_permission(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        self.apply_remove_permission(run, step)

    def apply_remove_permission(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        p = step.params
        self._run_client(run).api.lam.remove_permission(p["function_name"], p["qualifier"], p["sid"])
        run.ctx.remove_resource("permission", p["sid"])
        return {}

    # -- HTTP API ------------------------------------------------------------------------
    def apply_create_api(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        client, p = self._run_client(run), step.params
        apigw = client.api.apigw

        def find() -> dict | None:  # API names are not unique: find ours by name and marks
            return next((a for a in apigw.list_apis() if a.get("Name") == p["name"] and _ours(a.get("Tags"), p["tags"])), None)

        api = apigw.create_api(p["name"], p["description"], p["tags"], find)
        endpoint = api.get("ApiEndpoint") or f"https://{api['ApiId']}.execute-api.{client.region}.amazonaws.com"
        run.ctx.add_resource("api", api["ApiId"], endpoint=endpoint)
        return {"api_id": api["ApiId"], "api_endpoint": endpoint}

    def undo_delete_api(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        self._run_client(run).api.apigw.delete_api(result["api_id"])
        run.ctx.remove_resource("api", result["api_id"])

    def apply_create_integration(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        uri = step.params.get("integration_uri") or run.outputs["alias_arn"]
        return {"integration_id": self._run_client(run).api.apigw.create_integration(_param(run, step, "api_id"), uri)}

    def apply_create_route(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        self._run_client(run).api.apigw.create_route(_param(run, step, "api_id"), f"integrations/{_param(run, step, 'integration_id')}",
                                                     step.params["auth_type"])
        return {}

    def apply_update_route(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        self._run_client(run).api.apigw.update_route(step.params["api_id"], step.params["route_id"],
                                                     f"integrations/{_param(run, step, 'integration_id')}", step.params["auth_type"])
        return {}

    def apply_create_stage(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        self._run_client(run).api.apigw.create_stage(_param(run, step, "api_id"))
        return {}

    # -- log group -------------------------------------------------------------------------
    def apply_create_log_group(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        logs, p = self._run_client(run).api.logs, step.params
        try:
            logs.create_group(p["group"])
        except ClientError as exc:  # a lost answer: the retry finds it made
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise
        run.ctx.add_resource("log-group", p["group"])
        logs.set_retention(p["group"], p["retention_days"])
        return {}

    def undo_delete_log_group(self, run: "Run", step: "PlannedStep", result: Any) -> None:
        self._run_client(run).api.logs.delete_group(step.params["group"])
        run.ctx.remove_resource("log-group", step.params["group"])

    def apply_set_retention(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        p = step.params
        self._run_client(run).api.logs.set_retention(p["group"], p["retention_days"])
        return {}

    # -- removal (stale endpoints, undeploy) -------------------------------------------------
    def apply_delete(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        """Delete one resource (already gone is fine) and forget it."""
        p = step.params
        attrs = {"qualifier": p.get("qualifier", ALIAS), "role": p.get("role")}
        delete_resource(self._run_client(run), p["kind"], p["id"], attrs, p["function_name"])
        run.ctx.remove_resource(p["kind"], p["id"])
        return {}

    def apply_remove_files(self, run: "Run", step: "PlannedStep") -> dict[str, Any]:
        shutil.rmtree(step.params["folder"], ignore_errors=True)
        return {}
