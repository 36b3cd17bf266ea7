"""A moto_server whose CloudFormation also makes ``AWS::Lambda::Alias`` (run as a script, like ``moto_server``).

moto's CloudFormation implements ``AWS::Lambda::Function`` and ``AWS::Lambda::Version`` but
not ``AWS::Lambda::Alias`` (it skips the resource with a warning), nor ``Fn::GetAtt [Version,
Version]``. This adds both, following CloudFormation's documented contract and calling
moto's own Lambda backend (the one its Lambda API serves), so the stack's alias is read back
with the ordinary ``GetAlias`` call:

- ``AWS::Lambda::Alias``: properties ``Name``, ``FunctionName``, ``FunctionVersion``,
  ``Description``; ``Ref`` returns the alias ARN; deleting the stack deletes it.
- ``AWS::Lambda::Version``: ``Fn::GetAtt [X, Version]`` returns the published version number.
- ``AWS::SecretsManager::Secret``: properties ``Name``, ``Description``, ``SecretString``, ``Tags``; ``Ref``
  returns the secret's ARN; deleting the stack deletes it (without recovery window).
- ``AWS::Lambda::Function``: its ``Architectures`` and ``Tags`` properties are applied (moto's model drops them;
  CloudFormation sets them as CreateFunction does).

Everything else is moto as installed.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from moto.awslambda.models import LambdaFunction, LambdaVersion, lambda_backends
from moto.core.common_models import CloudFormationModel


class LambdaAliasResource(CloudFormationModel):
    """``AWS::Lambda::Alias`` for moto's CloudFormation."""

    __module__ = "moto.awslambda.cfn_alias"  # moto's model registry files every model under its service's name

    def __init__(self, arn: str, name: str, function_name: str, account_id: str, region: str) -> None:
        self.arn, self.name, self.function_name = arn, name, function_name
        self.account_id, self.region = account_id, region

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("AliasArn",)

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "AliasArn":
            return self.arn
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> "LambdaAliasResource":
        props = cloudformation_json["Properties"]
        backend = lambda_backends[account_id][region_name]
        alias = backend.create_alias(props["Name"], props["FunctionName"], str(props["FunctionVersion"]),
                                     props.get("Description", ""), None)
        return cls(alias.arn, props["Name"], props["FunctionName"], account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> "LambdaAliasResource":
        backend = lambda_backends[account_id][region_name]
        props = cloudformation_json["Properties"]
        backend.update_alias(props["Name"], props["FunctionName"], str(props["FunctionVersion"]),
                             props.get("Description", ""), None)
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """Stack deletion (moto calls this with the resource it made, whose names are resolved).

        moto deletes a stack's resources without following their dependencies: when the function went
        first, its aliases went with it (as on Lambda), so there is nothing left to delete.
        """
        from moto.awslambda.exceptions import UnknownFunctionException

        try:
            lambda_backends[account_id][region_name].delete_alias(self.name, self.function_name)
        except UnknownFunctionException:
            pass

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> None:
        arn = resource_name or ""
        function_name, name = arn.split(":")[-2:] if arn.count(":") >= 7 else ("", "")
        if name:
            lambda_backends[account_id][region_name].delete_alias(name, function_name)


class SecretResource(CloudFormationModel):
    """``AWS::SecretsManager::Secret`` for moto's CloudFormation (moto's Secrets Manager API serves it)."""

    __module__ = "moto.secretsmanager.cfn_secret"

    def __init__(self, arn: str, name: str) -> None:
        self.arn, self.name = arn, name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SecretsManager::Secret"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in ("Id",)

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name == "Id":
            return self.arn
        raise NotImplementedError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str, **kwargs: Any) -> "SecretResource":
        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json["Properties"]
        name = props.get("Name") or resource_name
        made = secretsmanager_backends[account_id][region_name].create_secret(
            name, props.get("SecretString"), None, props.get("Description"), props.get("Tags"), props.get("KmsKeyId"),
            None, [], False)
        return cls(json.loads(made)["ARN"], name)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource: Any, new_resource_name: str, cloudformation_json: dict[str, Any],
                                        account_id: str, region_name: str) -> "SecretResource":
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        secretsmanager_backends[account_id][region_name].delete_secret(self.arn, None, True)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                        region_name: str) -> None:
        from moto.secretsmanager.models import secretsmanager_backends

        secretsmanager_backends[account_id][region_name].delete_secret(resource_name, None, True)


def _version_attribute(self: LambdaVersion, attribute_name: str) -> Any:
    if attribute_name == "Version":
        return self.version
    raise NotImplementedError(attribute_name)


LambdaVersion.get_cfn_attribute = _version_attribute  # type: ignore[method-assign]
_create_function = LambdaFunction.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _create_function_with_all_properties(cls: type, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                                         region_name: str, **kwargs: Any) -> Any:
    fn = _create_function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    props = cloudformation_json["Properties"]
    if props.get("Architectures"):
        fn.architectures = list(props["Architectures"])
    tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
    if tags:
        lambda_backends[account_id][region_name].tag_resource(fn.function_arn, tags)
    return fn


LambdaFunction.create_from_cloudformation_json = classmethod(_create_function_with_all_properties)  # type: ignore[method-assign]

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
