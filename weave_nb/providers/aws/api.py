"""A typed facade over the AWS operations weave-nb uses: one method per operation, Python parameters.

Each method is a single AWS call through :meth:`AwsClient.call` (retries,
injected sleep, counted calls); nothing here decides anything. Reads that
may find nothing have a ``find_*`` form returning ``None`` on "not found".
Get it from :attr:`AwsClient.api`::

    api = client.api
    conf = api.lam.find_function("weave-demo")
    api.iam.attach_role_policy("weave-nb-demo", policy_arn)
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import AwsClient


def _opt(**params: Any) -> dict[str, Any]:
    """``params`` without the ``None`` values (optional AWS parameters left out)."""
    return {k: v for k, v in params.items() if v is not None}


class _Service:
    service = ""

    def __init__(self, client: "AwsClient") -> None:
        self._client = client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        return self._client.call(self.service, operation, **params)

    def _find(self, operation: str, **params: Any) -> dict[str, Any] | None:
        from .resources import maybe

        return maybe(lambda: self._call(operation, **params))


class Lambda(_Service):
    """AWS Lambda: functions, versions, the alias, the Function URL and resource-policy statements."""

    service = "lambda"

    def find_function(self, name: str, qualifier: str | None = None) -> dict[str, Any] | None:
        """``GetFunction`` (configuration, code location, tags), or ``None``."""
        return self._find("get_function", FunctionName=name, **_opt(Qualifier=qualifier))

    def create_function(self, find: Callable[[], Any], **params: Any) -> dict[str, Any]:
        """``CreateFunction`` with ``params`` as AWS names them; a lost answer is resolved by ``find``."""
        return self._client.create(self.service, "create_function", find, **params)

    def update_code(self, name: str, zip_data: bytes, architecture: str) -> dict[str, Any]:
        return self._call("update_function_code", FunctionName=name, ZipFile=zip_data, Architectures=[architecture], Publish=False)

    def update_configuration(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        """``UpdateFunctionConfiguration`` with ``settings`` (Runtime, Handler, MemorySize, Timeout, Environment, Role)."""
        return self._call("update_function_configuration", FunctionName=name, **settings)

    def publish_version(self, name: str, code_sha256: str) -> str:
        """Publish ``$LATEST``, guarded by its code hash. Returns the version number."""
        return self._call("publish_version", FunctionName=name, CodeSha256=code_sha256)["Version"]

    def delete_function(self, name: str, qualifier: str | None = None) -> None:
        """Delete the function (every version), or only version ``qualifier``; already gone is fine."""
        self._find("delete_function", FunctionName=name, **_opt(Qualifier=qualifier))

    def find_alias(self, name: str, alias: str) -> dict[str, Any] | None:
        return self._find("get_alias", FunctionName=name, Name=alias)

    def create_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        return self._call("create_alias", FunctionName=name, Name=alias, FunctionVersion=version)

    def update_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        return self._call("update_alias", FunctionName=name, Name=alias, FunctionVersion=version)

    def delete_alias(self, name: str, alias: str) -> None:
        self._find("delete_alias", FunctionName=name, Name=alias)

    def find_url(self, name: str, qualifier: str) -> dict[str, Any] | None:
        return self._find("get_function_url_config", FunctionName=name, Qualifier=qualifier)

    def create_url(self, name: str, qualifier: str, auth_type: str, find: Callable[[], Any]) -> str:
        """Make the Function URL (a lost answer is resolved by ``find``). Returns the URL."""
        return self._client.create(self.service, "create_function_url_config", find, FunctionName=name,
                                   Qualifier=qualifier, AuthType=auth_type)["FunctionUrl"]

    def update_url(self, name: str, qualifier: str, auth_type: str) -> str:
        return self._call("update_function_url_config", FunctionName=name, Qualifier=qualifier, AuthType=auth_type)["FunctionUrl"]

    def delete_url(self, name: str, qualifier: str) -> None:
        self._find("delete_function_url_config", FunctionName=name, Qualifier=qualifier)

    def find_policy(self, name: str, qualifier: str) -> dict[str, Any] | None:
        return self._find("get_policy", FunctionName=name, Qualifier=qualifier)

    def add_permission(self, name: str, qualifier: str, sid: str, action: str, principal: str, **extra: Any) -> None:
        """``AddPermission``; ``extra`` carries FunctionUrlAuthType, InvokedViaFunctionUrl or SourceArn."""
        self._call("add_permission", FunctionName=name, Qualifier=qualifier, StatementId=sid, Action=action,
                   Principal=principal, **extra)

    def remove_permission(self, name: str, qualifier: str, sid: str) -> None:
        self._find("remove_permission", FunctionName=name, Qualifier=qualifier, StatementId=sid)

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self._call("tag_resource", Resource=arn, Tags=tags)

    def find_tags(self, arn: str) -> dict[str, str] | None:
        found = self._find("list_tags", Resource=arn)
        return dict(found.get("Tags") or {}) if found else None

    def list_functions(self) -> list[dict[str, Any]]:
        return self._client.paginate(self.service, "list_functions", "Functions", "Marker", "NextMarker")

    def invoke(self, name: str, qualifier: str, payload: bytes) -> dict[str, Any]:
        return self._call("invoke", FunctionName=name, Qualifier=qualifier, Payload=payload)

    def wait_active(self, name: str) -> dict[str, Any]:
        """Until the function is Active (botocore's ``function_active_v2``). Returns ``GetFunction``'s answer."""
        return self._client.wait(self.service, "function_active_v2", FunctionName=name)

    def wait_updated(self, name: str) -> dict[str, Any]:
        """Until the last update finished (botocore's ``function_updated_v2``)."""
        return self._client.wait(self.service, "function_updated_v2", FunctionName=name)


class Iam(_Service):
    """IAM: the execution role and its policies."""

    service = "iam"

    def find_role(self, name: str) -> dict[str, Any] | None:
        """The role (with its tags), or ``None``."""
        found = self._find("get_role", RoleName=name)
        return found["Role"] if found else None

    def create_role(self, name: str, trust_policy: str, description: str, tags: dict[str, str],
                    find: Callable[[], Any]) -> dict[str, Any]:
        """Make the role (a lost answer is resolved by ``find``, which returns ``{"Role": ...}``). Returns the role."""
        return self._client.create(self.service, "create_role", find, RoleName=name, AssumeRolePolicyDocument=trust_policy,
                                   Description=description, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Role"]

    def tag_role(self, name: str, tags: dict[str, str]) -> None:
        self._call("tag_role", RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def attach_role_policy(self, name: str, policy_arn: str) -> None:
        self._call("attach_role_policy", RoleName=name, PolicyArn=policy_arn)

    def detach_role_policy(self, name: str, policy_arn: str) -> None:
        """Detach; already detached (or the role gone) is fine."""
        self._find("detach_role_policy", RoleName=name, PolicyArn=policy_arn)

    def find_attached_policies(self, name: str) -> list[str] | None:
        """The ARNs of the managed policies attached to the role, or ``None`` when the role is gone."""
        found = self._find("list_attached_role_policies", RoleName=name)
        return None if found is None else [p["PolicyArn"] for p in found.get("AttachedPolicies", [])]

    def find_role_policy(self, name: str, policy_name: str) -> dict[str, Any] | None:
        """The document of the role's inline policy ``policy_name`` (a dict), or ``None`` when there is none."""
        found = self._find("get_role_policy", RoleName=name, PolicyName=policy_name)
        if found is None:
            return None
        doc = found["PolicyDocument"]  # botocore decodes it; a raw URL-encoded string is decoded here
        return json.loads(urllib.parse.unquote(doc)) if isinstance(doc, str) else doc

    def put_role_policy(self, name: str, policy_name: str, document: dict[str, Any]) -> None:
        """Create or replace the role's inline policy ``policy_name``."""
        self._call("put_role_policy", RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))

    def inline_policies(self, name: str) -> list[str]:
        found = self._find("list_role_policies", RoleName=name) or {}
        return list(found.get("PolicyNames", []))

    def delete_role_policy(self, name: str, policy_name: str) -> None:
        self._find("delete_role_policy", RoleName=name, PolicyName=policy_name)

    def delete_role(self, name: str) -> bool:
        """Delete the role; False when it was gone already."""
        return self._find("delete_role", RoleName=name) is not None


class ApiGateway(_Service):
    """API Gateway v2: the HTTP API, its integration, ``$default`` route and stage."""

    service = "apigatewayv2"

    def find_api(self, api_id: str) -> dict[str, Any] | None:
        return self._find("get_api", ApiId=api_id)

    def list_apis(self) -> list[dict[str, Any]]:
        return self._client.paginate(self.service, "get_apis", "Items", "NextToken", "NextToken")

    def create_api(self, name: str, description: str, tags: dict[str, str], find: Callable[[], Any]) -> dict[str, Any]:
        """Make an HTTP API (names are not unique: a lost answer is resolved by ``find``, never by a second API)."""
        return self._client.create(self.service, "create_api", find, Name=name, ProtocolType="HTTP", Tags=tags,
                                   Description=description)

    def delete_api(self, api_id: str) -> None:
        self._find("delete_api", ApiId=api_id)

    def tag(self, arn: str, tags: dict[str, str]) -> None:
        self._call("tag_resource", ResourceArn=arn, Tags=tags)

    def integrations(self, api_id: str) -> list[dict[str, Any]]:
        return self._call("get_integrations", ApiId=api_id).get("Items", [])

    def create_integration(self, api_id: str, uri: str) -> str:
        """An ``AWS_PROXY`` integration (payload format 2.0) to ``uri``. Returns its id."""
        return self._call("create_integration", ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationUri=uri,
                          PayloadFormatVersion="2.0", IntegrationMethod="POST")["IntegrationId"]

    def routes(self, api_id: str) -> list[dict[str, Any]]:
        return self._call("get_routes", ApiId=api_id).get("Items", [])

    def create_route(self, api_id: str, target: str, auth_type: str) -> None:
        self._call("create_route", ApiId=api_id, RouteKey="$default", Target=target, AuthorizationType=auth_type)

    def update_route(self, api_id: str, route_id: str, target: str, auth_type: str) -> None:
        self._call("update_route", ApiId=api_id, RouteId=route_id, Target=target, AuthorizationType=auth_type)

    def find_stage(self, api_id: str) -> dict[str, Any] | None:
        return self._find("get_stage", ApiId=api_id, StageName="$default")

    def create_stage(self, api_id: str) -> None:
        self._call("create_stage", ApiId=api_id, StageName="$default", AutoDeploy=True)


class Logs(_Service):
    """CloudWatch Logs: the function's log group."""

    service = "logs"

    def find_group(self, group: str) -> dict[str, Any] | None:
        found = self._call("describe_log_groups", logGroupNamePrefix=group).get("logGroups", [])
        return next((g for g in found if g.get("logGroupName") == group), None)

    def create_group(self, group: str) -> None:
        self._call("create_log_group", logGroupName=group)

    def set_retention(self, group: str, days: int) -> None:
        self._call("put_retention_policy", logGroupName=group, retentionInDays=days)

    def delete_group(self, group: str) -> None:
        self._find("delete_log_group", logGroupName=group)

    def events(self, group: str, **params: Any) -> dict[str, Any]:
        """One page of ``FilterLogEvents`` (``startTime``, ``nextToken``)."""
        return self._call("filter_log_events", logGroupName=group, **params)


class Tagging(_Service):
    """The Resource Groups Tagging API (bulk listing by tag)."""

    service = "resourcegroupstaggingapi"

    def resources(self, key: str, value: str, resource_type: str) -> list[dict[str, Any]]:
        """Every resource of ``resource_type`` tagged ``key=value``, all pages."""
        return self._client.paginate(self.service, "get_resources", "ResourceTagMappingList", "PaginationToken",
                                     "PaginationToken", TagFilters=[{"Key": key, "Values": [value]}],
                                     ResourceTypeFilters=[resource_type], ResourcesPerPage=100)


class CloudWatch(_Service):
    """CloudWatch: the metric alarms of ``weave alarm``."""

    service = "cloudwatch"

    def find_alarm(self, name: str) -> dict[str, Any] | None:
        """The metric alarm ``name`` (``DescribeAlarms``), or ``None``."""
        found = self._call("describe_alarms", AlarmNames=[name], AlarmTypes=["MetricAlarm"]).get("MetricAlarms") or []
        return next((a for a in found if a.get("AlarmName") == name), None)

    def alarms(self, prefix: str) -> list[dict[str, Any]]:
        """Every metric alarm whose name starts with ``prefix``, all pages."""
        return self._client.paginate(self.service, "describe_alarms", "MetricAlarms", "NextToken", "NextToken",
                                     AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"])

    def put_alarm(self, **params: Any) -> None:
        """``PutMetricAlarm`` with ``params`` as AWS names them (creates or replaces the alarm)."""
        self._call("put_metric_alarm", **params)

    def delete_alarm(self, name: str) -> None:
        """``DeleteAlarms`` for one name; already gone is fine."""
        self._call("delete_alarms", AlarmNames=[name])

    def find_tags(self, arn: str) -> dict[str, str] | None:
        found = self._find("list_tags_for_resource", ResourceARN=arn)
        return {t["Key"]: t["Value"] for t in found.get("Tags") or []} if found else None


class Sns(_Service):
    """SNS: the topic an alarm notifies and its e-mail subscriptions."""

    service = "sns"

    def create_topic(self, name: str, tags: dict[str, str]) -> str:
        """``CreateTopic`` (idempotent for the same name and tags). Returns the topic ARN."""
        return self._call("create_topic", Name=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["TopicArn"]

    def find_tags(self, arn: str) -> dict[str, str] | None:
        """The topic's tags, or ``None`` when there is no such topic."""
        try:
            found = self._find("list_tags_for_resource", ResourceArn=arn)
        except Exception as exc:  # noqa: BLE001 - SNS says NotFound with a 404 or an AuthorizationError-free 400
            from .client import error_code

            if error_code(exc) in ("NotFound", "NotFoundException", "ResourceNotFound"):
                return None
            raise
        return {t["Key"]: t["Value"] for t in found.get("Tags") or []} if found else None

    def subscribe_email(self, topic: str, address: str) -> str:
        """``Subscribe`` an e-mail address (it must confirm). Returns the subscription ARN (even while pending)."""
        return self._call("subscribe", TopicArn=topic, Protocol="email", Endpoint=address,
                          ReturnSubscriptionArn=True)["SubscriptionArn"]

    def subscriptions(self, topic: str) -> list[dict[str, Any]]:
        """The topic's subscriptions (``[]`` when the topic is gone)."""
        try:
            return self._client.paginate(self.service, "list_subscriptions_by_topic", "Subscriptions", "NextToken",
                                         "NextToken", TopicArn=topic)
        except Exception as exc:  # noqa: BLE001
            from .client import error_code

            if error_code(exc) in ("NotFound", "NotFoundException"):
                return []
            raise

    def unsubscribe(self, arn: str) -> None:
        """``Unsubscribe``; already gone (or still pending confirmation, which only the topic's deletion ends) is fine."""
        try:
            self._find("unsubscribe", SubscriptionArn=arn)
        except Exception as exc:  # noqa: BLE001
            from .client import error_code

            if error_code(exc) not in ("NotFound", "InvalidParameter"):
                raise

    def delete_topic(self, arn: str) -> None:
        """``DeleteTopic`` (its subscriptions go with it); already gone is fine."""
        self._find("delete_topic", TopicArn=arn)


class Api:
    """The facade for one :class:`AwsClient`: ``lam``, ``iam``, ``apigw``, ``logs``, ``tagging``, ``cloudwatch``, ``sns``."""

    def __init__(self, client: "AwsClient") -> None:
        self.tagging = Tagging(client)
        self.lam = Lambda(client)
        self.iam = Iam(client)
        self.apigw = ApiGateway(client)
        self.logs = Logs(client)
        self.cloudwatch = CloudWatch(client)
        self.sns = Sns(client)
